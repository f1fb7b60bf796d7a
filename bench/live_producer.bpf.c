// Live ring buffer producer: every getppid() of one process emits a 16-byte record into a
// 4 MiB ring; records the ring had no room for are counted, so that produced =
// consumed + dropped can be checked.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

const volatile __u32 target_tgid = 0;
__u64 produced, dropped;

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	__u64 record[2] = { bpf_ktime_get_ns(), 42 };

	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	if (bpf_ringbuf_output(&events, record, sizeof(record), 0))
		__sync_fetch_and_add(&dropped, 1);
	else
		__sync_fetch_and_add(&produced, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
