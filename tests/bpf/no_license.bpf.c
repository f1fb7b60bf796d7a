// An object without a license section: libbpf opens it and loads its programs as
// non-GPL (license ""); a GPL-only helper would then be refused by the verifier.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int pass_all(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("?xdp")
int gpl_helper(struct xdp_md *ctx)
{
	bpf_printk("GPL-only helper");
	return XDP_PASS;
}
