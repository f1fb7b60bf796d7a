// Load-time rules libbpf applies, for tests/test_fidelity.py: a ring buffer nobody
// sized, a struct_ops program no struct_ops variable uses, an extension program without
// the program it replaces, an exception callback, and a program for prepare().
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

extern void bpf_throw(u64 cookie) __ksym;

int thrown_twice(u64 cookie)
{
	return cookie * 2;
}

SEC("?tc")
__attribute__((btf_decl_tag("exception_callback:thrown_twice")))
int thrower(struct __sk_buff *skb)
{
	if (skb->len)
		bpf_throw(21);
	return 1;
}

SEC("?xdp")
int count(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&counted, 1);
	return XDP_PASS;
}
