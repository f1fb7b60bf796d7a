// A program for the CLI tests, loaded by bpftool (another loader) and inspected by
// pylibbpf's CLI: a hash map, a global in .bss, helper calls, an atomic add.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct counts {
	__u64 packets;
	__u32 last_len;
	char tag[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct counts);
} cli_counts SEC(".maps");

__u64 cli_runs;

SEC("xdp")
int cli_xdp(struct xdp_md *ctx)
{
	__u32 key = ctx->data_end - ctx->data;
	struct counts fresh = { .packets = 1, .last_len = key, .tag = "pyl" }, *seen;

	__sync_fetch_and_add(&cli_runs, 1);
	seen = bpf_map_lookup_elem(&cli_counts, &key);
	if (seen)
		__sync_fetch_and_add(&seen->packets, 1);
	else
		bpf_map_update_elem(&cli_counts, &key, &fresh, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
