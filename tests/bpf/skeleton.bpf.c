// Globals of every kind for the skeleton tests: a tracepoint counts this process's
// getppid calls into .bss, scaled by .rodata and offset by .data; an XDP program's verdict
// is specialised by .rodata. Nested structs, arrays, enums, bitfields and custom sections
// exercise the generated ctypes layouts.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

enum mode { MODE_OFF = 0, MODE_COUNT = 1, MODE_DOUBLE = 2 };

struct point {
	__s16 x;
	__s16 y;
};

struct stats {
	__u64 calls;
	__u64 weighted;
	struct point last[2];
	char comm[16];
	enum mode seen_mode;
};

struct flags {
	unsigned int ready : 1;
	unsigned int level : 3;
	signed int delta : 4;
	__u8 tail;
};

/* .rodata: set before load, folded into the program by the verifier */
const volatile __u32 target_pid = 0;
const volatile __u32 weight = 1;
const volatile __u32 xdp_verdict = XDP_PASS;
const volatile bool count_xdp = true;

/* .data: initialised, written from Python while the program runs */
__u64 bonus = 5;
enum mode mode = MODE_COUNT;
struct flags flags = { .ready = 1, .level = 5, .delta = -3, .tail = 7 };

/* .bss */
struct stats stats;
__u32 histogram[4];
__u64 xdp_runs;

/* custom sections */
__u32 custom_counter SEC(".data.custom") = 100;
const volatile char banner[8] SEC(".rodata.banner") = "skel";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} per_mode SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 key;
	__u64 one = 1, *slot;

	if (pid != target_pid || mode == MODE_OFF)
		return 0;
	stats.calls++;
	stats.weighted += (mode == MODE_DOUBLE ? 2 : 1) * weight + bonus;
	stats.last[1] = stats.last[0];
	stats.last[0].x = (__s16)stats.calls;
	stats.last[0].y = -(__s16)stats.calls;
	stats.seen_mode = mode;
	bpf_get_current_comm(stats.comm, sizeof(stats.comm));
	histogram[stats.calls & 3]++;
	custom_counter++;
	if (flags.ready)
		flags.level = flags.level + 1;
	key = mode;
	slot = bpf_map_lookup_elem(&per_mode, &key);
	if (slot)
		__sync_fetch_and_add(slot, 1);
	else
		bpf_map_update_elem(&per_mode, &key, &one, BPF_ANY);
	return 0;
}

SEC("xdp")
int verdict(struct xdp_md *ctx)
{
	if (count_xdp) /* false: the verifier drops this as dead code */
		xdp_runs++;
	return xdp_verdict;
}

char LICENSE[] SEC("license") = "GPL";
