// The "main" half of the static-linker tests (see linker_lib.bpf.c). The -D variants make
// the conflicts the linker must refuse: a second strong definition, an extern map or
// variable whose declaration disagrees with the definition, another license.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct counters {
	__u64 hits;
	__u32 last;
};

#ifndef STATS_ENTRIES
#define STATS_ENTRIES 4
#endif
#ifndef STATS_VALUE
#define STATS_VALUE struct counters
#endif

extern struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, STATS_VALUE);
	__uint(max_entries, STATS_ENTRIES);
} stats SEC(".maps");

#ifdef STRONG_LIB_VALUE
int lib_value = 9;
#elif defined(LONG_LIB_VALUE)
extern long lib_value;
#else
extern int lib_value;
#endif

int tunable = 5;
__weak int first_weak = 2;

__noinline int pick(int x)
{
	return x + 100;
}

static __noinline int helper(int x)
{
	return x * 5;
}

extern int lib_add(int x);

SEC("xdp")
int main_prog(struct xdp_md *ctx)
{
	int len = ctx->data_end - ctx->data;
	__u32 slot = 0;
	struct counters *c = bpf_map_lookup_elem(&stats, &slot);

	if (c) {
		c->hits++;
		c->last = pick(len) + helper(len) + lib_add(len) + tunable + lib_value +
			  first_weak * 10000;
	}
	return XDP_PASS;
}

#ifdef OTHER_LICENSE
char LICENSE[] SEC("license") = "Dual BSD/GPL";
#else
char LICENSE[] SEC("license") = "GPL";
#endif
