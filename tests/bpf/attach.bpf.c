// Auto-attachable programs: a tracepoint and a raw tracepoint counting syscalls, plus one
// aimed at a tracepoint that does not exist (not autoloaded: '?').
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 tp_count, raw_count;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_count SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	__u32 key = 0;
	__u64 *count = bpf_map_lookup_elem(&pinned_count, &key);

	__sync_fetch_and_add(&tp_count, 1);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int on_sys_enter(void *ctx)
{
	__sync_fetch_and_add(&raw_count, 1);
	return 0;
}

SEC("?tp/syscalls/pylibbpf_no_such_tracepoint")
int on_nothing(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
