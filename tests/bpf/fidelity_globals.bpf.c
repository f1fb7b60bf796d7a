// Global data of every kind and a string constant, in an object whose name is longer than
// libbpf keeps in its internal map names (fidelity_globals -> "fidelity.bss"), for
// tests/test_fidelity.py: the kernel names of the maps, the read-only maps bound to the
// program, and the layout of nested sub-programs.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u64 hits;                              /* .bss */
__u32 seed = 7;                          /* .data */
const volatile __u32 scale = 3;          /* .rodata */
__u32 custom SEC(".data.custom") = 5;    /* .data.custom */
extern unsigned int CONFIG_HZ __kconfig __weak; /* .kconfig */

/* Sub-programs: fa calls fc, then the program calls fb. libbpf places a callee when it
 * meets the first call to it and relocates it at once (depth first): main, fa, fc, fb. */
__noinline int fc(int x)
{
	return x ^ 0xc1c1;
}

__noinline int fa(int x)
{
	return fc(x) + 0xa1a1;
}

__noinline int fb(int x)
{
	return x + 0xb1b1;
}

SEC("tc")
int globals(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&hits, 1);
	bpf_trace_printk("fidelity %d\n", sizeof("fidelity %d\n"), seed); /* .rodata.str1.1 */
	return (seed + custom + CONFIG_HZ) * scale;
}

SEC("tc")
int nested(struct __sk_buff *skb)
{
	return fa(skb->len) + fb(skb->len);
}
