// A typeless kernel symbol the kernel does not have (strong): libbpf leaves it
// unresolved after reading kallsyms and fails the load with ESRCH.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

extern const void pylibbpf_missing_symbol __ksym;

SEC("tc")
int uses_symbol(struct __sk_buff *skb)
{
	return (__u64)&pylibbpf_missing_symbol >> 60;
}
