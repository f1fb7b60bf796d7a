// A CO-RE tracepoint program with globals, maps and bitfields: fodder for the BTF tests
// (round trips, .BTF.ext line info and CO-RE records) and later for the loader.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct event {
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	char comm[16];
	__u8 flag_a : 1, flag_b : 3;
	__s64 delta;
} __attribute__((packed));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct event);
} events SEC(".maps");

const volatile __u32 target_pid = 0;
__u64 hits = 0;
int counter_array[4] = {1, 2, 3, 4};

enum color { RED = 1, GREEN = 2, BLUE = 0x100000000ULL };

SEC("tp/syscalls/sys_enter_getppid")
int handle(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct event ev = {};
	__u32 key = 0;

	ev.pid = BPF_CORE_READ(task, pid);
	ev.tgid = BPF_CORE_READ(task, tgid);
	ev.ppid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&ev.comm, task, comm);
	ev.delta = bpf_core_enum_value(enum color, BLUE);
	if (target_pid && ev.tgid != target_pid)
		return 0;
	__sync_fetch_and_add(&hits, 1);
	bpf_map_update_elem(&events, &key, &ev, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
