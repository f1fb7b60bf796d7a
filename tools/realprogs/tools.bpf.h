/* SPDX-License-Identifier: MIT */
/* Shared bits of the realprogs corpus: histogram slots, event sizes, filters. */
#ifndef REALPROGS_TOOLS_BPF_H
#define REALPROGS_TOOLS_BPF_H

#define TASK_COMM_LEN 16
#define MAX_SLOTS 27
#define NAME_LEN 255

struct hist {
	__u32 slots[MAX_SLOTS];
	char comm[TASK_COMM_LEN];
};

/* Index of the highest set bit: the log2 histogram slot of a value. */
static __always_inline __u64 slot_of(__u64 v)
{
	__u64 r = 0;

#pragma unroll
	for (int shift = 32; shift > 0; shift >>= 1) {
		if (v >> shift) {
			v >>= shift;
			r += shift;
		}
	}
	return r;
}

static __always_inline void hist_add(struct hist *h, __u64 value)
{
	__u64 slot = slot_of(value);

	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
}

#endif
