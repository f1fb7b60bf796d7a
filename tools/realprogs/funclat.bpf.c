// SPDX-License-Identifier: MIT
/* funclatency-style: entry/return timing of kernel functions three ways (kprobe.multi with
 * a glob, fentry/fexit, and kprobe/kretprobe), a histogram in a global array, the target
 * set by the loader through .rodata. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "tools.bpf.h"

const volatile pid_t want_tgid = 0;
const volatile bool in_ns = false;

struct hist latency = {};
__u64 missed = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} starts SEC(".maps");

static __always_inline int entry(void)
{
	u64 id = bpf_get_current_pid_tgid(), ts;
	u32 tid = id;

	if (want_tgid && want_tgid != id >> 32)
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &tid, &ts, BPF_ANY);
	return 0;
}

static __always_inline int leave(void)
{
	u32 tid = bpf_get_current_pid_tgid();
	u64 *tsp, delta;

	tsp = bpf_map_lookup_elem(&starts, &tid);
	if (!tsp) {
		__sync_fetch_and_add(&missed, 1);
		return 0;
	}
	delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&starts, &tid);
	hist_add(&latency, in_ns ? delta : delta / 1000);
	return 0;
}

SEC("kprobe.multi/vfs_read*")
int multi_entry(struct pt_regs *ctx)
{
	return entry();
}

SEC("kretprobe.multi/vfs_read*")
int multi_exit(struct pt_regs *ctx)
{
	return leave();
}

SEC("fentry/vfs_fsync_range")
int BPF_PROG(fsync_entry)
{
	return entry();
}

SEC("fexit/vfs_fsync_range")
int BPF_PROG(fsync_exit)
{
	return leave();
}

SEC("kprobe/dummy")
int BPF_KPROBE(any_entry)
{
	return entry();
}

SEC("kretprobe/dummy")
int BPF_KRETPROBE(any_exit)
{
	return leave();
}

char LICENSE[] SEC("license") = "GPL";
