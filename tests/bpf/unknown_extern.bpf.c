// Calls a function nobody defines (neither in the object nor a kernel __ksym).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int mystery_function(int x);

SEC("xdp")
int calls_mystery(struct xdp_md *ctx)
{
	return mystery_function(1);
}

char LICENSE[] SEC("license") = "GPL";
