// A load that fails half-way: 'good' loads, then the verifier rejects 'bad' (it reads a
// map value without checking for NULL). What the load made before — maps, the pin of
// 'kept', the BTF, 'good' — must be undone. Also used with the fake kernel.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 answer = 42;
__u64 hits;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kept SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} scratch SEC(".maps");

SEC("xdp")
int good(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(&scratch, &key);

	if (value)
		*value += answer;
	hits++;
	return XDP_PASS;
}

SEC("xdp")
int bad(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(&kept, &key);

	return *value == 1 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
