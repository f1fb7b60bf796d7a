// SPDX-License-Identifier: MIT
/* libbpf-bootstrap usdt example's shape: USDT probes through usdt.bpf.h, one with a
 * binary:provider:name target and one bare (attached by the user), reading arguments with
 * BPF_USDT and bpf_usdt_arg, and the attach cookie. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

const volatile pid_t want_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

SEC("usdt/libc.so.6:libc:setjmp")
int BPF_USDT(setjmp_probe, void *buf, int val)
{
	pid_t pid = bpf_get_current_pid_tgid() >> 32;
	__u32 key = 0;
	__u64 *n;

	if (want_pid && pid != want_pid)
		return 0;
	n = bpf_map_lookup_elem(&hits, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	bpf_printk("setjmp: pid %d buf %lx val %d", pid, (long)buf, val);
	return 0;
}

SEC("usdt")
int any_probe(struct pt_regs *ctx)
{
	long first = 0, cookie = bpf_usdt_cookie(ctx);
	int count = bpf_usdt_arg_cnt(ctx);
	__u32 key = 1;
	__u64 *n;

	if (count > 0 && bpf_usdt_arg(ctx, 0, &first))
		return 0;
	n = bpf_map_lookup_elem(&hits, &key);
	if (n)
		__sync_fetch_and_add(n, first + cookie);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
