// libbpf baseline for bench/run.py: drain a pre-filled ring buffer with ring_buffer__consume
// and a trivial callback; prints events per second as JSON.
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long count;

static int on_event(void *ctx, void *data, size_t size)
{
	count++;
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int records = atoi(argv[2]), reps = atoi(argv[3]);
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	double best = 0;

	if (!obj || bpf_object__load(obj))
		return 1;
	int prog = bpf_program__fd(bpf_object__find_program_by_name(obj, "produce"));
	int map = bpf_map__fd(bpf_object__find_map_by_name(obj, "events"));
	struct ring_buffer *rb = ring_buffer__new(map, on_event, NULL, NULL);
	char packet[64] = {};

	for (int r = 0; r < reps; r++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = sizeof(packet),
			    .repeat = records);
		bpf_prog_test_run_opts(prog, &opts);
		count = 0;
		double start = now();
		ring_buffer__consume(rb);
		double rate = count / (now() - start);
		if (rate > best && count == records)
			best = rate;
	}
	printf("{\"per_event\": %.0f}\n", best);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
