// A struct_ops map of a type a module defines: bpf_testmod's struct bpf_testmod_ops (only
// the members used here, matched by name). Registering it runs test_1() and
// test_2(4, data) (bpf_testmod's bpf_dummy_reg), which record what they saw.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct bpf_testmod_ops___local {
	int (*test_1)(void);
	void (*test_2)(int a, int b);
	int data;
};

unsigned int test_1_result;
int test_2_a, test_2_b;

SEC("struct_ops/test_1")
int BPF_PROG(test_1)
{
	test_1_result = 0xdeadbeef;
	return 0;
}

SEC("struct_ops/test_2")
void BPF_PROG(test_2, int a, int b)
{
	test_2_a = a;
	test_2_b = b;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops___local testmod_ops = {
	.test_1 = (void *)test_1,
	.test_2 = (void *)test_2,
	.data = 13,
};

char LICENSE[] SEC("license") = "GPL";
