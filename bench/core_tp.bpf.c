// Benchmark object with CO-RE: task_struct reads on a tracepoint, three maps, globals.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct info {
	__u32 pid, tgid, ppid, uid;
	__u64 start_time;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct info);
} tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

const volatile __u32 filter_tgid = 0;
__u64 seen = 0;

SEC("tp/syscalls/sys_enter_getppid")
int record(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct info info = {};
	__u32 zero = 0;
	__u64 *count;

	info.tgid = BPF_CORE_READ(task, tgid);
	if (filter_tgid && info.tgid != filter_tgid)
		return 0;
	info.pid = BPF_CORE_READ(task, pid);
	info.ppid = BPF_CORE_READ(task, real_parent, tgid);
	info.uid = BPF_CORE_READ(task, cred, uid.val);
	info.start_time = BPF_CORE_READ(task, start_time);
	BPF_CORE_READ_STR_INTO(&info.comm, task, comm);
	bpf_map_update_elem(&tasks, &info.tgid, &info, BPF_ANY);
	count = bpf_map_lookup_elem(&calls, &zero);
	if (count)
		(*count)++;
	bpf_ringbuf_output(&events, &info, sizeof(info), 0);
	__sync_fetch_and_add(&seen, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
