// Histograms filled by a BPF program, for the histogram printer tests: every getppid()
// of the target process counts `value` into the log2 slot the program computes, in
// the shapes tools use: an array map of slots, a per-CPU array, a hash keyed by
// (pid, slot) as bcc's tools key them, and a hash of bucket arrays per pid.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define SLOTS 32

const volatile __u32 target_tgid = 0;
__u64 value;

struct pid_slot {
	__u32 pid;
	__u32 slot;
};

struct hist {
	__u64 slots[SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} by_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} by_slot_percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct pid_slot);
	__type(value, __u64);
} by_pid_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct hist);
} by_pid SEC(".maps");

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = 0;

	for (int i = 0; i < 64 && v > 1; i++) {
		v >>= 1;
		slot++;
	}
	return slot < SLOTS ? slot : SLOTS - 1;
}

SEC("tp/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	static const struct hist empty;
	static const __u64 one = 1;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct pid_slot key = { .pid = tgid };
	struct hist *hist;
	__u64 *count;
	__u32 slot;

	if (tgid != target_tgid)
		return 0;
	slot = log2_slot(value);
	key.slot = slot;
	count = bpf_map_lookup_elem(&by_slot, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);
	count = bpf_map_lookup_elem(&by_slot_percpu, &slot);
	if (count)
		*count += 1;
	count = bpf_map_lookup_elem(&by_pid_slot, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&by_pid_slot, &key, &one, BPF_NOEXIST);
	hist = bpf_map_lookup_elem(&by_pid, &tgid);
	if (!hist) {
		bpf_map_update_elem(&by_pid, &tgid, &empty, BPF_NOEXIST);
		hist = bpf_map_lookup_elem(&by_pid, &tgid);
		if (!hist)
			return 0;
	}
	if (slot < SLOTS)
		__sync_fetch_and_add(&hist->slots[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
