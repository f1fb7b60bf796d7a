// Iterators narrowed by their parameters: a task iterator prints the tasks it visits
// (tgid, tid), a cgroup iterator the ids of the cgroups it walks, in its order.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("?iter/task")
int each_task(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (task)
		BPF_SEQ_PRINTF(ctx->meta->seq, "%d %d\n", task->tgid, task->pid);
	return 0;
}

SEC("?iter/cgroup")
int each_cgroup(struct bpf_iter__cgroup *ctx)
{
	struct cgroup *cgroup = ctx->cgroup;

	if (cgroup)
		BPF_SEQ_PRINTF(ctx->meta->seq, "%llu\n", cgroup->kn->id);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
