// SPDX-License-Identifier: MIT
/* execsnoop-style: syscall tracepoints, a perf event array, CO-RE reads of the parent. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "tools.bpf.h"

#define MAX_ARGS 16
#define ARG_LEN 128

const volatile bool ignore_failed = true;
const volatile uid_t want_uid = (uid_t)-1;
const volatile int max_args = MAX_ARGS;

struct exec_event {
	pid_t pid, ppid;
	uid_t uid;
	int retval, args_count;
	unsigned int args_size;
	char comm[TASK_COMM_LEN];
	char args[MAX_ARGS * ARG_LEN];
};

static const struct exec_event blank = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, pid_t);
	__type(value, struct exec_event);
} in_flight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_execve")
int enter_execve(struct syscall_trace_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	pid_t tgid = id >> 32;
	uid_t uid = (u32)bpf_get_current_uid_gid();
	struct task_struct *task;
	struct exec_event *e;
	const char **argv = (const char **)ctx->args[1];
	const char *arg;

	if (want_uid != (uid_t)-1 && uid != want_uid)
		return 0;
	if (bpf_map_update_elem(&in_flight, &tgid, &blank, BPF_NOEXIST))
		return 0;
	e = bpf_map_lookup_elem(&in_flight, &tgid);
	if (!e)
		return 0;
	e->pid = tgid;
	e->uid = uid;
	task = (struct task_struct *)bpf_get_current_task();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->args_count = 0;
	e->args_size = 0;

	for (int i = 0; i < MAX_ARGS && i < max_args; i++) {
		long n;

		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			return 0;
		if (e->args_size > (MAX_ARGS - 1) * ARG_LEN)
			return 0;
		n = bpf_probe_read_user_str(&e->args[e->args_size], ARG_LEN, arg);
		if (n <= ARG_LEN && n > 0) {
			e->args_count++;
			e->args_size += n;
		}
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int exit_execve(struct syscall_trace_exit *ctx)
{
	pid_t tgid = bpf_get_current_pid_tgid() >> 32;
	struct exec_event *e;
	int ret = ctx->ret;
	unsigned int size;

	e = bpf_map_lookup_elem(&in_flight, &tgid);
	if (!e)
		return 0;
	if (ignore_failed && ret < 0)
		goto out;
	e->retval = ret;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	size = sizeof(*e) - sizeof(e->args) + e->args_size;
	if (size <= sizeof(*e))
		bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, e, size);
out:
	bpf_map_delete_elem(&in_flight, &tgid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
