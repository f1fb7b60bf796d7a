// Producers for the ring buffer tests: records of several sizes (some discarded), a ring
// shared by two programs, a second ring, a perf buffer on every CPU, and a user ring
// buffer drained by BPF, and a ring fed by another process's getppid() calls while the test
// consumes it. Every drop is counted.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} other_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} fixed_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} from_user SEC(".maps");

__u64 produced, dropped, discarded, sequence, fixed_produced, fixed_dropped;
__u64 perf_produced, user_sum, user_records;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} live_ring SEC(".maps");

const volatile __u32 live_tgid = 0;
__u64 live_sequence, live_dropped;

SEC("xdp")
int emit_sizes(struct xdp_md *ctx)
{
	__u64 n = __sync_fetch_and_add(&sequence, 1);
	__u32 size = 8 + (n % 5) * 12;  /* 8, 20, 32, 44, 56 bytes */
	__u8 *record;

	if (size == 8) {
		if (bpf_ringbuf_output(&ring, &n, sizeof(n), 0))
			__sync_fetch_and_add(&dropped, 1);
		else
			__sync_fetch_and_add(&produced, 1);
		return XDP_PASS;
	}
	record = bpf_ringbuf_reserve(&ring, 56, 0);
	if (!record) {
		__sync_fetch_and_add(&dropped, 1);
		return XDP_PASS;
	}
	*(__u64 *)record = n;
	if (n % 7 == 3) {
		bpf_ringbuf_discard(record, 0);
		__sync_fetch_and_add(&discarded, 1);
	} else {
		bpf_ringbuf_submit(record, 0);
		__sync_fetch_and_add(&produced, 1);
	}
	return XDP_PASS;
}

SEC("xdp")
int emit_other(struct xdp_md *ctx)
{
	__u64 marker = 0xabcdef;

	if (bpf_ringbuf_output(&ring, &marker, sizeof(marker), 0))
		__sync_fetch_and_add(&dropped, 1);
	else
		__sync_fetch_and_add(&produced, 1);
	bpf_ringbuf_output(&other_ring, &marker, sizeof(marker), 0);
	return XDP_PASS;
}

struct fixed { __u64 seq; __u32 a, b; };

SEC("xdp")
int emit_fixed(struct xdp_md *ctx)
{
	struct fixed rec = { .seq = __sync_fetch_and_add(&fixed_produced, 1), .a = 1, .b = 2 };

	if (bpf_ringbuf_output(&fixed_ring, &rec, sizeof(rec), 0)) {
		__sync_fetch_and_add(&fixed_produced, -1);
		__sync_fetch_and_add(&fixed_dropped, 1);
	}
	return XDP_PASS;
}

SEC("raw_tp")
int emit_perf(void *ctx)
{
	__u64 value[4] = { bpf_get_smp_processor_id(), 1, 2, 3 };

	if (!bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, value, sizeof(value)))
		__sync_fetch_and_add(&perf_produced, 1);
	return 0;
}

static long add_record(struct bpf_dynptr *dynptr, void *ctx)
{
	__u64 value;

	if (bpf_dynptr_read(&value, sizeof(value), dynptr, 0, 0))
		return 1;
	__sync_fetch_and_add(&user_sum, value);
	__sync_fetch_and_add(&user_records, 1);
	return 0;
}

SEC("syscall")
int drain_user(void *ctx)
{
	bpf_user_ringbuf_drain(&from_user, add_record, NULL, 0);
	return 0;
}

/* Each record: a sequence number and a marker, so a torn or repeated record shows. */
SEC("tp/syscalls/sys_enter_getppid")
int emit_live(void *ctx)
{
	__u64 record[2];

	if ((bpf_get_current_pid_tgid() >> 32) != live_tgid)
		return 0;
	record[0] = __sync_fetch_and_add(&live_sequence, 1);
	record[1] = 0x5eed;
	if (bpf_ringbuf_output(&live_ring, record, sizeof(record), 0))
		__sync_fetch_and_add(&live_dropped, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
