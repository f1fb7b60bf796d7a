// Built twice (-DSIDE=1, -DSIDE=2) and linked: two objects calling the same kfuncs and
// naming the same typeless ksym, which libbpf 1.5's linker refuses to link. Each program
// records its side into .bss.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef SIDE
#define SIDE 1 /* compiled alone (the VM suite precompiles every source) */
#endif

#define CAT(a, b) a##b
#define NAME(a, b) CAT(a, b)

extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;
extern const void bpf_prog_fops __ksym __weak;

int NAME(out, SIDE);
long NAME(fops, SIDE);

SEC("tp_btf/sys_enter")
int NAME(prog, SIDE)(void *ctx)
{
	bpf_rcu_read_lock();
	NAME(out, SIDE) = SIDE;
	NAME(fops, SIDE) = (long)&bpf_prog_fops;
	bpf_rcu_read_unlock();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
