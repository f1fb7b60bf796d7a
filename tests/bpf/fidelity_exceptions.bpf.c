// A program with an exception callback (BPF exceptions, Linux 6.7+): nothing calls the
// callback, the exception_callback decl tag names it, and libbpf links it in anyway.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

extern void bpf_throw(u64 cookie) __ksym;

int thrown_twice(u64 cookie)
{
	return cookie * 2;
}

SEC("tc")
__attribute__((btf_decl_tag("exception_callback:thrown_twice")))
int thrower(struct __sk_buff *skb)
{
	if (skb->len)
		bpf_throw(21);
	return 1;
}
