// BPF streams: text a program writes to its own stdout with bpf_stream_printk() (the
// kfunc is bpf_stream_vprintk_impl from 6.18, bpf_stream_vprintk in 6.17: one program
// each, the test loads the one this kernel has), and a may_goto loop that never ends, for
// the kernel's own timeout report on the program's stderr.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern int bpf_stream_vprintk_impl(int stream_id, const char *fmt__str, const void *args,
				   __u32 len__sz, void *aux__prog) __weak __ksym;
extern int bpf_stream_vprintk(int stream_id, const char *fmt__str, const void *args,
			      __u32 len__sz, void *aux__prog) __weak __ksym;

#define STDOUT 1

__u64 cookie = 0;
__u64 spins = 0;

static __always_inline int say(const char *fmt, __u64 *args, __u32 size, int impl)
{
	if (impl)
		return bpf_stream_vprintk_impl(STDOUT, fmt, args, size, NULL);
	return bpf_stream_vprintk(STDOUT, fmt, args, size, NULL);
}

#define HELLO(name, impl)                                                      \
	SEC("?syscall")                                                        \
	int name(void *ctx)                                                    \
	{                                                                      \
		static const char fmt[] = "hello %llu from %s\nsecond line\n"; \
		static const char who[] = "bpf";                               \
		__u64 args[2] = { cookie, (__u64)who };                        \
		return say(fmt, args, sizeof(args), impl);                     \
	}

HELLO(hello, 1)
HELLO(hello_617, 0)

SEC("?syscall")
int spin_forever(void *ctx)
{
	for (;;) {
		asm volatile goto("may_goto %l[out]" :::: out);
		spins++;
	}
out:
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
