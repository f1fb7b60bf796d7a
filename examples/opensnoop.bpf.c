// opensnoop: every open()/openat() with the file name, the flags and the result, like
// bcc's opensnoop. The entry tracepoint saves the arguments per thread; the exit
// tracepoint adds the result and sends one record through a ring buffer.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define NAME_MAX 255
#define TASK_COMM_LEN 16

const volatile __u32 target_tgid = 0; /* 0: every process */
const volatile __u32 target_uid = (__u32)-1; /* -1: every user */
const volatile bool failed_only = false;

struct args {
	const char *fname;
	int flags;
};

struct event {
	__u64 ts;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	int ret;
	int flags;
	char comm[TASK_COMM_LEN];
	char fname[NAME_MAX + 1];
};

/* Named by a global so that the record type is in the object's BTF for Python to read. */
const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct args);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

__u64 lost_events;

static __always_inline int enter(const char *fname, int flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	struct args args = { .fname = fname, .flags = flags };

	if (target_tgid && tgid != target_tgid)
		return 0;
	if (target_uid != (__u32)-1 && uid != target_uid)
		return 0;
	bpf_map_update_elem(&start, &tid, &args, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_enter_open")
int on_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0], (int)ctx->args[1]);
}

SEC("tp/syscalls/sys_enter_openat")
int on_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[1], (int)ctx->args[2]);
}

static __always_inline int leave(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct args *args = bpf_map_lookup_elem(&start, &tid);
	struct event *event;
	int ret = (int)ctx->ret;

	if (!args)
		return 0;
	if (failed_only && ret >= 0)
		goto cleanup;
	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		__sync_fetch_and_add(&lost_events, 1);
		goto cleanup;
	}
	event->ts = bpf_ktime_get_ns();
	event->pid = id >> 32;
	event->tid = tid;
	event->uid = (__u32)bpf_get_current_uid_gid();
	event->ret = ret;
	event->flags = args->flags;
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	bpf_probe_read_user_str(event->fname, sizeof(event->fname), args->fname);
	bpf_ringbuf_submit(event, 0);
cleanup:
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

SEC("tp/syscalls/sys_exit_open")
int on_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx);
}

SEC("tp/syscalls/sys_exit_openat")
int on_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx);
}

char LICENSE[] SEC("license") = "GPL";
