/* A user program for the uprobe and USDT tests: waits for a line on stdin (so the test
 * can attach first), then calls add_numbers(), multi_one(), multi_two() and fires USDT
 * probes a given number of times. It prints the sum, and how often the `guarded` probe's
 * semaphore said a tracer was attached. */
#include <stdio.h>
#include <stdlib.h>
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

unsigned short pylibbpf_tick_semaphore __attribute__((section(".probes")));
unsigned short pylibbpf_guarded_semaphore __attribute__((section(".probes")));
unsigned short pylibbpf_indexed_semaphore __attribute__((section(".probes")));

__attribute__((noinline)) int add_numbers(int a, int b)
{
	__asm__ volatile("" ::: "memory");
	return a + b;
}

__attribute__((noinline)) int multi_one(int x)
{
	__asm__ volatile("" ::: "memory");
	return x + 1;
}

__attribute__((noinline)) int multi_two(int x)
{
	__asm__ volatile("" ::: "memory");
	return x + 2;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 3;
	long total = 0, guarded = 0;
	volatile long in_memory;
	volatile int table[8];
	char line[16];

	for (int i = 0; i < 8; i++)
		table[i] = 100 + i;
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (int i = 1; i <= rounds; i++) {
		in_memory = -1000L * i;
		total += add_numbers(i, 10 * i);
		total += multi_one(i) + multi_two(i);
		DTRACE_PROBE3(pylibbpf, tick, i, in_memory, 77);
		DTRACE_PROBE2(pylibbpf, indexed, table[i & 7], i); /* -4@(%rsp,%rdx,4) */
		if (pylibbpf_guarded_semaphore) {
			guarded++;
			DTRACE_PROBE1(pylibbpf, guarded, i);
		}
	}
	printf("%ld %ld\n", total, guarded);
	return 0;
}
