// CO-RE programs for the differential test against libbpf: the same object loaded by
// bpftool (libbpf) and by pylibbpf must produce the same translated instructions.
// task_struct fields and bitfields, sk_buff fields and bitfields, kernel enums, type
// sizes and existence checks.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

__u64 seen[16];

SEC("raw_tp/sys_enter")
int task_fields(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	seen[0] = BPF_CORE_READ(task, pid);
	seen[1] = BPF_CORE_READ(task, real_parent, tgid);
	seen[2] = BPF_CORE_READ_BITFIELD_PROBED(task, in_execve);
	seen[3] = BPF_CORE_READ_BITFIELD_PROBED(task, sched_reset_on_fork);
	seen[4] = bpf_core_field_exists(task->mm);
	seen[5] = bpf_core_field_size(task->comm);
	seen[6] = bpf_core_field_offset(struct task_struct, tgid);
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(skb_fields, struct sk_buff *skb)
{
	seen[7] = skb->len;
	seen[8] = BPF_CORE_READ_BITFIELD(skb, pkt_type);
	seen[9] = BPF_CORE_READ_BITFIELD(skb, ip_summed);
	seen[10] = skb->protocol;
	return 0;
}

SEC("raw_tp/sys_exit")
int enums_and_types(void *ctx)
{
	seen[11] = bpf_core_enum_value(enum bpf_func_id, BPF_FUNC_map_lookup_elem);
	seen[12] = bpf_core_enum_value_exists(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF);
	seen[13] = bpf_core_type_size(struct task_struct);
	seen[14] = bpf_core_type_exists(struct sk_buff);
	seen[15] = bpf_core_enum_value(enum bpf_prog_type, BPF_PROG_TYPE_XDP);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
