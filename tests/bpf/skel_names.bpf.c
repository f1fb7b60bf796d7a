// Placeholder names for the skeleton-injection tests: tests/skel_craft.py rewrites them
// (BTF names, section names, symbol names) into payloads that try to become code in a
// generated skeleton. The shapes cover every place a name is written: struct members
// (plain, bitfields ctypes cannot place, members of anonymous members), enum values,
// globals in .data/.bss and in a custom .data.* section, a map and a program.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum pl_enum { PL_VAL_A = 1, PL_VAL_B = 2, PL_VAL_C = 3 };

struct pl_rec {
	int pl_m_a;
	int pl_m_b;
	int pl_m_c;
	int pl_m_d;
	int pl_m_e;
	int pl_m_f;
	int pl_m_g;
	int pl_m_h;
	int pl_m_i;
	int pl_m_j;
	int pl_m_k;
	int pl_m_l;
	union {
		struct {
			int pl_m_u;
			int pl_m_v;
		};
		long pl_m_w;
	};
	enum pl_enum pl_m_x;
};

struct pl_bits {
	unsigned int pl_b_a : 1;
	unsigned int pl_b_b : 3;
	signed int pl_b_c : 4;
	__u8 pl_b_d;
};

struct pl_rec pl_v_rec = { .pl_m_a = 1, .pl_m_l = 12, .pl_m_u = 21, .pl_m_x = PL_VAL_B };
struct pl_bits pl_v_bits = { .pl_b_a = 1, .pl_b_b = 5, .pl_b_c = -3, .pl_b_d = 7 };
__u64 pl_v_a = 1, pl_v_b = 2, pl_v_c = 3;
__u32 pl_v_d SEC(".data.pl_sec") = 100;
__u64 pl_v_e;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_rec);
} pl_map SEC(".maps");

SEC("xdp")
int pl_prog(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct pl_rec *rec = bpf_map_lookup_elem(&pl_map, &key);

	if (rec)
		rec->pl_m_b += pl_v_a + pl_v_bits.pl_b_b + pl_v_rec.pl_m_l;
	pl_v_e += pl_v_b + pl_v_c + pl_v_d;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
