// SPDX-License-Identifier: MIT
/* syscount-style: raw_tp sys_enter/sys_exit counting syscalls and their latency per
 * syscall id in a per-CPU hash, errors only on request, comm filtering. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "tools.bpf.h"

const volatile bool count_by_process = false;
const volatile bool measure_latency = false;
const volatile bool only_errors = false;
const volatile int only_syscall = -1;

struct data {
	u64 count;
	u64 total_ns;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} entered SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, struct data);
} totals SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	u32 tid = bpf_get_current_pid_tgid();
	u64 ts;

	if (!measure_latency)
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&entered, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = id, key;
	static const struct data zero;
	struct data *val;
	u64 *start, delta = 0;
	long nr = BPF_CORE_READ(regs, orig_ax);

	if (nr < 0 || (only_syscall != -1 && nr != only_syscall))
		return 0;
	if (only_errors && ret >= 0)
		return 0;
	if (measure_latency) {
		start = bpf_map_lookup_elem(&entered, &tid);
		if (!start)
			return 0;
		delta = bpf_ktime_get_ns() - *start;
	}
	key = count_by_process ? id >> 32 : nr;
	val = bpf_map_lookup_elem(&totals, &key);
	if (!val) {
		bpf_map_update_elem(&totals, &key, &zero, BPF_NOEXIST);
		val = bpf_map_lookup_elem(&totals, &key);
		if (!val)
			return 0;
		if (count_by_process)
			bpf_get_current_comm(&val->comm, sizeof(val->comm));
	}
	val->count++;
	val->total_ns += delta;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
