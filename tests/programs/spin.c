/* A target for the symbolisation tests and the profile example: known functions, built
 * by tests/spin_target.py with -O0 -g -fno-omit-frame-pointer (at -O1 gcc 12 drops the
 * frame of call_getppid, a leaf, and the unwinder then skips its caller).
 *   spin SECONDS      spin in spin_inner() <- spin_outer() <- main() for SECONDS
 *   spin syscall      print the pid, wait for a line on stdin, call getppid() through
 *                     call_getppid() <- outer_getppid() <- main(), print its result,
 *                     wait for EOF
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile unsigned long sink;

__attribute__((noinline)) void spin_inner(void)
{
	for (int i = 0; i < 100000; i++)
		sink += i;
}

__attribute__((noinline)) void spin_outer(void)
{
	spin_inner();
	sink++;
}

static __attribute__((noinline)) long call_getppid(void)
{
	long ret;

	/* The system call made right here, not in libc: the user stack the kernel records
	 * starts in this function and unwinds through its frame pointer. */
	__asm__ volatile("syscall" : "=a"(ret) : "0"(110L) : "rcx", "r11", "memory");
	return ret;
}

__attribute__((noinline)) long outer_getppid(void)
{
	long ret = call_getppid();

	sink++;
	return ret;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	char line[64];

	if (argc > 1 && strcmp(argv[1], "syscall") == 0) {
		printf("%d\n", (int)getpid());
		fflush(stdout);
		if (fgets(line, sizeof(line), stdin))
			printf("%ld\n", outer_getppid());
		fflush(stdout);
		while (fgets(line, sizeof(line), stdin))
			;
		return 0;
	}
	double end = now() + (argc > 1 ? atof(argv[1]) : 1.0);
	while (now() < end)
		spin_outer();
	return 0;
}
