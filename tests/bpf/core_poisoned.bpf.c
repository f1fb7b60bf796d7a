// A CO-RE read of a field no kernel has, unguarded: the relocation is poisoned (as libbpf
// does, a call to an unknown helper) and the verifier refuses the program there.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct___fake {
	int pylibbpf_no_such_field;
} __attribute__((preserve_access_index));

int read_value;

SEC("tp/syscalls/sys_enter_getppid")
int read_missing(void *ctx)
{
	struct task_struct___fake *task = (void *)bpf_get_current_task();

	read_value = BPF_CORE_READ(task, pylibbpf_no_such_field);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
