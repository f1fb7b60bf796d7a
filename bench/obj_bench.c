// libbpf baseline for bench/run.py: open + load + close of an object, first in the
// process and then repeated; milliseconds, printed as JSON.
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double once(const char *path)
{
	double start = now_ms();
	struct bpf_object *obj = bpf_object__open_file(path, NULL);

	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "cannot load %s\n", path);
		exit(1);
	}
	double elapsed = now_ms() - start;
	bpf_object__close(obj);
	return elapsed;
}

int main(int argc, char **argv)
{
	int reps = argc > 2 ? atoi(argv[2]) : 10;
	double first = once(argv[1]), best = 1e18;

	for (int i = 0; i < reps; i++) {
		double t = once(argv[1]);
		if (t < best)
			best = t;
	}
	printf("{\"first\": %.3f, \"repeated\": %.3f}\n", first, best);
	return 0;
}
