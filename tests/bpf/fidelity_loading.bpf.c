// Load-time rules libbpf applies, for tests/test_fidelity.py: a ring buffer nobody
// sized, a struct_ops program no struct_ops variable uses, an extension program without
// the program it replaces, and a program for prepare().
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
} unsized SEC(".maps");

__u64 counted;

SEC("?tc")
int uses_ring(struct __sk_buff *skb)
{
	bpf_ringbuf_output(&unsized, &counted, sizeof(counted), 0);
	return 0;
}

SEC("?struct_ops/ssthresh")
__u32 BPF_PROG(unused_ssthresh, struct sock *sk)
{
	return 2;
}

SEC("?freplace/some_function")
int replacement(struct __sk_buff *skb)
{
	return 0;
}

SEC("?xdp")
int count(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&counted, 1);
	return XDP_PASS;
}
