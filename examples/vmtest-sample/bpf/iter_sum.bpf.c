// Sums 1..10 with an open-coded numeric iterator (the bpf_iter_num_* kfuncs, kernel 6.4+)
// on the test's getppid() call and stores the sum. Kernel 6.1 has no such kfuncs: loading
// fails there, which is what the sample's per-kernel report shows.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct bpf_iter_num {
	__u64 __opaque[1];
} __attribute__((aligned(8)));

extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;

struct {
	__uint(type, 2 /* BPF_MAP_TYPE_ARRAY */);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sums SEC(".maps");

const volatile __u32 target_tgid = 0;

SEC("tp/syscalls/sys_enter_getppid")
int sum_numbers(void *ctx)
{
	struct bpf_iter_num it;
	__u64 sum = 0;
	__u32 key = 0;
	int *n;

	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	bpf_iter_num_new(&it, 1, 11);
	while ((n = bpf_iter_num_next(&it)))
		sum += *n;
	bpf_iter_num_destroy(&it);
	bpf_map_update_elem(&sums, &key, &sum, 0 /* BPF_ANY */);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
