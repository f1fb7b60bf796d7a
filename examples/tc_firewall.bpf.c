// tc_firewall: drop IPv4 TCP and UDP packets arriving for the destination ports listed in
// a map that user space edits while the program runs; count drops per port.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);   /* destination port, host byte order */
	__type(value, __u64); /* packets dropped */
} blocked_ports SEC(".maps");

__u64 passed;

SEC("tc")
int filter_ports(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u16 port, *ports;
	__u64 *drops;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	ports = (void *)ip + ip->ihl * 4; /* source, destination: same place in TCP and UDP */
	if ((void *)(ports + 2) > end)
		return TC_ACT_OK;
	port = bpf_ntohs(ports[1]);
	drops = bpf_map_lookup_elem(&blocked_ports, &port);
	if (drops) {
		__sync_fetch_and_add(drops, 1);
		return TC_ACT_SHOT;
	}
	__sync_fetch_and_add(&passed, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
