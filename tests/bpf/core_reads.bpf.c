// CO-RE reads of task_struct on the tracepoint of getppid(), checked against the kernel's
// own helpers; plus existence checks on a flavoured struct the kernel does not have.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct seen {
	__u32 helper_tgid;
	__u32 core_tgid;
	__u32 core_pid;
	__u32 parent_tgid;
	char comm[16];
	__u32 exists_real;
	__u32 exists_fake;
	__u32 ringbuf_type;
	__u32 task_size;
};

/* A local view of task_struct with a field no kernel has. */
struct task_struct___fake {
	int pid;
	int pylibbpf_no_such_field;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct seen);
} seen_by_tgid SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int record(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct seen s = {};
	__u32 key = bpf_get_current_pid_tgid() >> 32;

	s.helper_tgid = key;
	s.core_tgid = BPF_CORE_READ(task, tgid);
	s.core_pid = BPF_CORE_READ(task, pid);
	s.parent_tgid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&s.comm, task, comm);
	s.exists_real = bpf_core_field_exists(task->pid);
	s.exists_fake = bpf_core_field_exists(((struct task_struct___fake *)task)->pylibbpf_no_such_field);
	if (bpf_core_field_exists(((struct task_struct___fake *)task)->pylibbpf_no_such_field))
		s.task_size = BPF_CORE_READ((struct task_struct___fake *)task, pylibbpf_no_such_field);
	else
		s.task_size = bpf_core_type_size(struct task_struct);
	s.ringbuf_type = bpf_core_enum_value(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF);
	bpf_map_update_elem(&seen_by_tgid, &key, &s, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
