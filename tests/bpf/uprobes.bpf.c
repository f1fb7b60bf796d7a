// uprobes, uretprobes, uprobe.multi and USDT (through libbpf's unchanged usdt.bpf.h) on
// tests/programs/probed.c and on libc, filtered to one process.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

const volatile __u32 target_tgid = 0;

__u64 add_calls, add_returns, multi_calls, multi_returns, getpid_calls, usdt_ticks, guarded;
__s64 add_arg_sum, add_last_ret, getpid_ret, multi_arg_sum;
__s64 tick_args[3][3]; /* first three ticks: each of the three arguments */
__u64 tick_cookie, tick_argc;

static __always_inline bool mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

SEC("uprobe")
int BPF_KPROBE(on_add, int a, int b)
{
	if (mine()) {
		add_calls++;
		add_arg_sum += a + b;
	}
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(on_add_return, int ret)
{
	if (mine()) {
		add_returns++;
		add_last_ret = ret;
	}
	return 0;
}

SEC("uprobe.multi")
int BPF_KPROBE(on_multi, int x)
{
	if (mine()) {
		multi_calls++;
		multi_arg_sum += x;
	}
	return 0;
}

SEC("uretprobe.multi")
int on_multi_return(struct pt_regs *ctx)
{
	if (mine())
		multi_returns++;
	return 0;
}

SEC("uprobe/libc.so.6:getpid")
int on_getpid(struct pt_regs *ctx)
{
	if (mine())
		getpid_calls++;
	return 0;
}

SEC("uretprobe/libc.so.6:getpid")
int BPF_KRETPROBE(on_getpid_return, int ret)
{
	if (mine())
		getpid_ret = ret;
	return 0;
}

SEC("usdt")
int BPF_USDT(on_tick, int i, long in_memory, int constant)
{
	__u64 slot = usdt_ticks;

	if (!mine())
		return 0;
	if (slot < 3) {
		tick_args[slot][0] = i;
		tick_args[slot][1] = in_memory;
		tick_args[slot][2] = constant;
	}
	tick_cookie = bpf_usdt_cookie(ctx);
	tick_argc = bpf_usdt_arg_cnt(ctx);
	usdt_ticks++;
	return 0;
}

SEC("usdt")
int BPF_USDT(on_guarded, int i)
{
	if (mine())
		guarded++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
