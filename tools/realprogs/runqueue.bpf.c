// SPDX-License-Identifier: MIT
/* runqlen-style sampling with typed ksyms: a perf_event program reading this CPU's run
 * queue through the per-CPU runqueues ksym, a weak ksym that may be absent, and a weak
 * kfunc probed with bpf_ksym_exists() before use. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "tools.bpf.h"

extern const struct rq runqueues __ksym;
extern const int no_such_percpu_counter __ksym __weak;
extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym __weak;

const volatile bool per_cpu = false;
const volatile pid_t watch_pid = 0;

struct hist queue_lengths[64] = {};
__u64 watched_alive = 0;
__u64 has_counter = 0;

SEC("perf_event")
int sample_queue(struct bpf_perf_event_data *ctx)
{
	struct rq *rq = (struct rq *)bpf_this_cpu_ptr(&runqueues);
	u32 cpu = per_cpu ? bpf_get_smp_processor_id() : 0;
	u64 len = rq->nr_running;

	if (cpu >= 64)
		return 0;
	if (len > 0)
		len--; /* not counting the current task */
	hist_add(&queue_lengths[cpu], len);
	has_counter = &no_such_percpu_counter != 0;
	return 0;
}

SEC("perf_event")
int watch_task(struct bpf_perf_event_data *ctx)
{
	struct task_struct *t;

	if (!watch_pid || !bpf_ksym_exists(bpf_task_from_pid))
		return 0;
	t = bpf_task_from_pid(watch_pid);
	if (!t)
		return 0;
	watched_alive = t->se.sum_exec_runtime;
	bpf_task_release(t);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
