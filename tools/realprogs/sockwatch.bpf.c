// SPDX-License-Identifier: MIT
/* libbpf-bootstrap sockfilter example's shape: a socket filter reading headers with
 * bpf_skb_load_bytes and emitting flow records through a ring buffer; and a cgroup_skb
 * program accounting egress bytes per cgroup in cgroup storage. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

struct flow {
	__be32 src, dst;
	__u32 ports;
	__u32 proto;
	__u32 pkt_type;
	__u32 ifindex;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, struct bpf_cgroup_storage_key);
	__type(value, __u64);
} egress_bytes SEC(".maps");

static __always_inline bool is_fragment(struct __sk_buff *skb, __u32 nhoff)
{
	__u16 frag_off;

	bpf_skb_load_bytes(skb, nhoff + offsetof(struct iphdr, frag_off), &frag_off, 2);
	frag_off = __bpf_ntohs(frag_off);
	return frag_off & (IP_MF | IP_OFFSET);
}

SEC("socket")
int socket_flows(struct __sk_buff *skb)
{
	struct flow *f;
	__u16 proto;
	__u32 nhoff = ETH_HLEN;
	__u8 verlen;

	bpf_skb_load_bytes(skb, 12, &proto, 2);
	if (__bpf_ntohs(proto) != ETH_P_IP)
		return 0;
	if (is_fragment(skb, nhoff))
		return 0;
	f = bpf_ringbuf_reserve(&flows, sizeof(*f), 0);
	if (!f)
		return 0;
	bpf_skb_load_bytes(skb, nhoff + offsetof(struct iphdr, protocol), &f->proto, 1);
	if (f->proto != IPPROTO_GRE) {
		bpf_skb_load_bytes(skb, nhoff + offsetof(struct iphdr, saddr), &f->src, 4);
		bpf_skb_load_bytes(skb, nhoff + offsetof(struct iphdr, daddr), &f->dst, 4);
	}
	bpf_skb_load_bytes(skb, nhoff, &verlen, 1);
	bpf_skb_load_bytes(skb, nhoff + ((verlen & 0xF) << 2), &f->ports, 4);
	f->pkt_type = skb->pkt_type;
	f->ifindex = skb->ifindex;
	bpf_ringbuf_submit(f, 0);
	return skb->len;
}

SEC("cgroup_skb/egress")
int count_egress(struct __sk_buff *skb)
{
	__u64 *bytes = bpf_get_local_storage(&egress_bytes, 0);

	__sync_fetch_and_add(bytes, skb->len);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
