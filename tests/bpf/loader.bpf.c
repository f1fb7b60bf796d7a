// Object-loading features without CO-RE: global data in every kind of section, static,
// global and callback sub-programs, a tail call through a prog array with initial
// values, map-in-map with initial values, kconfig and ksym externs, pinning by name.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct config {
	__u32 mult;
	__u8 tag[4];
};

const volatile __u32 rodata_add = 7;
__u64 bss_counter;
__u32 data_seed = 100;
struct config data_cfg = { .mult = 3, .tag = "abc" };
__u32 custom_value SEC(".data.custom") = 11;
char greeting[8] SEC(".rodata.custom") = "hello";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} results SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shared_counts SEC(".maps");

static __noinline __u32 static_add(__u32 a, __u32 b)
{
	return a + b + rodata_add;
}

__noinline int global_mul(int x)
{
	return x * data_cfg.mult;
}

static long sum_cb(__u32 index, void *ctx)
{
	__u64 *sum = ctx;

	*sum += index;
	return 0;
}

SEC("xdp")
int xdp_compute(struct xdp_md *ctx)
{
	__u64 sum = 0, value;
	__u32 key = 1;

	bpf_loop(10, sum_cb, &sum, 0);                       /* 45 */
	value = static_add(data_seed, custom_value);         /* 100 + 11 + 7 */
	value += global_mul(5);                              /* 15 */
	value += sum;
	bpf_map_update_elem(&results, &key, &value, BPF_ANY);
	__sync_fetch_and_add(&bss_counter, 1);
	return greeting[0] == 'h' ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int tail_target(struct xdp_md *ctx)
{
	return XDP_DROP;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__array(values, int(void *));
} jump_table SEC(".maps") = {
	.values = { [1] = (void *)&tail_target },
};

SEC("xdp")
int tail_entry(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jump_table, 1);
	return XDP_PASS;
}

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { &inner_a, &inner_b },
};

SEC("xdp")
int via_outer(struct xdp_md *ctx)
{
	__u32 slot = 1, zero = 0, *verdict;
	void *inner_map = bpf_map_lookup_elem(&outer, &slot);

	if (!inner_map)
		return XDP_ABORTED;
	verdict = bpf_map_lookup_elem(inner_map, &zero);
	return verdict ? *verdict : XDP_ABORTED;
}

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig;
extern enum libbpf_tristate CONFIG_BPF_SYSCALL __kconfig;
extern _Bool CONFIG_PYLIBBPF_NO_SUCH_OPTION __kconfig __weak;
extern const void __x64_sys_getppid __ksym;
extern const void pylibbpf_no_such_symbol __ksym __weak;

__u32 seen_version, seen_hz, seen_bpf_syscall, seen_missing;
__u64 seen_address, seen_weak_address;

SEC("xdp")
int read_externs(struct xdp_md *ctx)
{
	seen_version = LINUX_KERNEL_VERSION;
	seen_hz = CONFIG_HZ;
	seen_bpf_syscall = CONFIG_BPF_SYSCALL;
	seen_missing = CONFIG_PYLIBBPF_NO_SUCH_OPTION;
	seen_address = (__u64)&__x64_sys_getppid;
	seen_weak_address = (__u64)&pylibbpf_no_such_symbol;
	return XDP_PASS;
}

SEC("xdp")
int count_shared(struct xdp_md *ctx)
{
	__u32 key = 0, one = 1, *count = bpf_map_lookup_elem(&shared_counts, &key);

	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&shared_counts, &key, &one, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
