// A map with a pinning value libbpf does not know: opening fails with EINVAL.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, 2);
} badly_pinned SEC(".maps");

SEC("tc")
int uses_it(struct __sk_buff *skb)
{
	__u32 key = 0, *value = bpf_map_lookup_elem(&badly_pinned, &key);

	return value ? *value : 0;
}
