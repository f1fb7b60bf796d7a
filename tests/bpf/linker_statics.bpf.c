// Built twice (-DSIDE=1, -DSIDE=2) and linked: each object has static variables named
// `count` (.data) and `seen` (.bss) and a global of its own; the linked object holds two
// of each static, and each program adds its own count into its own seen.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef SIDE
#define SIDE 1
#endif
#define CAT(a, b) a##b
#define NAME(a, b) CAT(a, b)

static volatile int count = SIDE * 10;
static volatile __u32 seen;
int NAME(global, SIDE) = SIDE;

SEC("xdp")
int NAME(prog, SIDE)(struct xdp_md *ctx)
{
	seen += count + NAME(global, SIDE);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
