// SPDX-License-Identifier: MIT
/* libbpf-bootstrap tc example's shape, plus tcx and xdp: parse Ethernet/IPv4 with direct
 * packet access, count per protocol in a per-CPU array, drop by a configured port. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800
#define ETH_HLEN 14

const volatile __u16 blocked_port = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} bytes_by_source SEC(".maps");

static __always_inline int classify(void *data, void *data_end, __u32 len)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct udphdr *udp;
	__u32 proto;
	__u64 *count, init;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	proto = ip->protocol;
	count = bpf_map_lookup_elem(&proto_counts, &proto);
	if (count)
		(*count)++;
	count = bpf_map_lookup_elem(&bytes_by_source, &ip->saddr);
	if (count) {
		__sync_fetch_and_add(count, len);
	} else {
		init = len;
		bpf_map_update_elem(&bytes_by_source, &ip->saddr, &init, BPF_ANY);
	}
	udp = (void *)ip + ip->ihl * 4;
	if (blocked_port && (void *)(udp + 1) <= data_end &&
	    (proto == IPPROTO_UDP || proto == IPPROTO_TCP) && udp->dest == bpf_htons(blocked_port))
		return 1;
	return 0;
}

SEC("tc")
int tc_ingress(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;

	if (ctx->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	return classify(data, data_end, ctx->len) ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tcx/egress")
int tcx_egress(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;

	return classify(data, data_end, ctx->len) ? TCX_DROP : TCX_PASS;
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;

	return classify(data, data_end, data_end - data) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
