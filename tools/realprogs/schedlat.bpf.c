// SPDX-License-Identifier: MIT
/* runqlat-style: scheduler tp_btf with raw_tp fallbacks, the task state field under its old
 * and new names (CO-RE flavours), per-pid-namespace filtering, a kconfig extern. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tools.bpf.h"

#define TASK_RUNNING 0

const volatile bool per_process = false;
const volatile pid_t want_tgid = 0;
const volatile u64 min_us = 0;

extern int LINUX_KERNEL_VERSION __kconfig;
extern unsigned int CONFIG_HZ __kconfig __weak;

struct task_struct___pre_5_14 {
	long state;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} enqueued SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct hist);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} seen_hz SEC(".maps");

static struct hist zero;

static __always_inline long state_of(struct task_struct *t)
{
	struct task_struct___pre_5_14 *old = (void *)t;

	if (bpf_core_field_exists(old->state))
		return BPF_CORE_READ(old, state);
	return BPF_CORE_READ(t, __state);
}

static __always_inline int enqueue(u32 tgid, u32 pid)
{
	u64 ts;

	if (!pid || (want_tgid && want_tgid != tgid))
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&enqueued, &pid, &ts, BPF_ANY);
	return 0;
}

static __always_inline int switched(bool preempt, struct task_struct *prev,
				    struct task_struct *next)
{
	u32 pid, key = 0;
	struct hist *h;
	u64 *tsp, delta, hz = CONFIG_HZ;

	if (state_of(prev) == TASK_RUNNING)
		enqueue(BPF_CORE_READ(prev, tgid), BPF_CORE_READ(prev, pid));
	pid = BPF_CORE_READ(next, pid);
	tsp = bpf_map_lookup_elem(&enqueued, &pid);
	if (!tsp)
		return 0;
	delta = (bpf_ktime_get_ns() - *tsp) / 1000;
	if (delta < min_us)
		goto out;
	if (per_process)
		key = BPF_CORE_READ(next, tgid);
	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h)
			goto out;
		if (LINUX_KERNEL_VERSION >= KERNEL_VERSION(5, 14, 0))
			bpf_probe_read_kernel_str(&h->comm, sizeof(h->comm), next->comm);
	}
	hist_add(h, delta);
	key = 0;
	bpf_map_update_elem(&seen_hz, &key, &hz, BPF_ANY);
out:
	bpf_map_delete_elem(&enqueued, &pid);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(wakeup, struct task_struct *p)
{
	return enqueue(p->tgid, p->pid);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(wakeup_new, struct task_struct *p)
{
	return enqueue(p->tgid, p->pid);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return switched(preempt, prev, next);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(wakeup_raw, struct task_struct *p)
{
	return enqueue(BPF_CORE_READ(p, tgid), BPF_CORE_READ(p, pid));
}

SEC("raw_tp/sched_switch")
int BPF_PROG(switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return switched(preempt, prev, next);
}

char LICENSE[] SEC("license") = "GPL";
