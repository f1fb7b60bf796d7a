// A socket filter for the BPF token test: loaded from inside a user namespace with a
// token only, it counts the datagrams (and bytes) that reach the socket it filters.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

__u64 packets = 0;
__u64 bytes = 0;

SEC("socket")
int count_datagrams(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&packets, 1);
	__sync_fetch_and_add(&bytes, skb->len);
	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
