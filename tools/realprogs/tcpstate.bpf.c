// SPDX-License-Identifier: MIT
/* tcpstates-style: the sock/inet_sock_set_state tracepoint, state durations per socket, a
 * CO-RE enum value and a bitfield read (sk_protocol was a bitfield before 5.6). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tools.bpf.h"

#define AF_INET 2

enum tcp_state___x {
	TCP_CLOSE___x = 7,
};

const volatile bool only_ipv4 = false;
const volatile __u16 only_sport = 0;

struct state_event {
	__u64 skaddr, ts_us, delta_us;
	__u32 pid;
	int oldstate, newstate;
	__u16 family, sport, dport;
	__u8 saddr[16], daddr[16];
	char task[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct sock *);
	__type(value, __u64);
} timestamps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

SEC("tracepoint/sock/inet_sock_set_state")
int handle_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	__u16 family = ctx->family;
	__u64 *tsp, ts;
	struct state_event e = {};
	int proto;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (only_ipv4 && family != AF_INET)
		return 0;
	if (only_sport && ctx->sport != only_sport)
		return 0;
	proto = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	if (proto != IPPROTO_TCP)
		return 0;
	tsp = bpf_map_lookup_elem(&timestamps, &sk);
	ts = bpf_ktime_get_ns();
	e.delta_us = tsp ? (ts - *tsp) / 1000 : 0;
	e.skaddr = (__u64)sk;
	e.ts_us = ts / 1000;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.oldstate = ctx->oldstate;
	e.newstate = ctx->newstate;
	e.family = family;
	e.sport = ctx->sport;
	e.dport = ctx->dport;
	bpf_get_current_comm(&e.task, sizeof(e.task));
	if (family == AF_INET) {
		bpf_probe_read_kernel(&e.saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_probe_read_kernel(&e.daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_probe_read_kernel(&e.saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		bpf_probe_read_kernel(&e.daddr, 16, &sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32);
	}
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	if (ctx->newstate == bpf_core_enum_value(enum tcp_state___x, TCP_CLOSE___x))
		bpf_map_delete_elem(&timestamps, &sk);
	else
		bpf_map_update_elem(&timestamps, &sk, &ts, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
