// What the logging tests load: a map pinned by name, a CO-RE field read (task_struct's
// tgid, recorded only for the test's own process) and a tc program counting packets.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} log_pinned SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} log_seen SEC(".maps");

const volatile __u32 target_tgid = 0;
__u64 tc_packets = 0;

SEC("tp/syscalls/sys_enter_getppid")
int log_core(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u32 tgid = BPF_CORE_READ(task, tgid);
	__u32 key = 0;
	__u64 *count;

	if (tgid != target_tgid)
		return 0;
	bpf_map_update_elem(&log_seen, &key, &tgid, BPF_ANY);
	count = bpf_map_lookup_elem(&log_pinned, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

SEC("tc")
int log_tc(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&tc_packets, 1);
	return 0; // TC_ACT_OK
}

char LICENSE[] SEC("license") = "GPL";
