// Externs as libbpf resolves them, for tests/test_fidelity.py: bpf_ksym_exists() on a
// kfunc the kernel has and on one it has not (a BTF id, or 0), and a kfunc with a
// ___flavour suffix resolved by its name without the suffix, prototype checked.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#ifndef bpf_ksym_exists /* libbpf 1.2's bpf_helpers.h has it; Debian's 1.1 does not */
#define bpf_ksym_exists(sym) (!!&(sym))
#endif

extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym __weak;
extern void pylibbpf_no_such_kfunc(void) __ksym __weak;
/* bpf_task_acquire with the kernel's prototype, and a flavour with another one */
extern struct task_struct *bpf_task_acquire___one(struct task_struct *p) __ksym __weak;
extern struct task_struct *bpf_task_acquire___two(int pid) __ksym __weak;

SEC("tc")
int ksym_exists(struct __sk_buff *skb)
{
	int found = 0;

	if (bpf_ksym_exists(bpf_task_from_pid))
		found |= 1;
	if (bpf_ksym_exists(pylibbpf_no_such_kfunc))
		found |= 2;
	return found;
}

int target_pid = 1; /* the test sets its own */

SEC("tc")
int flavours(struct __sk_buff *skb)
{
	struct task_struct *task, *acquired;
	int result = 1;

	if (bpf_ksym_exists(bpf_task_acquire___two))
		result |= 4; /* incompatible prototype: must stay unresolved */
	task = bpf_task_from_pid(target_pid);
	if (!task)
		return 0;
	acquired = bpf_task_acquire___one(task);
	if (acquired) {
		result |= 2;
		bpf_task_release(acquired);
	}
	bpf_task_release(task);
	return result;
}
