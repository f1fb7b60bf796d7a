// Benchmark object without CO-RE: an XDP parser counting packets per IP protocol and
// bytes per port in per-CPU maps.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} per_protocol SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, __u64);
} bytes_per_port SEC(".maps");

const volatile __u16 blocked_port = 0;

static __always_inline int count_port(__u16 port, __u64 bytes)
{
	__u64 *total = bpf_map_lookup_elem(&bytes_per_port, &port);

	if (total)
		*total += bytes;
	else
		bpf_map_update_elem(&bytes_per_port, &port, &bytes, BPF_NOEXIST);
	return port == blocked_port && blocked_port ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 protocol;
	__u64 *count;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	protocol = ip->protocol;
	count = bpf_map_lookup_elem(&per_protocol, &protocol);
	if (count)
		(*count)++;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)ip + ip->ihl * 4;
		if ((void *)(tcp + 1) > end)
			return XDP_PASS;
		return count_port(bpf_ntohs(tcp->dest), end - data);
	}
	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)ip + ip->ihl * 4;
		if ((void *)(udp + 1) > end)
			return XDP_PASS;
		return count_port(bpf_ntohs(udp->dest), end - data);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
