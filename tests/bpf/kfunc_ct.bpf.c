// A kfunc call that lives in vmlinux on some kernels and in a module on others: the
// conntrack lookup (nf_conntrack is built in on the development host, a module in Debian's
// kernels). The lookup of a connection that does not exist reports -ENOENT in opts.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct ct_opts { /* the 12-byte layout every kernel since 6.0 accepts */
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u8 reserved[2];
};

extern struct nf_conn *bpf_xdp_ct_lookup(struct xdp_md *ctx, struct bpf_sock_tuple *tuple,
					 __u32 tuple_size, struct ct_opts *opts,
					 __u32 opts_size) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

__s32 lookup_error = 1;
__u32 found;

SEC("xdp")
int ct_lookup(struct xdp_md *ctx)
{
	struct ct_opts opts = { .netns_id = -1, .l4proto = 6 /* TCP */ };
	struct bpf_sock_tuple tuple = {};
	struct nf_conn *ct;

	tuple.ipv4.saddr = 0x0100007f;
	tuple.ipv4.daddr = 0x0100007f;
	tuple.ipv4.sport = 1;
	tuple.ipv4.dport = 2;
	ct = bpf_xdp_ct_lookup(ctx, &tuple, sizeof(tuple.ipv4), &opts, sizeof(opts));
	if (ct) {
		found = 1;
		bpf_ct_release(ct);
	}
	lookup_error = opts.error;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
