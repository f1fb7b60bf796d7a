/* The layout of tests/bpf/cast_event.h's struct event as the C compiler sees it: size,
 * each member's offset and size, and the bytes of a record filled as the BPF program
 * fills it (which also pins down bitfield placement). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "../bpf/cast_event.h"

#define MEMBER(m) printf(#m " %zu %zu\n", offsetof(struct event, m), sizeof(((struct event *)0)->m))

int main(void)
{
	struct event e;
	unsigned char *bytes = (unsigned char *)&e;

	printf("sizeof %zu\n", sizeof(struct event));
	MEMBER(pid);
	MEMBER(ppid);
	MEMBER(exit_code);
	MEMBER(duration_ns);
	MEMBER(comm);
	MEMBER(filename);
	MEMBER(exit_event);
	MEMBER(inner);
	MEMBER(u_int);
	MEMBER(u_chars);
	MEMBER(kind);
	MEMBER(ptr);
	MEMBER(grid);
	MEMBER(tail);
	memset(&e, 0, sizeof(e));
	e.pid = 100;
	e.ppid = 1;
	strcpy(e.comm, "python3");
	EVENT_FILL(&e);
	printf("image ");
	for (size_t i = 0; i < sizeof(e); i++)
		printf("%02x", bytes[i]);
	printf("\n");
	return 0;
}
