// TCP congestion controls with a fixed congestion window, for the struct_ops tests.
// fixed10 and fixed20 share a name so that one can replace the other on a live link.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

__u64 calls10, calls20, inits;

static void set_cwnd(struct sock *sk, __u32 cwnd)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	tp->snd_cwnd = cwnd;
}

SEC("struct_ops")
void BPF_PROG(fixed_init, struct sock *sk)
{
	__sync_fetch_and_add(&inits, 1);
}

SEC("struct_ops")
__u32 BPF_PROG(fixed_ssthresh, struct sock *sk)
{
	return 2;
}

SEC("struct_ops")
__u32 BPF_PROG(fixed_undo, struct sock *sk)
{
	return ((struct tcp_sock *)sk)->snd_cwnd;
}

SEC("struct_ops")
void BPF_PROG(avoid10, struct sock *sk, __u32 ack, __u32 acked)
{
	set_cwnd(sk, 10);
	__sync_fetch_and_add(&calls10, 1);
}

SEC("struct_ops")
void BPF_PROG(avoid20, struct sock *sk, __u32 ack, __u32 acked)
{
	set_cwnd(sk, 20);
	__sync_fetch_and_add(&calls20, 1);
}

SEC(".struct_ops.link")
struct tcp_congestion_ops fixed10 = {
	.init = (void *)fixed_init,
	.ssthresh = (void *)fixed_ssthresh,
	.cong_avoid = (void *)avoid10,
	.undo_cwnd = (void *)fixed_undo,
	.name = "pylibbpf_fixed",
};

SEC(".struct_ops.link")
struct tcp_congestion_ops fixed20 = {
	.init = (void *)fixed_init,
	.ssthresh = (void *)fixed_ssthresh,
	.cong_avoid = (void *)avoid20,
	.undo_cwnd = (void *)fixed_undo,
	.name = "pylibbpf_fixed",
};
