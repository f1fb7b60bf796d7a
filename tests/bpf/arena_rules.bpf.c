// libbpf's arena rules, for the open-time errors: built with -DTWO_ARENAS (a second
// ARENA map) or -DNO_ARENA (__arena globals and no ARENA map to hold them).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAP_TYPE_ARENA 33 /* BPF_MAP_TYPE_ARENA: newer than these headers */

#ifndef NO_ARENA
struct {
	__uint(type, MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2);
} arena SEC(".maps");
#endif

#ifdef TWO_ARENAS
struct {
	__uint(type, MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2);
} second SEC(".maps");
#endif

int __attribute__((address_space(1))) counter = 1;

SEC("syscall")
int bump(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
