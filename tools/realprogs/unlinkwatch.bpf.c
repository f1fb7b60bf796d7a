// SPDX-License-Identifier: MIT
/* libbpf-bootstrap fentry and lsm examples' shape: fentry/fexit on do_unlinkat reading the
 * filename, and an LSM hook on bpf() that refuses a command when configured. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define EPERM 1

const volatile int refused_cmd = -1;

SEC("fentry/do_unlinkat")
int BPF_PROG(unlink_entry, int dfd, struct filename *name)
{
	pid_t pid = bpf_get_current_pid_tgid() >> 32;

	bpf_printk("fentry: pid = %d, filename = %s\n", pid, name->name);
	return 0;
}

SEC("fexit/do_unlinkat")
int BPF_PROG(unlink_exit, int dfd, struct filename *name, long ret)
{
	pid_t pid = bpf_get_current_pid_tgid() >> 32;

	bpf_printk("fexit: pid = %d, filename = %s, ret = %ld\n", pid, name->name, ret);
	return 0;
}

SEC("lsm/bpf")
int BPF_PROG(refuse_bpf, int cmd, union bpf_attr *attr, unsigned int size, bool kernel, int ret)
{
	if (ret != 0)
		return ret;
	if (cmd == refused_cmd)
		return -EPERM;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
