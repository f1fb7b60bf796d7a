// libbpf baseline for bench/run.py: vmlinux BTF ready for name lookups in a fresh process
// (btf__load_vmlinux_btf + one lookup), in milliseconds, and the RSS it added in KiB.
#include <bpf/btf.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static long rss_kib(void)
{
	char line[256];
	long kib = 0;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			sscanf(line + 6, "%ld", &kib);
	if (f)
		fclose(f);
	return kib;
}

int main(void)
{
	struct timespec a, b;
	long before = rss_kib();

	clock_gettime(CLOCK_MONOTONIC, &a);
	struct btf *btf = btf__load_vmlinux_btf();
	int id = btf ? btf__find_by_name_kind(btf, "task_struct", BTF_KIND_STRUCT) : -1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (id <= 0)
		return 1;
	printf("{\"ms\": %.3f, \"rss_kib\": %ld}\n",
	       (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6, rss_kib() - before);
	return 0;
}
