// bashreadline: every command line typed into bash, read where readline() returns it
// (a uretprobe on /bin/bash), sent to user space through a perf buffer.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct line {
	__u32 pid;
	char comm[16];
	char text[120];
};

/* For the Python side's ctypes record: `BTF.find("line")`. */
const struct line *unused_line __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} lines SEC(".maps");

SEC("uretprobe//bin/bash:readline")
int BPF_KRETPROBE(on_readline, const char *text)
{
	struct line line = {};

	if (!text)
		return 0;
	line.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(line.comm, sizeof(line.comm));
	bpf_probe_read_user_str(line.text, sizeof(line.text), text);
	bpf_perf_event_output(ctx, &lines, BPF_F_CURRENT_CPU, &line, sizeof(line));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
