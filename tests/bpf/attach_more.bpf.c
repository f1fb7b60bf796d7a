// More attach kinds, each with an effect a test can see: sk_lookup steering connections,
// sk_msg verdicts on a sockmap, a netfilter hook, freplace of a global function, and a
// perf_event program on a counter the test opens.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

__u64 steered, msgs_dropped, nf_dropped, samples;

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} listener SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} senders SEC(".maps");

SEC("?sk_lookup")
int steer_7200(struct bpf_sk_lookup *ctx)
{
	__u32 zero = 0;
	struct bpf_sock *sk;

	if (ctx->local_port != 7200)
		return SK_PASS;
	sk = bpf_map_lookup_elem(&listener, &zero);
	if (!sk)
		return SK_PASS;
	if (!bpf_sk_assign(ctx, sk, 0))
		__sync_fetch_and_add(&steered, 1);
	bpf_sk_release(sk);
	return SK_PASS;
}

SEC("?sk_msg")
int drop_msgs(struct sk_msg_md *msg)
{
	__sync_fetch_and_add(&msgs_dropped, 1);
	return SK_DROP;
}

SEC("?netfilter")
int nf_drop_all(struct bpf_nf_ctx *ctx)
{
	__sync_fetch_and_add(&nf_dropped, 1);
	return 0; /* NF_DROP */
}

__noinline int decide(struct xdp_md *ctx)
{
	return ctx ? XDP_PASS : XDP_ABORTED;
}

SEC("?xdp")
int xdp_target(struct xdp_md *ctx)
{
	return decide(ctx);
}

SEC("?freplace/decide")
int new_decide(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("?perf_event")
int on_sample(void *ctx)
{
	__sync_fetch_and_add(&samples, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
