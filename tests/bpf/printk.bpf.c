// bpf_printk() from a tracepoint, for the trace pipe tests: one line per getppid() of
// the processes named, carrying a cookie the test chose.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile __u32 first_tgid = 0, second_tgid = 0;
__u64 cookie;

SEC("tp/syscalls/sys_enter_getppid")
int print_getppid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (tgid != first_tgid && tgid != second_tgid)
		return 0;
	bpf_printk("pylibbpf-trace %u %llu", tgid, cookie);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
