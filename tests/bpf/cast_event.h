/* The record cast_event.bpf.c sends: shared with the C program that prints its layout as
 * the compiler sees it. Only builtin C types, so both clang -target bpf and gcc take it. */
#define EVENT_COMM_LEN 16
#define EVENT_FILENAME_LEN 27

enum event_kind { EVENT_EXEC = 1, EVENT_EXIT = 2, EVENT_WIDE = -1 };

struct event_inner {
	short a;
	unsigned char b[3];
};

struct event {
	int pid;
	int ppid;
	unsigned int exit_code;
	unsigned long long duration_ns;
	char comm[EVENT_COMM_LEN];
	char filename[EVENT_FILENAME_LEN];
	_Bool exit_event;
	struct event_inner inner[2];
	unsigned int f_lo : 3, f_mid : 9;
	signed int f_neg : 5;
	union {
		int u_int;
		char u_chars[6];
	};
	enum event_kind kind;
	void *ptr;
	int grid[2][3];
	unsigned long long tail __attribute__((aligned(16)));
};

/* Values the BPF program writes and the tests expect (pid, ppid and comm are the
 * caller's). */
#define EVENT_FILL(e)                                              \
	do {                                                       \
		(e)->exit_code = 3;                                \
		(e)->duration_ns = 0x0102030405060708ULL;          \
		(e)->filename[0] = 'f';                            \
		(e)->filename[1] = 'n';                            \
		(e)->exit_event = 1;                               \
		(e)->inner[1].a = -2;                              \
		(e)->inner[1].b[2] = 9;                            \
		(e)->f_lo = 5;                                     \
		(e)->f_mid = 300;                                  \
		(e)->f_neg = -7;                                   \
		(e)->u_int = 0x00434241;                           \
		(e)->kind = EVENT_WIDE;                            \
		(e)->ptr = (void *)0;                              \
		(e)->grid[1][2] = 12;                              \
		(e)->tail = 0x1122334455667788ULL;                 \
	} while (0)
