// The kernel and user stacks of one process's getppid() calls, for the symbolisation
// tests: plain addresses, and build-id + file offset (BPF_F_STACK_BUILD_ID). Each stack
// has a map of its own: two stacks in one map can hash to one bucket, and then
// bpf_get_stackid() refuses the second with -EEXIST (no BPF_F_REUSE_STACKID).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define DEPTH 127

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 64);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 64);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, DEPTH * sizeof(__u64));
} user_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 64);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, DEPTH * sizeof(struct bpf_stack_build_id));
	__uint(map_flags, BPF_F_STACK_BUILD_ID);
} build_id_stacks SEC(".maps");

const volatile __u32 target_tgid = 0;
long kernel_stack = -1, user_stack = -1, build_id_stack = -1;
__u32 calls;

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	kernel_stack = bpf_get_stackid(ctx, &stacks, 0);
	user_stack = bpf_get_stackid(ctx, &user_stacks, BPF_F_USER_STACK);
	build_id_stack = bpf_get_stackid(ctx, &build_id_stacks, BPF_F_USER_STACK);
	calls++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
