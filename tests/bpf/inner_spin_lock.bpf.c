// A map-in-map whose inner map values hold a bpf_spin_lock: the kernel only accepts the
// inner map if the outer map's template was created with the same BTF (special fields).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct locked {
	struct bpf_spin_lock lock;
	__u64 count;
};

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct locked);
} inner_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { [0] = &inner_a },
};

SEC("xdp")
int bump(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct locked *value;
	void *map = bpf_map_lookup_elem(&outer, &zero);

	if (!map)
		return XDP_ABORTED;
	value = bpf_map_lookup_elem(map, &zero);
	if (!value)
		return XDP_ABORTED;
	bpf_spin_lock(&value->lock);
	value->count++;
	bpf_spin_unlock(&value->lock);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
