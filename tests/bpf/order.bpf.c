// Programs whose order at a multi-program hook shows: tcx and netkit verdicts (the first
// program that returns anything but NEXT decides a packet's fate) and cgroup programs
// that each note when they ran (every cgroup program runs; only the order differs).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define VERDICT_NEXT -1 /* TCX_NEXT, NETKIT_NEXT */
#define VERDICT_PASS 0 /* TCX_PASS, NETKIT_PASS */
#define VERDICT_DROP 2 /* TCX_DROP, NETKIT_DROP */

__u64 pass_seen, drop_seen, next_seen, tick, first_at, second_at;

SEC("?tc/ingress")
int tc_pass(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&pass_seen, 1);
	return VERDICT_PASS;
}

SEC("?tc/ingress")
int tc_drop(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&drop_seen, 1);
	return VERDICT_DROP;
}

SEC("?tc/ingress")
int tc_next(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&next_seen, 1);
	return VERDICT_NEXT;
}

SEC("?netkit/primary")
int nk_primary_drop(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&drop_seen, 1);
	return VERDICT_DROP;
}

SEC("?netkit/primary")
int nk_primary_pass(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&pass_seen, 1);
	return VERDICT_PASS;
}

SEC("?netkit/peer")
int nk_peer_drop(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&drop_seen, 1);
	return VERDICT_DROP;
}

SEC("?cgroup/sock_create")
int cg_first(struct bpf_sock *sk)
{
	if (!first_at)
		first_at = __sync_add_and_fetch(&tick, 1);
	return 1;
}

SEC("?cgroup/sock_create")
int cg_second(struct bpf_sock *sk)
{
	if (!second_at)
		second_at = __sync_add_and_fetch(&tick, 1);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
