// Programs that need the BPF selftests' bpf_testmod kernel module (vm-tests/testmod):
// a kfunc the module defines, called from tc; fentry/fexit on the module's
// bpf_testmod_test_read (reading /sys/kernel/bpf_testmod calls it), and fentry on
// bpf_testmod_fentry_test1 named with the module ("fentry/MODULE:FUNCTION").
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern long bpf_kfunc_call_test4(signed char a, short b, int c, long d) __ksym;

int reader_tgid;
long kfunc_result;
__u64 read_len, read_calls, read_ret, test1_arg;

SEC("tc")
int call_kfunc(struct __sk_buff *skb)
{
	kfunc_result = bpf_kfunc_call_test4(-3, -30, -200, -1000);
	return 0;
}

SEC("fentry/bpf_testmod_test_read")
int BPF_PROG(enter_read, struct file *file, struct kobject *kobj, void *attr, char *buf,
	     loff_t off, size_t len)
{
	if (bpf_get_current_pid_tgid() >> 32 != reader_tgid)
		return 0;
	read_len = len;
	read_calls++;
	return 0;
}

SEC("fexit/bpf_testmod_test_read")
int BPF_PROG(exit_read, struct file *file, struct kobject *kobj, void *attr, char *buf,
	     loff_t off, size_t len, ssize_t ret)
{
	if (bpf_get_current_pid_tgid() >> 32 != reader_tgid)
		return 0;
	read_ret = ret;
	return 0;
}

SEC("fentry/bpf_testmod:bpf_testmod_fentry_test1")
int BPF_PROG(enter_test1, int a)
{
	if (bpf_get_current_pid_tgid() >> 32 == reader_tgid)
		test1_arg = a;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
