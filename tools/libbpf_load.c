// The libbpf side of the selftests conformance run: open and load one object; exit 0 if
// every program loaded, 1 if loading failed, 2 if opening failed.
#include <bpf/libbpf.h>
#include <stdio.h>

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	int err;

	libbpf_set_print(quiet);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj)
		return 2;
	err = bpf_object__load(obj);
	bpf_object__close(obj);
	return err ? 1 : 0;
}
