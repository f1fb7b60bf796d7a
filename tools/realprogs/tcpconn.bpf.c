// SPDX-License-Identifier: MIT
/* tcpconnect-style: kprobe/kretprobe pairs on tcp_v4_connect and tcp_v6_connect, socket
 * fields read with CO-RE, counting per destination or emitting perf events. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "tools.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define MAX_PORTS 64

const volatile bool do_count = false;
const volatile int filter_ports_len = 0;
const volatile int filter_ports[MAX_PORTS];
const volatile pid_t want_tgid = 0;

struct conn_event {
	union {
		__u32 saddr_v4;
		__u8 saddr_v6[16];
	};
	union {
		__u32 daddr_v4;
		__u8 daddr_v6[16];
	};
	char task[TASK_COMM_LEN];
	__u64 ts_us;
	__u32 af, pid, uid;
	__u16 dport;
};

struct flow_key {
	__u8 daddr[16];
	__u32 af;
	__u16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct sock *);
} sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct flow_key);
	__type(value, u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

static __always_inline bool port_filtered(__u16 port)
{
	if (!filter_ports_len)
		return false;
	for (int i = 0; i < filter_ports_len && i < MAX_PORTS; i++)
		if (port == filter_ports[i])
			return false;
	return true;
}

static __always_inline int enter(struct sock *sk)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = id;

	if (want_tgid && want_tgid != id >> 32)
		return 0;
	bpf_map_update_elem(&sockets, &tid, &sk, BPF_ANY);
	return 0;
}

static __always_inline int leave(void *ctx, int ret, int af)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = id;
	struct sock **skpp, *sk;
	__u16 dport;

	skpp = bpf_map_lookup_elem(&sockets, &tid);
	if (!skpp)
		return 0;
	if (ret)
		goto out;
	sk = *skpp;
	dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (port_filtered(dport))
		goto out;
	if (do_count) {
		struct flow_key key = {.af = af, .dport = dport};
		static const u64 one = 1;
		u64 *val;

		if (af == AF_INET)
			BPF_CORE_READ_INTO(&key.daddr, sk, __sk_common.skc_daddr);
		else
			BPF_CORE_READ_INTO(&key.daddr, sk,
					   __sk_common.skc_v6_daddr.in6_u.u6_addr32);
		val = bpf_map_lookup_elem(&counts, &key);
		if (val)
			__sync_fetch_and_add(val, 1);
		else
			bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	} else {
		struct conn_event e = {};

		e.af = af;
		e.pid = id >> 32;
		e.uid = bpf_get_current_uid_gid();
		e.ts_us = bpf_ktime_get_ns() / 1000;
		e.dport = dport;
		bpf_get_current_comm(e.task, sizeof(e.task));
		if (af == AF_INET) {
			BPF_CORE_READ_INTO(&e.saddr_v4, sk, __sk_common.skc_rcv_saddr);
			BPF_CORE_READ_INTO(&e.daddr_v4, sk, __sk_common.skc_daddr);
		} else {
			BPF_CORE_READ_INTO(&e.saddr_v6, sk,
					   __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
			BPF_CORE_READ_INTO(&e.daddr_v6, sk,
					   __sk_common.skc_v6_daddr.in6_u.u6_addr32);
		}
		bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	}
out:
	bpf_map_delete_elem(&sockets, &tid);
	return 0;
}

SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(v4_connect, struct sock *sk)
{
	return enter(sk);
}

SEC("kretprobe/tcp_v4_connect")
int BPF_KRETPROBE(v4_connect_ret, int ret)
{
	return leave(ctx, ret, AF_INET);
}

SEC("kprobe/tcp_v6_connect")
int BPF_KPROBE(v6_connect, struct sock *sk)
{
	return enter(sk);
}

SEC("kretprobe/tcp_v6_connect")
int BPF_KRETPROBE(v6_connect_ret, int ret)
{
	return leave(ctx, ret, AF_INET6);
}

char LICENSE[] SEC("license") = "GPL";
