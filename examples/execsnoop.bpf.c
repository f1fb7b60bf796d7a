// execsnoop: every execve() on the system, with its arguments and result.
// The arguments are read at sys_enter_execve (the old image still exists then), the result
// at sys_exit_execve; the finished record goes to user space through a ring buffer.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define MAX_ARGS 8
#define ARG_LEN 64

struct event {
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__s32 retval;
	__u32 args_count;
	char comm[16];
	char args[MAX_ARGS][ARG_LEN];
};

/* Named here so that the skeleton can generate it: `gen skeleton --type event`. */
const struct event *unused_event __attribute__((unused));

const volatile __u32 only_uid = (__u32)-1; /* set from Python: -1 means everyone */
static const struct event empty_event;

__u64 lost_events; /* ring buffer full */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct event);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tp/syscalls/sys_enter_execve")
int on_exec_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	const char **argv = (const char **)ctx->args[1];
	struct task_struct *task;
	struct event *event;

	if (only_uid != (__u32)-1 && uid != only_uid)
		return 0;
	if (bpf_map_update_elem(&pending, &tid, &empty_event, BPF_NOEXIST))
		return 0;
	event = bpf_map_lookup_elem(&pending, &tid);
	if (!event)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	event->pid = bpf_get_current_pid_tgid() >> 32;
	event->ppid = BPF_CORE_READ(task, real_parent, tgid);
	event->uid = uid;
	for (int i = 0; i < MAX_ARGS; i++) {
		const char *arg = NULL;

		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			break;
		if (bpf_probe_read_user_str(event->args[i], ARG_LEN, arg) < 0)
			break;
		event->args_count = i + 1;
	}
	return 0;
}

SEC("tp/syscalls/sys_exit_execve")
int on_exec_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct event *event = bpf_map_lookup_elem(&pending, &tid);

	if (!event)
		return 0;
	event->retval = ctx->ret;
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	if (bpf_ringbuf_output(&events, event, sizeof(*event), 0))
		__sync_fetch_and_add(&lost_events, 1);
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
