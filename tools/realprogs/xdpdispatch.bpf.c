// SPDX-License-Identifier: MIT
/* An XDP dispatcher in the style of xdp-tools: a program array filled at load from
 * .values (declarative initialisation), tail calls into per-protocol stages, a devmap
 * redirect and a per-CPU stats array. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} out_ports SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &slot);

	if (n)
		(*n)++;
}

SEC("xdp")
int stage_ipv4(struct xdp_md *ctx)
{
	count(1);
	return bpf_redirect_map(&out_ports, 0, XDP_PASS);
}

SEC("xdp")
int stage_ipv6(struct xdp_md *ctx)
{
	count(2);
	return XDP_PASS;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int (void *));
} stages SEC(".maps") = {
	.values = {
		[0] = (void *)&stage_ipv4,
		[1] = (void *)&stage_ipv6,
	},
};

SEC("xdp")
int dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	count(0);
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		bpf_tail_call(ctx, &stages, 0);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		bpf_tail_call(ctx, &stages, 1);
	count(3);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
