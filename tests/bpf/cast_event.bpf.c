// A ring buffer record used only through the pointer bpf_ringbuf_reserve() returns, as in
// libbpf-bootstrap's bootstrap.bpf.c: clang leaves `struct event` out of BTF (only DWARF
// has it), so `gen skeleton --type event` must read it from DWARF. CO-RE reads the
// parent's pid. Attached to getppid, filtered to one process by .rodata.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "cast_event.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

const volatile int target_pid = 0;

SEC("tp/syscalls/sys_enter_getppid")
int handle_getppid(void *ctx)
{
	int pid = bpf_get_current_pid_tgid() >> 32;
	struct task_struct *task;
	struct event *e;

	if (pid != target_pid)
		return 0;
	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	task = (struct task_struct *)bpf_get_current_task();
	e->pid = pid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	EVENT_FILL(e);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
