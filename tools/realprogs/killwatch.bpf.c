// SPDX-License-Identifier: MIT
/* The libbpf-bootstrap ksyscall example's shape: ksyscall probes on kill and tgkill, plus
 * a kretsyscall, printing with bpf_printk. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define SIGTERM 15

const volatile int only_signal = 0;

SEC("ksyscall/tgkill")
int BPF_KSYSCALL(tgkill_entry, pid_t tgid, pid_t tid, int sig)
{
	char comm[16];
	__u32 caller = bpf_get_current_pid_tgid() >> 32;

	if (only_signal && sig != only_signal)
		return 0;
	bpf_get_current_comm(&comm, sizeof(comm));
	bpf_printk("tgkill: %s (%d) -> tgid=%d tid=%d sig=%d", comm, caller, tgid, tid, sig);
	return 0;
}

SEC("ksyscall/kill")
int BPF_KSYSCALL(kill_entry, pid_t pid, int sig)
{
	char comm[16];

	if (sig == 0)
		return 0;
	bpf_get_current_comm(&comm, sizeof(comm));
	bpf_printk("kill: %s -> pid=%d sig=%d%s", comm, pid, sig, sig == SIGTERM ? " (TERM)" : "");
	return 0;
}

SEC("kretsyscall/kill")
int BPF_KRETPROBE(kill_exit, long ret)
{
	if (ret)
		bpf_printk("kill failed: %ld", ret);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
