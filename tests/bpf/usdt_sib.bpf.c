// needs: the kernel's libbpf headers (usdt.bpf.h with BPF_USDT_ARG_SIB, libbpf 1.7)
// A USDT argument in memory at base + index * scale (`-4@(%rsp,%rdx,4)`), read through the
// newer usdt.bpf.h that linux-source-6.12 ships.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "usdt.bpf.h" /* tools/lib/bpf of linux-source-6.12 */

const volatile __u32 target_tgid = 0;
__s64 values[4];
__u64 hits;

SEC("usdt")
int BPF_USDT(on_indexed, int value, int i)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	if (hits < 4)
		values[hits] = value;
	hits++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
