// The "library" half of the static-linker tests (linked with linker_main.bpf.c): a map
// the other object uses through an extern declaration, a strong global it reads, weak
// definitions the other object overrides, a hidden function, and a static helper whose
// name the other object uses for a different function. lib_prog computes a number from
// all of them, so a BPF_PROG_TEST_RUN shows which definition each call reached.
// first_weak is weak in both objects: the first object's definition wins.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct counters {
	__u64 hits;
	__u32 last;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct counters);
	__uint(max_entries, 4);
} stats SEC(".maps");

int lib_value = 7;
__weak int tunable = 1;
__weak int first_weak = 1;
const volatile int lib_scale = 1000;

__weak __noinline int pick(int x)
{
	return x + 1;
}

static __noinline int helper(int x)
{
	return x * 3;
}

__hidden __noinline int lib_add(int x)
{
	return helper(x) + lib_value;
}

static void record(__u32 slot, __u32 value)
{
	struct counters *c = bpf_map_lookup_elem(&stats, &slot);

	if (c) {
		c->hits++;
		c->last = value;
	}
}

SEC("xdp")
int lib_prog(struct xdp_md *ctx)
{
	int len = ctx->data_end - ctx->data;

	record(1, pick(len) * lib_scale + tunable + helper(len) + first_weak * 10);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
