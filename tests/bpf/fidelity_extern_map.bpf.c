// An extern map, meant to be resolved by static linking: opening it alone fails as
// with libbpf ("unrecognized extern section '.maps'", EOPNOTSUPP).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

extern struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} shared SEC(".maps");

SEC("tc")
int reads_shared(struct __sk_buff *skb)
{
	__u32 key = 0, *value = bpf_map_lookup_elem(&shared, &key);

	return value ? *value : 0;
}
