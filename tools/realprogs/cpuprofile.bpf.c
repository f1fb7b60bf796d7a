// SPDX-License-Identifier: MIT
/* profile-style: a perf_event program sampling kernel and user stacks into a stack trace
 * map, counting per (pid, stacks) and also sending raw samples through a ring buffer. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "tools.bpf.h"

#define MAX_STACK_DEPTH 127

const volatile bool kernel_only = false;
const volatile bool user_only = false;
const volatile bool include_idle = false;
const volatile pid_t want_tgid = -1;

struct stack_key {
	__u32 pid;
	int kern_stack_id;
	int user_stack_id;
	char name[TASK_COMM_LEN];
};

struct cpu_sample {
	__u32 pid, cpu;
	char comm[TASK_COMM_LEN];
	__s32 kstack_sz, ustack_sz;
	__u64 kstack[MAX_STACK_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(u64));
	__uint(max_entries, 10240);
} stackmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct stack_key);
	__type(value, u64);
	__uint(max_entries, 10240);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} samples SEC(".maps");

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32, tid = id;
	struct stack_key key = {};
	struct cpu_sample *s;
	static const u64 one = 1;
	u64 *val;

	if (!include_idle && tid == 0)
		return 0;
	if (want_tgid != -1 && want_tgid != pid)
		return 0;
	key.pid = pid;
	bpf_get_current_comm(&key.name, sizeof(key.name));
	key.kern_stack_id = user_only ? -1 : bpf_get_stackid(&ctx->regs, &stackmap, 0);
	key.user_stack_id = kernel_only ? -1 :
		bpf_get_stackid(&ctx->regs, &stackmap, BPF_F_USER_STACK);
	val = bpf_map_lookup_elem(&counts, &key);
	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);

	s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);
	if (!s)
		return 0;
	s->pid = pid;
	s->cpu = bpf_get_smp_processor_id();
	__builtin_memcpy(s->comm, key.name, sizeof(s->comm));
	s->kstack_sz = bpf_get_stack(ctx, s->kstack, sizeof(s->kstack), 0);
	s->ustack_sz = 0;
	bpf_ringbuf_submit(s, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
