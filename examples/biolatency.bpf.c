// biolatency: block I/O latency per disk as log2 histograms, like bcc's biolatency -D.
// tp_btf programs get the tracepoints' struct request straight from BTF: the issue time
// is kept per request, and completion adds the latency to its disk's histogram.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define MAX_SLOTS 27
#define MINORBITS 20

const volatile __u32 target_dev = 0; /* 0: every disk, else MKDEV(major, first minor) */
const volatile bool milliseconds = false;

struct hist {
	__u32 slots[MAX_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, __u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32); /* dev_t of the disk, the kernel's encoding */
	__type(value, struct hist);
} hists SEC(".maps");

static __always_inline __u32 disk_of(struct request *rq)
{
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);

	if (!disk)
		return 0;
	return ((__u32)BPF_CORE_READ(disk, major) << MINORBITS) | BPF_CORE_READ(disk, first_minor);
}

/* Slot n counts values in [2^n, 2^(n+1)); slot 0 also counts 0. */
static __always_inline __u32 log2_slot(__u64 value)
{
	__u32 slot = 0;

	for (int i = 0; i < 64 && value > 1; i++) {
		value >>= 1;
		slot++;
	}
	return slot < MAX_SLOTS ? slot : MAX_SLOTS - 1;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue, struct request *rq)
{
	__u64 now = bpf_ktime_get_ns();

	if (target_dev && disk_of(rq) != target_dev)
		return 0;
	bpf_map_update_elem(&start, &rq, &now, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	static const struct hist zero;
	__u64 *issued = bpf_map_lookup_elem(&start, &rq);
	struct hist *hist;
	__u64 delta;
	__u32 dev, slot;

	if (!issued)
		return 0;
	delta = bpf_ktime_get_ns() - *issued;
	bpf_map_delete_elem(&start, &rq);
	dev = disk_of(rq);
	hist = bpf_map_lookup_elem(&hists, &dev);
	if (!hist) {
		bpf_map_update_elem(&hists, &dev, &zero, BPF_NOEXIST);
		hist = bpf_map_lookup_elem(&hists, &dev);
		if (!hist)
			return 0;
	}
	delta /= milliseconds ? 1000000 : 1000;
	slot = log2_slot(delta);
	__sync_fetch_and_add(&hist->slots[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
