// SPDX-License-Identifier: MIT
/* libbpf-bootstrap uprobe example's shape plus a bashreadline-style uretprobe: a uprobe
 * with a binary:function target, a bare uprobe attached by the user, and string reads
 * from user memory sent through a perf buffer. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define LINE_LEN 80

struct line_event {
	__u32 pid;
	char comm[16];
	char line[LINE_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} lines SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

SEC("uprobe")
int BPF_UPROBE(add_entry, int a, int b)
{
	bpf_printk("add ENTRY: a = %d, b = %d", a, b);
	return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(add_exit, int ret)
{
	bpf_printk("add EXIT: return = %d", ret);
	return 0;
}

SEC("uprobe//proc/self/exe:uprobed_sub")
int BPF_UPROBE(sub_entry, int a, int b)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *n;

	n = bpf_map_lookup_elem(&calls, &pid);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&calls, &pid, &one, BPF_NOEXIST);
	return 0;
}

SEC("uretprobe//bin/bash:readline")
int BPF_URETPROBE(readline_ret, const void *ret)
{
	struct line_event e = {};
	char comm[16];

	if (!ret)
		return 0;
	bpf_get_current_comm(&comm, sizeof(comm));
	if (comm[0] != 'b' || comm[1] != 'a' || comm[2] != 's' || comm[3] != 'h' || comm[4])
		return 0;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	__builtin_memcpy(&e.comm, comm, sizeof(comm));
	bpf_probe_read_user_str(&e.line, sizeof(e.line), ret);
	bpf_perf_event_output(ctx, &lines, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
