// libbpf baseline for bench/run.py: per-op and batch map operations on a hash map of
// N 8-byte keys, best of R repetitions, printed as JSON nanoseconds per element.
#include <bpf/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

#define BEST(var, ...) do { double t0_ = now_ns(); __VA_ARGS__; double d_ = now_ns() - t0_; \
	if (d_ < var) var = d_; } while (0)

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 0) : 100000;
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	unsigned long long *keys = calloc(n, 8), *vals = calloc(n, 8), *out_k = calloc(n, 8),
			   *out_v = calloc(n, 8);
	double upd = 1e18, lkp = 1e18, bupd = 1e18, blkp = 1e18;
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bench", 8, 8, n, NULL);

	if (fd < 0 || !keys || !vals || !out_k || !out_v) {
		perror("setup");
		return 1;
	}
	for (unsigned long i = 0; i < n; i++) {
		keys[i] = i;
		vals[i] = i * 3;
	}
	for (int r = 0; r < reps; r++) {
		BEST(upd, for (unsigned long i = 0; i < n; i++)
				  bpf_map_update_elem(fd, &keys[i], &vals[i], BPF_ANY));
		BEST(lkp, for (unsigned long i = 0; i < n; i++)
				  bpf_map_lookup_elem(fd, &keys[i], &out_v[0]));
		BEST(bupd, {
			__u32 count = n;
			bpf_map_update_batch(fd, keys, vals, &count, NULL);
		});
		BEST(blkp, {
			__u32 batch, count = n, total = 0;
			void *in = NULL;
			int err;
			do {
				count = n - total;
				err = bpf_map_lookup_batch(fd, in, &batch, out_k + total,
							   out_v + total, &count, NULL);
				total += count;
				in = &batch;
			} while (!err && total < n);
		});
	}
	printf("{\"update\": %.1f, \"lookup\": %.1f, \"update_batch\": %.2f, \"lookup_batch\": %.2f}\n",
	       upd / n, lkp / n, bupd / n, blkp / n);
	return 0;
}
