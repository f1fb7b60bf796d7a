// profile: sample on-CPU stacks at a fixed frequency, like bcc's profile. A perf_event
// program runs on every cpu-clock sample; it counts (process, user stack, kernel stack)
// and the stacks themselves go into a stack trace map, symbolised later in Python.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TASK_COMM_LEN 16
#define MAX_DEPTH 127

const volatile __u32 target_tgid = 0; /* 0: every process */
const volatile bool include_idle = false;
const volatile bool user_stacks = true;
const volatile bool kernel_stacks = true;

struct sample_key {
	__u32 pid;
	__s32 user_stack_id;
	__s32 kernel_stack_id;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sample_key);
	__type(value, __u64);
} counts SEC(".maps");

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct sample_key key = {};
	static const __u64 one = 1;
	__u64 *count;

	if (tid == 0 && !include_idle)
		return 0;
	if (target_tgid && tgid != target_tgid)
		return 0;
	key.pid = tgid;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.user_stack_id = user_stacks ? bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK) : -1;
	key.kernel_stack_id = kernel_stacks ? bpf_get_stackid(ctx, &stacks, 0) : -1;
	count = bpf_map_lookup_elem(&counts, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
