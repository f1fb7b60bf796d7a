// kprobe.session and uprobe.session: one program runs on entry and, unless the entry
// run returned non-zero, on return; a per-call cookie carries a value from one to the
// other. Entries are numbered; odd ones skip their return probe.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern bool bpf_session_is_return(void) __ksym __weak;
extern __u64 *bpf_session_cookie(void) __ksym __weak;

const volatile __u32 target_tgid = 0;

__u64 entries, returns, cookie_sum, return_value_sum;

static __always_inline int session(struct pt_regs *ctx)
{
	__u64 *cookie = bpf_session_cookie();

	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 1; /* not ours: no return probe */
	if (!bpf_session_is_return()) {
		__u64 n = __sync_add_and_fetch(&entries, 1);

		*cookie = n * 100;
		return n & 1; /* odd entries: no return probe */
	}
	__sync_fetch_and_add(&returns, 1);
	__sync_fetch_and_add(&cookie_sum, *cookie);
	__sync_fetch_and_add(&return_value_sum, PT_REGS_RC(ctx));
	return 0;
}

SEC("?uprobe.session")
int on_add_session(struct pt_regs *ctx)
{
	return session(ctx);
}

SEC("?kprobe.session")
int on_getpgid_session(struct pt_regs *ctx)
{
	return session(ctx);
}

char LICENSE[] SEC("license") = "GPL";
