// syscall_latency: a log2 histogram of how long one system call takes, like bcc's
// biolatency does for block I/O. tp_btf programs get the raw tracepoint's typed arguments
// (struct pt_regs *, long id) straight from BTF.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define SLOTS 32

const volatile long syscall_nr = 230; /* x86-64 clock_nanosleep; set from Python */
const volatile __u32 only_tgid = 0;  /* 0: every process */
const volatile __u32 skip_tgid = 0;  /* the tracer itself */

__u64 histogram[SLOTS]; /* slot n: [2^n, 2^(n+1)) microseconds */
__u64 total_ns, calls;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);   /* thread id */
	__type(value, __u64); /* entry time */
} started SEC(".maps");

static __always_inline bool wanted(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	return (!only_tgid || tgid == only_tgid) && tgid != skip_tgid;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 now;

	if (id != syscall_nr || !wanted())
		return 0;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&started, &tid, &now, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_exit, struct pt_regs *regs, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *start = bpf_map_lookup_elem(&started, &tid);
	__u64 delta, usecs;
	__u32 slot = 0;

	if (!start)
		return 0;
	delta = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&started, &tid);
	for (usecs = delta / 1000; usecs > 1 && slot < SLOTS - 1; usecs >>= 1)
		slot++;
	__sync_fetch_and_add(&histogram[slot], 1);
	__sync_fetch_and_add(&total_ns, delta);
	__sync_fetch_and_add(&calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
