// A map in the legacy 'maps' section (struct bpf_map_def), which libbpf 1.x refuses at
// open with EOPNOTSUPP.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct legacy_map_def {
	unsigned int type, key_size, value_size, max_entries, map_flags;
};

struct legacy_map_def legacy SEC("maps") = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = 4,
	.value_size = 4,
	.max_entries = 1,
};

SEC("xdp")
int pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
