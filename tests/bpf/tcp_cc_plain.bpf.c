// Plain (not link-based) TCP congestion controls for the struct_ops tests: these work on
// kernels without struct_ops links (before 6.4).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

__u64 calls;

SEC("struct_ops")
__u32 BPF_PROG(plain_ssthresh, struct sock *sk)
{
	return 2;
}

SEC("struct_ops")
__u32 BPF_PROG(plain_undo, struct sock *sk)
{
	return ((struct tcp_sock *)sk)->snd_cwnd;
}

SEC("struct_ops")
void BPF_PROG(plain_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	((struct tcp_sock *)sk)->snd_cwnd = 10;
	__sync_fetch_and_add(&calls, 1);
}

SEC(".struct_ops")
struct tcp_congestion_ops plain = {
	.ssthresh = (void *)plain_ssthresh,
	.cong_avoid = (void *)plain_avoid,
	.undo_cwnd = (void *)plain_undo,
	.name = "pylibbpf_plain",
};

/* Not auto-created ('?'): lacks the mandatory ssthresh callback. */
SEC("?.struct_ops")
struct tcp_congestion_ops incomplete = {
	.cong_avoid = (void *)plain_avoid,
	.undo_cwnd = (void *)plain_undo,
	.name = "pylibbpf_broken",
};
