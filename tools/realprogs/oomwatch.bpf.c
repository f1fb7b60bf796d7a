// SPDX-License-Identifier: MIT
/* oomkill-style: a kprobe with BPF_KPROBE reading struct oom_control through CO-RE, the
 * totalpages field and a ring buffer event; a fallback when the ring buffer is full. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tools.bpf.h"

struct oom_event {
	u32 fpid, tpid;
	u64 pages;
	char fcomm[TASK_COMM_LEN];
	char tcomm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} dropped SEC(".maps");

SEC("kprobe/oom_kill_process")
int BPF_KPROBE(oom_kill_process, struct oom_control *oc, const char *message)
{
	struct oom_event *e;
	u32 zero = 0;
	u64 *lost;

	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e) {
		lost = bpf_map_lookup_elem(&dropped, &zero);
		if (lost)
			(*lost)++;
		return 0;
	}
	e->fpid = bpf_get_current_pid_tgid() >> 32;
	e->tpid = BPF_CORE_READ(oc, chosen, tgid);
	e->pages = BPF_CORE_READ(oc, totalpages);
	bpf_get_current_comm(&e->fcomm, TASK_COMM_LEN);
	bpf_probe_read_kernel(&e->tcomm, TASK_COMM_LEN, BPF_CORE_READ(oc, chosen, comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
