// struct_ops declarations that must be refused, each in its own '?' section (not
// auto-created) so a test can enable one at a time.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

SEC("struct_ops")
__u32 BPF_PROG(ssthresh, struct sock *sk)
{
	return 2;
}

SEC("struct_ops")
void BPF_PROG(avoid, struct sock *sk, __u32 ack, __u32 acked)
{
}

SEC("struct_ops")
__u32 BPF_PROG(undo, struct sock *sk)
{
	return 2;
}

SEC("xdp")
int not_struct_ops(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* An ops struct no kernel has (close to tcp_congestion_ops). */
struct tcp_congestion_opz {
	__u32 (*ssthresh)(struct sock *sk);
	char name[16];
};

SEC("?.struct_ops")
struct tcp_congestion_opz unknown_struct = {
	.ssthresh = (void *)ssthresh,
	.name = "pylibbpf_unk",
};

/* tcp_congestion_ops with a callback member this kernel does not have. */
struct tcp_congestion_ops___extra {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	__u32 (*pylibbpf_extra)(struct sock *sk);
	char name[16];
};

SEC("?.struct_ops")
struct tcp_congestion_ops___extra extra_member = {
	.ssthresh = (void *)ssthresh,
	.cong_avoid = (void *)avoid,
	.undo_cwnd = (void *)undo,
	.pylibbpf_extra = (void *)undo,
	.name = "pylibbpf_extra",
};

SEC("?.struct_ops")
struct tcp_congestion_ops wrong_program = {
	.ssthresh = (void *)not_struct_ops,
	.cong_avoid = (void *)avoid,
	.undo_cwnd = (void *)undo,
	.name = "pylibbpf_wrong",
};
