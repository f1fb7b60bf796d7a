// SPDX-License-Identifier: MIT
/* biolatency-style: block tp_btf and raw_tp twins, a histogram per disk, a cgroup filter,
 * and a CO-RE flavour for struct request's disk (rq_disk went away in 5.17). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tools.bpf.h"

const volatile bool filter_cg = false;
const volatile bool per_disk = false;
const volatile bool in_ms = false;
const volatile dev_t want_dev = 0;

struct request___old {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

struct disk_key {
	u32 dev;
};

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__type(key, u32);
	__type(value, u32);
	__uint(max_entries, 1);
} cgroup_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct disk_key);
	__type(value, struct hist);
} hists SEC(".maps");

static struct hist zero;

static __always_inline struct gendisk *disk_of(struct request *rq)
{
	if (bpf_core_field_exists(((struct request___old *)0)->rq_disk))
		return BPF_CORE_READ((struct request___old *)rq, rq_disk);
	return BPF_CORE_READ(rq, q, disk);
}

static __always_inline u32 dev_of(struct gendisk *disk)
{
	return disk ? (BPF_CORE_READ(disk, major) << 20) | BPF_CORE_READ(disk, first_minor) : 0;
}

static __always_inline int mark(struct request *rq)
{
	u64 ts = bpf_ktime_get_ns();

	if (filter_cg && !bpf_current_task_under_cgroup(&cgroup_map, 0))
		return 0;
	if (want_dev && dev_of(disk_of(rq)) != want_dev)
		return 0;
	bpf_map_update_elem(&start, &rq, &ts, BPF_ANY);
	return 0;
}

static __always_inline int done(struct request *rq)
{
	struct disk_key key = {};
	struct hist *h;
	u64 *tsp, delta;

	tsp = bpf_map_lookup_elem(&start, &rq);
	if (!tsp)
		return 0;
	delta = bpf_ktime_get_ns() - *tsp;
	if (per_disk)
		key.dev = dev_of(disk_of(rq));
	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h)
			goto out;
	}
	hist_add(h, in_ms ? delta / 1000000 : delta / 1000);
out:
	bpf_map_delete_elem(&start, &rq);
	return 0;
}

SEC("tp_btf/block_rq_insert")
int BPF_PROG(rq_insert_btf, struct request *rq)
{
	return mark(rq);
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(rq_issue_btf, struct request *rq)
{
	return mark(rq);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(rq_complete_btf, struct request *rq, int error, unsigned int nr_bytes)
{
	return done(rq);
}

SEC("raw_tp/block_rq_insert")
int BPF_PROG(rq_insert_raw, struct request *rq)
{
	return mark(rq);
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(rq_complete_raw, struct request *rq, int error, unsigned int nr_bytes)
{
	return done(rq);
}

char LICENSE[] SEC("license") = "GPL";
