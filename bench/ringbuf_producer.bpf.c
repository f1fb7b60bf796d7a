// Benchmark producer: each run writes one 16-byte record into a ring buffer of RING_BYTES
// (64 MiB unless the build says otherwise).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef RING_BYTES
#define RING_BYTES (1 << 26)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RING_BYTES);
} events SEC(".maps");

__u64 seq;

SEC("xdp")
int produce(struct xdp_md *ctx)
{
	__u64 record[2] = { __sync_fetch_and_add(&seq, 1), 42 };

	bpf_ringbuf_output(&events, record, sizeof(record), 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
