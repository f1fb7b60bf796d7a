// One program per attach kind, each counting what it saw. Tests enable one at a time.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 xdp_seen, tc_seen, cg_seen, fentry_seen, fexit_seen, kprobe_seen, kretprobe_seen;
__u64 lsm_seen, tp_btf_seen, fmod_ret_seen, multi_seen;

SEC("?xdp")
int xdp_drop_all(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&xdp_seen, 1);
	return XDP_DROP;
}

SEC("?tcx/ingress")
int tc_drop_all(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&tc_seen, 1);
	return 2; /* TC_ACT_SHOT */
}

SEC("?cgroup_skb/egress")
int cg_drop_all(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&cg_seen, 1);
	return 0;
}

SEC("?iter/task")
int list_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (task)
		BPF_SEQ_PRINTF(ctx->meta->seq, "%d %s\n", task->tgid, task->comm);
	return 0;
}

SEC("?fentry/vfs_read")
int BPF_PROG(on_fentry)
{
	__sync_fetch_and_add(&fentry_seen, 1);
	return 0;
}

SEC("?fexit/vfs_read")
int BPF_PROG(on_fexit)
{
	__sync_fetch_and_add(&fexit_seen, 1);
	return 0;
}

SEC("?kprobe/vfs_read")
int on_kprobe(void *ctx)
{
	__sync_fetch_and_add(&kprobe_seen, 1);
	return 0;
}

SEC("?kretprobe/vfs_read")
int on_kretprobe(void *ctx)
{
	__sync_fetch_and_add(&kretprobe_seen, 1);
	return 0;
}

SEC("?lsm/file_open")
int BPF_PROG(on_file_open, struct file *file)
{
	__sync_fetch_and_add(&lsm_seen, 1);
	return 0;
}

SEC("?tp_btf/sys_enter")
int BPF_PROG(on_sys_enter_btf, struct pt_regs *regs, long id)
{
	__sync_fetch_and_add(&tp_btf_seen, 1);
	return 0;
}

SEC("?fmod_ret/security_file_open")
int BPF_PROG(on_fmod_ret, struct file *file, int ret)
{
	__sync_fetch_and_add(&fmod_ret_seen, 1);
	return ret; /* keep the kernel's decision */
}

SEC("?kprobe.multi/vfs_read")
int on_kprobe_multi(void *ctx)
{
	__sync_fetch_and_add(&multi_seen, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
