// libbpf from C, the reference side of bench/run.py. One run = one fresh process doing
// one group of cases; prints JSON: rates in elements per CPU-second, times in CPU-ms
// (CLOCK_PROCESS_CPUTIME_ID, so time other processes hold our CPU is not counted).
//
//   libbpf_side maps N REPS            hash map cases over N 8-byte keys (see bench/run.py)
//   libbpf_side mkmap PIN N            a hash map of N keys i -> 3i, pinned at PIN (bpffs)
//   libbpf_side batchread PIN N REPS   bpf_map_lookup_batch of the whole pinned map
//   libbpf_side elemstep N             the element rows' loops, one pass per case named on
//                                      stdin, answering each with its CPU seconds
//   libbpf_side batchstep PIN N        the same, one read per line on stdin, answering
//                                      each with its CPU seconds (bench/run.py's lockstep)
//   libbpf_side ring OBJ RECORDS REPS  drain a ring pre-filled by OBJ's "produce" program
//   libbpf_side smallring OBJ RECORDS CYCLES  fill/drain cycles of a ring holding RECORDS
//   libbpf_side objects OBJ REPS       open+load: the first in the process, then repeated
//   libbpf_side btfload                vmlinux BTF ready for a name lookup
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REPS 64

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

// ------------------------------------------------------------------------------- maps

struct rec {  // the "ctypes record" of the Python sides: 40 bytes
	__u32 pid, tgid, ppid, uid;
	__u64 start_time;
	char comm[16];
};

static unsigned long n;
static int reps, hash_fd, rec_fd, percpu_fd, ncpus;
static __u64 *keys, *vals, *out_k, *out_v, *percpu_buf;
static __u32 *rec_keys;
static struct rec *recs, rec_out;

// Run one case REPS times after a warm-up pass; the median rate in elements/CPU-second.
#define CASE(name, body)                                                        \
	do {                                                                    \
		double rates_[MAX_REPS];                                        \
		for (int r_ = -1; r_ < reps; r_++) {                            \
			double t0_ = cpu_now();                                 \
			body;                                                   \
			if (r_ >= 0)                                            \
				rates_[r_] = n / (cpu_now() - t0_);             \
		}                                                               \
		printf("%s\"%s\": %.1f", first_ ? "" : ", ", name, median(rates_, reps)); \
		first_ = 0;                                                     \
	} while (0)

struct thread_arg {
	unsigned long from, to;
};

static void *lookup_slice(void *raw)
{
	struct thread_arg *arg = raw;
	__u64 value;

	for (unsigned long i = arg->from; i < arg->to; i++)
		bpf_map_lookup_elem(hash_fd, &keys[i], &value);
	return NULL;
}

static void threaded_lookups(int threads)
{
	pthread_t ids[16];
	struct thread_arg args[16];

	for (int t = 0; t < threads; t++) {
		args[t].from = n * t / threads;
		args[t].to = n * (t + 1) / threads;
		pthread_create(&ids[t], NULL, lookup_slice, &args[t]);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(ids[t], NULL);
}

static unsigned long lookup_all_batched(int fd)
{
	__u32 batch, count;
	unsigned long total = 0;
	void *in = NULL;
	int err;

	do {
		count = n - total;
		err = bpf_map_lookup_batch(fd, in, &batch, out_k + total, out_v + total, &count,
					   NULL);
		total += count;
		in = &batch;
	} while (!err && total < n);
	return total;
}

static unsigned long iterate_all(int fd)  // what a C daemon without batches does
{
	unsigned long total = 0;
	__u64 key, prev;
	int started = 0;

	while (total < n && !bpf_map_get_next_key(fd, started ? &prev : NULL, &key)) {
		if (!bpf_map_lookup_elem(fd, &key, &out_v[total]))
			out_k[total++] = key;
		prev = key;
		started = 1;
	}
	return total;
}

// A map both sides read (bench/run.py pins one per round): the kernel's batch walk is
// per hash bucket, so the same map layout on both sides compares the libraries.
static int mkmap(const char *pin)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bench_shared", 8, 8, n, NULL);
	__u64 *k = calloc(n, 8), *v = calloc(n, 8);
	__u32 count = n;

	if (fd < 0 || !k || !v)
		die("mkmap");
	for (unsigned long i = 0; i < n; i++)
		k[i] = i, v[i] = i * 3;
	if (bpf_map_update_batch(fd, k, v, &count, NULL) || bpf_obj_pin(fd, pin))
		die("mkmap fill/pin");
	return 0;
}

static int batchread(const char *pin)
{
	int first_ = 1;

	out_k = calloc(n, 8), out_v = calloc(n, 8);
	int fd = bpf_obj_get(pin);

	if (fd < 0 || !out_k || !out_v)
		die("batchread");
	printf("{");
	CASE("lookup_batch", if (lookup_all_batched(fd) != n) die("lookup_batch"));
	printf("}\n");
	return 0;
}

// bench/run.py's lockstep on the shared map: "go" reads all of it, "update" writes all of it
// again with the values it holds (i -> 3i, so the map stays as mkmap made it).
static int batchstep(const char *pin)
{
	char line[64];

	out_k = calloc(n, 8), out_v = calloc(n, 8), keys = calloc(n, 8), vals = calloc(n, 8);
	int fd = bpf_obj_get(pin);

	if (fd < 0 || !out_k || !out_v || !keys || !vals)
		die("batchstep");
	for (unsigned long i = 0; i < n; i++)
		keys[i] = i, vals[i] = i * 3;
	while (fgets(line, sizeof(line), stdin)) {
		double t0 = cpu_now();

		if (!strcmp(line, "update\n")) {
			__u32 count = n;

			if (bpf_map_update_batch(fd, keys, vals, &count, NULL) || count != n)
				die("batchstep update");
		} else if (lookup_all_batched(fd) != n) {
			die("batchstep read");
		}
		printf("%.9f\n", cpu_now() - t0);
		fflush(stdout);
	}
	return 0;
}

static void maps_setup(void)
{
	ncpus = libbpf_num_possible_cpus();
	keys = calloc(n, 8), vals = calloc(n, 8), out_k = calloc(n, 8), out_v = calloc(n, 8);
	rec_keys = calloc(n, 4), recs = calloc(n, sizeof(*recs));
	percpu_buf = calloc(ncpus, 8);
	hash_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bench", 8, 8, n, NULL);
	rec_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bench_rec", 4, sizeof(struct rec), n, NULL);
	percpu_fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "bench_pc", 8, 8, n, NULL);
	if (hash_fd < 0 || rec_fd < 0 || percpu_fd < 0 || !keys || !recs || !percpu_buf)
		die("setup");
	for (unsigned long i = 0; i < n; i++) {
		keys[i] = i, vals[i] = i * 3, rec_keys[i] = i;
		recs[i] = (struct rec){ .pid = i, .tgid = i, .ppid = 1, .uid = 1000,
					.start_time = i * 7, .comm = "bench" };
	}
}

// The element rows in lockstep (bench/run.py): one pass of the case named on each line of
// stdin, answered with its CPU seconds.
static int elemstep(void)
{
	char line[64];

	maps_setup();
	while (fgets(line, sizeof(line), stdin)) {
		double t0 = cpu_now();

		if (!strcmp(line, "int_update\n"))
			for (unsigned long i = 0; i < n; i++)
				bpf_map_update_elem(hash_fd, &keys[i], &vals[i], BPF_ANY);
		else if (!strcmp(line, "int_lookup\n"))
			for (unsigned long i = 0; i < n; i++)
				bpf_map_lookup_elem(hash_fd, &keys[i], &out_v[0]);
		else if (!strcmp(line, "rec_update\n"))
			for (unsigned long i = 0; i < n; i++)
				bpf_map_update_elem(rec_fd, &rec_keys[i], &recs[i], BPF_ANY);
		else if (!strcmp(line, "rec_lookup\n"))
			for (unsigned long i = 0; i < n; i++)
				bpf_map_lookup_elem(rec_fd, &rec_keys[i], &rec_out);
		else
			die("elemstep: unknown case");
		printf("%.9f\n", cpu_now() - t0);
		fflush(stdout);
	}
	return 0;
}

static int maps(void)
{
	int first_ = 1;

	maps_setup();
	printf("{");
	CASE("int_update", for (unsigned long i = 0; i < n; i++)
			       bpf_map_update_elem(hash_fd, &keys[i], &vals[i], BPF_ANY));
	CASE("int_lookup", for (unsigned long i = 0; i < n; i++)
			       bpf_map_lookup_elem(hash_fd, &keys[i], &out_v[0]));
	CASE("rec_update", for (unsigned long i = 0; i < n; i++)
			       bpf_map_update_elem(rec_fd, &rec_keys[i], &recs[i], BPF_ANY));
	CASE("rec_lookup", for (unsigned long i = 0; i < n; i++)
			       bpf_map_lookup_elem(rec_fd, &rec_keys[i], &rec_out));
	CASE("percpu_update", for (unsigned long i = 0; i < n; i++) {
		for (int c = 0; c < ncpus; c++)
			percpu_buf[c] = vals[i];
		bpf_map_update_elem(percpu_fd, &keys[i], percpu_buf, BPF_ANY);
	});
	CASE("percpu_lookup", for (unsigned long i = 0; i < n; i++)
				  bpf_map_lookup_elem(percpu_fd, &keys[i], percpu_buf));
	CASE("items", if (iterate_all(hash_fd) != n) die("items"));
	CASE("lookup_batch_ownmap", if (lookup_all_batched(hash_fd) != n) die("lookup_batch"));
	CASE("update_batch", {
		__u32 count = n;
		bpf_map_update_batch(hash_fd, keys, vals, &count, NULL);
	});
	CASE("threads_lookup", threaded_lookups(4));
	printf(", \"ncpus\": %d}\n", ncpus);
	return 0;
}

// ------------------------------------------------------------------------------- rings

static long events;

static int on_event(void *ctx, void *data, size_t size)
{
	events++;
	return 0;
}

static int prefill(int prog, int records)
{
	char packet[64] = {};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = sizeof(packet),
		    .repeat = records);

	return bpf_prog_test_run_opts(prog, &opts);
}

static int rings(const char *path, int records, int rounds, int small)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	double rates[MAX_REPS], drained = 0, spent = 0;

	if (!obj || bpf_object__load(obj))
		die("load ring producer");
	int prog = bpf_program__fd(bpf_object__find_program_by_name(obj, "produce"));
	int map = bpf_map__fd(bpf_object__find_map_by_name(obj, "events"));
	struct ring_buffer *rb = ring_buffer__new(map, on_event, NULL, NULL);

	for (int r = -1; r < rounds; r++) {
		if (prefill(prog, records))
			die("test_run");
		events = 0;
		double t0 = cpu_now();
		ring_buffer__consume(rb);
		double t = cpu_now() - t0;
		if (events != records)
			fprintf(stderr, "drained %ld of %d\n", events, records);
		if (r < 0)
			continue;
		if (small)
			drained += events, spent += t;
		else
			rates[r] = events / t;
	}
	printf("{\"per_event\": %.1f}\n", small ? drained / spent : median(rates, rounds));
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}

// ------------------------------------------------------------------------------- objects

static double open_load_ms(const char *path)
{
	double t0 = cpu_now();
	struct bpf_object *obj = bpf_object__open_file(path, NULL);

	if (!obj || bpf_object__load(obj))
		die(path);
	double ms = (cpu_now() - t0) * 1e3;

	bpf_object__close(obj);
	return ms;
}

static int objects(const char *path, int rounds)
{
	double first = open_load_ms(path), again[MAX_REPS];

	for (int r = 0; r < rounds; r++)
		again[r] = open_load_ms(path);
	printf("{\"first\": %.3f, \"repeated\": %.3f}\n", first, median(again, rounds));
	return 0;
}

static int btfload(void)
{
	double t0 = cpu_now();
	struct btf *btf = btf__load_vmlinux_btf();
	int id = btf ? btf__find_by_name_kind(btf, "task_struct", BTF_KIND_STRUCT) : -1;
	double ms = (cpu_now() - t0) * 1e3;

	if (id <= 0)
		die("btf");
	printf("{\"ms\": %.3f}\n", ms);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	libbpf_set_print(NULL);
	if (!strcmp(argv[1], "maps") && argc == 4) {
		n = strtoul(argv[2], NULL, 0), reps = atoi(argv[3]);
		return maps();
	}
	if (!strcmp(argv[1], "mkmap") && argc == 4) {
		n = strtoul(argv[3], NULL, 0);
		return mkmap(argv[2]);
	}
	if (!strcmp(argv[1], "batchread") && argc == 5) {
		n = strtoul(argv[3], NULL, 0), reps = atoi(argv[4]);
		return batchread(argv[2]);
	}
	if (!strcmp(argv[1], "elemstep") && argc == 3) {
		n = strtoul(argv[2], NULL, 10);
		return elemstep();
	}
	if (!strcmp(argv[1], "batchstep") && argc == 4) {
		n = strtoul(argv[3], NULL, 0);
		return batchstep(argv[2]);
	}
	if (!strcmp(argv[1], "ring") && argc == 5)
		return rings(argv[2], atoi(argv[3]), atoi(argv[4]), 0);
	if (!strcmp(argv[1], "smallring") && argc == 5)
		return rings(argv[2], atoi(argv[3]), atoi(argv[4]), 1);
	if (!strcmp(argv[1], "objects") && argc == 4)
		return objects(argv[2], atoi(argv[3]));
	if (!strcmp(argv[1], "btfload"))
		return btfload();
	fprintf(stderr, "usage: see the comment at the top of libbpf_side.c\n");
	return 2;
}
