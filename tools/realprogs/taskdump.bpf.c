// SPDX-License-Identifier: MIT
/* libbpf-bootstrap task_iter example's shape: a task iterator writing fixed records with
 * bpf_seq_write and a kernel stack each; a task_file iterator printing with BPF_SEQ_PRINTF. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define MAX_STACK_LEN 127
#define TASK_COMM_LEN 16

const volatile pid_t only_tgid = 0;

struct task_record {
	pid_t pid, ppid;
	__u32 state;
	char comm[TASK_COMM_LEN];
	int kstack_len;
	__u64 kstack[MAX_STACK_LEN];
};

struct task_record scratch = {};

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	long n;

	if (!task)
		return 0;
	if (only_tgid && task->tgid != only_tgid)
		return 0;
	scratch.pid = task->pid;
	scratch.ppid = task->real_parent ? task->real_parent->tgid : 0;
	scratch.state = task->__state;
	bpf_probe_read_kernel_str(scratch.comm, TASK_COMM_LEN, task->comm);
	n = bpf_get_task_stack(task, scratch.kstack, sizeof(scratch.kstack), 0);
	scratch.kstack_len = n <= 0 ? n : n / sizeof(scratch.kstack[0]);
	bpf_seq_write(seq, &scratch, sizeof(scratch));
	return 0;
}

SEC("iter/task_file")
int dump_task_file(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	__u32 fd = ctx->fd;

	if (!task || !file)
		return 0;
	if (ctx->meta->seq_num == 0)
		BPF_SEQ_PRINTF(seq, "    tgid      pid       fd      file\n");
	BPF_SEQ_PRINTF(seq, "%8d %8d %8d %lx\n", task->tgid, task->pid, fd, (long)file->f_op);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
