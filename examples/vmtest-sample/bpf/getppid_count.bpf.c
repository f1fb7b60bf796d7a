// Counts the getppid() calls of one process (the test's), so getppid() calls made by
// anything else on the machine at the same moment leave the count alone.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, 2 /* BPF_MAP_TYPE_ARRAY */);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

const volatile __u32 target_tgid = 0; /* set by the loader before load */

SEC("tp/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	__u32 key = 0;
	__u64 *count;

	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	count = bpf_map_lookup_elem(&calls, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
