// tcp_cc: a TCP congestion control written in BPF (struct_ops tcp_congestion_ops).
// Reno's rules — slow start up to ssthresh, then one segment per window of ACKs, halve on
// loss — with a ceiling on the window that user space sets in .rodata before load, and
// counters user space reads from .bss.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile __u32 max_cwnd = 64; /* segments */

struct {
	__u64 acks, slow_start, avoidance, losses, capped, inits;
	__u32 max_seen;
} stats;

static struct tcp_sock *tcp_sk(struct sock *sk)
{
	return (struct tcp_sock *)sk;
}

SEC("struct_ops")
void BPF_PROG(demo_init, struct sock *sk)
{
	__sync_fetch_and_add(&stats.inits, 1);
}

SEC("struct_ops")
__u32 BPF_PROG(demo_ssthresh, struct sock *sk)
{
	struct tcp_sock *tp = tcp_sk(sk);
	__u32 half = tp->snd_cwnd >> 1;

	__sync_fetch_and_add(&stats.losses, 1);
	return half > 2 ? half : 2;
}

SEC("struct_ops")
void BPF_PROG(demo_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = tcp_sk(sk);
	__u32 cwnd = tp->snd_cwnd;

	__sync_fetch_and_add(&stats.acks, 1);
	if (cwnd < tp->snd_ssthresh) {
		cwnd += acked;
		if (cwnd > tp->snd_ssthresh)
			cwnd = tp->snd_ssthresh;
		__sync_fetch_and_add(&stats.slow_start, 1);
	} else {
		__u32 count = tp->snd_cwnd_cnt + acked;

		if (count >= cwnd) {
			count -= cwnd;
			cwnd++;
		}
		tp->snd_cwnd_cnt = count;
		__sync_fetch_and_add(&stats.avoidance, 1);
	}
	if (cwnd > max_cwnd) {
		cwnd = max_cwnd;
		__sync_fetch_and_add(&stats.capped, 1);
	}
	tp->snd_cwnd = cwnd;
	if (cwnd > stats.max_seen)
		stats.max_seen = cwnd;
}

SEC("struct_ops")
__u32 BPF_PROG(demo_undo_cwnd, struct sock *sk)
{
	return tcp_sk(sk)->snd_cwnd;
}

SEC(".struct_ops.link")
struct tcp_congestion_ops demo_cc = {
	.init = (void *)demo_init,
	.ssthresh = (void *)demo_ssthresh,
	.cong_avoid = (void *)demo_cong_avoid,
	.undo_cwnd = (void *)demo_undo_cwnd,
	.name = "pylibbpf_demo",
};

char LICENSE[] SEC("license") = "GPL";
