// SPDX-License-Identifier: MIT
/* opensnoop-style: openat enter/exit tracepoints, a ring buffer, user stacks. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "tools.bpf.h"

const volatile pid_t want_tgid = 0;
const volatile bool only_failed = false;

struct open_args {
	const char *fname;
	int flags;
};

struct open_event {
	u64 callers[2];
	pid_t pid;
	uid_t uid;
	int ret, flags;
	char comm[TASK_COMM_LEN];
	char fname[NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct open_args);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int openat_enter(struct syscall_trace_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = id;
	struct open_args args = {};

	if (want_tgid && want_tgid != id >> 32)
		return 0;
	args.fname = (const char *)ctx->args[1];
	args.flags = (int)ctx->args[2];
	bpf_map_update_elem(&pending, &tid, &args, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int openat_exit(struct syscall_trace_exit *ctx)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct open_args *args;
	struct open_event *e;
	u64 stack[3];
	int ret = ctx->ret;

	args = bpf_map_lookup_elem(&pending, &tid);
	if (!args)
		return 0;
	if (only_failed && ret >= 0)
		goto out;
	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		goto out;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = bpf_get_current_uid_gid();
	e->ret = ret;
	e->flags = args->flags;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(&e->fname, sizeof(e->fname), args->fname);
	if (bpf_get_stack(ctx, &stack, sizeof(stack), BPF_F_USER_STACK) > 0) {
		e->callers[0] = stack[1];
		e->callers[1] = stack[2];
	}
	bpf_ringbuf_submit(e, 0);
out:
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
