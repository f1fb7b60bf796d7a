// minimal: bpf_printk() from a tracepoint, read back by pylibbpf.trace (like
// libbpf-bootstrap's minimal). Each write() by one process (to one fd) prints a line.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile __u32 target_tgid = 0; /* set from Python before load */
const volatile int target_fd = -1;    /* -1: writes to any fd */

SEC("tp/syscalls/sys_enter_write")
int handle_write(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (tgid != target_tgid || (target_fd >= 0 && ctx->args[0] != target_fd))
		return 0;
	bpf_printk("BPF triggered from PID %d: write(%d, ..., %d)", tgid, (int)ctx->args[0],
		   (int)ctx->args[2]);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
