// Every getppid() call: who made it and who its parent is, read from task_struct with
// CO-RE (the offsets are fixed up for whatever kernel this runs on).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct caller {
	__u32 tgid;
	__u32 parent_tgid;
	__u64 calls;
	char comm[16];
	char parent_comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct caller);
} callers SEC(".maps");

__u64 total_calls = 0;

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct caller *seen = bpf_map_lookup_elem(&callers, &tgid);

	__sync_fetch_and_add(&total_calls, 1);
	if (seen) {
		__sync_fetch_and_add(&seen->calls, 1);
		return 0;
	}
	struct caller fresh = { .tgid = tgid, .calls = 1 };
	fresh.parent_tgid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&fresh.comm, task, comm);
	BPF_CORE_READ_STR_INTO(&fresh.parent_comm, task, real_parent, comm);
	bpf_map_update_elem(&callers, &tgid, &fresh, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
