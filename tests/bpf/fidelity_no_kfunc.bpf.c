// A kfunc the kernel does not have, used by a program that is not loaded: libbpf resolves
// externs for the whole object before any program loads, so the load fails with EINVAL.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

extern void pylibbpf_missing_kfunc(void) __ksym;

SEC("?tc")
int uses_kfunc(struct __sk_buff *skb)
{
	pylibbpf_missing_kfunc();
	return 0;
}

SEC("tc")
int plain(struct __sk_buff *skb)
{
	return 1;
}
