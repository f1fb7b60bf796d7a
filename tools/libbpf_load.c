// SPDX-License-Identifier: MIT
// The libbpf side of the fidelity run (tools/selftests_conformance.py), linked statically
// with libbpf 1.5 from linux-6.12 (tools/build_reference.sh builds it).
//
//   libbpf_load list OBJ        {"programs": [{"name", "section"}...]} or {"errno": E}
//   libbpf_load load OBJ PROG   load PROG alone (every other program autoload=false, as
//                               libbpf's test_loader does; PROG "*": the object as it is,
//                               for objects without programs) and print one JSON line:
//                               {"ok", "errno", "stage", "msg", and once loaded "prog":
//                               the kernel's prog_info (type, name, xlated instructions,
//                               the ids and names of the maps it uses), "maps_created"}
//
// The harness runs it in a child with RLIMIT_CPU and a private bpffs; it only reports
// what the kernel holds, the comparison and normalisation happen in Python.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char messages[4096];
static size_t messages_len;
static int in_verifier_log;

// Keep libbpf's own warnings (not the verifier log it echoes) to explain a failure.
static int collect(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char line[1024];

	if (level != LIBBPF_WARN)
		return 0;
	vsnprintf(line, sizeof(line), fmt, args);
	if (strstr(line, "-- BEGIN PROG LOAD LOG --")) {
		in_verifier_log = 1;
		return 0;
	}
	if (strstr(line, "-- END PROG LOAD LOG --")) {
		in_verifier_log = 0;
		return 0;
	}
	if (in_verifier_log)
		return 0;
	if (messages_len + strlen(line) + 1 < sizeof(messages)) {
		memcpy(messages + messages_len, line, strlen(line) + 1);
		messages_len += strlen(line);
	}
	return 0;
}

static void json_string(const char *text)
{
	putchar('"');
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c == '"' || *c == '\\')
			printf("\\%c", *c);
		else if (*c < 0x20)
			printf("\\u%04x", *c);
		else
			putchar(*c);
	}
	putchar('"');
}

static int list(const char *path)
{
	struct bpf_program *prog;
	struct bpf_object *obj;
	int first = 1;

	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		printf("{\"errno\": %d, \"msg\": ", errno);
		json_string(messages);
		printf("}\n");
		return 0;
	}
	printf("{\"programs\": [");
	bpf_object__for_each_program(prog, obj) {
		printf("%s{\"name\": ", first ? "" : ", ");
		json_string(bpf_program__name(prog));
		printf(", \"section\": ");
		json_string(bpf_program__section_name(prog));
		printf("}");
		first = 0;
	}
	printf("]}\n");
	bpf_object__close(obj);
	return 0;
}

// The kernel's view of one loaded program: prog_info, its xlated instructions and maps.
static void print_prog(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), nr_maps, xlated_len;
	__u32 *map_ids;
	unsigned char *insns;

	if (bpf_prog_get_info_by_fd(fd, &info, &len)) {
		printf("null");
		return;
	}
	nr_maps = info.nr_map_ids;
	xlated_len = info.xlated_prog_len;
	map_ids = calloc(nr_maps + 1, sizeof(*map_ids));
	insns = calloc(xlated_len + 1, 1);
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = nr_maps;
	info.map_ids = (unsigned long)map_ids;
	info.xlated_prog_len = xlated_len;
	info.xlated_prog_insns = (unsigned long)insns;
	len = sizeof(info);
	if (bpf_prog_get_info_by_fd(fd, &info, &len)) {
		printf("null");
		return;
	}
	printf("{\"type\": %u, \"name\": ", info.type);
	json_string(info.name);
	printf(", \"attach_btf_id\": %u, \"gpl\": %u, \"btf\": %s, \"nr_func_info\": %u, "
	       "\"nr_line_info\": %u, \"insns\": \"",
	       info.attach_btf_id, info.gpl_compatible, info.btf_id ? "true" : "false",
	       info.nr_func_info, info.nr_line_info);
	for (__u32 i = 0; i < xlated_len; i++)
		printf("%02x", insns[i]);
	printf("\", \"map_ids\": [");
	for (__u32 i = 0; i < nr_maps; i++)
		printf("%s%u", i ? ", " : "", map_ids[i]);
	printf("], \"map_names\": [");
	for (__u32 i = 0; i < nr_maps; i++) {
		struct bpf_map_info map_info = {};
		__u32 map_len = sizeof(map_info);
		int map_fd = bpf_map_get_fd_by_id(map_ids[i]);

		if (i)
			printf(", ");
		if (map_fd < 0 || bpf_map_get_info_by_fd(map_fd, &map_info, &map_len))
			printf("null");
		else
			json_string(map_info.name);
		if (map_fd >= 0)
			close(map_fd);
	}
	printf("]}");
	free(map_ids);
	free(insns);
}

static int load(const char *path, const char *name)
{
	struct bpf_program *prog, *target = NULL;
	struct bpf_object *obj;
	struct bpf_map *map;
	int err, maps_created = 0;

	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		err = -errno;
		goto failed_open;
	}
	bpf_object__for_each_program(prog, obj) {
		int chosen = strcmp(bpf_program__name(prog), name) == 0;

		if (strcmp(name, "*") == 0)
			continue;
		bpf_program__set_autoload(prog, chosen);
		if (chosen)
			target = prog;
	}
	if (!target && strcmp(name, "*") != 0) {
		printf("{\"ok\": false, \"errno\": %d, \"stage\": \"open\", \"msg\": \"no such program\"}\n",
		       ENOENT);
		bpf_object__close(obj);
		return 0;
	}
	err = bpf_object__load(obj);
	if (err) {
		printf("{\"ok\": false, \"errno\": %d, \"stage\": \"load\", \"msg\": ", -err);
		json_string(messages);
		printf("}\n");
		bpf_object__close(obj);
		return 0;
	}
	bpf_object__for_each_map(map, obj)
		if (bpf_map__fd(map) >= 0)
			maps_created++;
	printf("{\"ok\": true, \"errno\": null, \"stage\": \"load\", \"msg\": \"\", \"maps_created\": %d, \"prog\": ",
	       maps_created);
	if (target)
		print_prog(bpf_program__fd(target));
	else
		printf("null");
	printf("}\n");
	bpf_object__close(obj);
	return 0;

failed_open:
	printf("{\"ok\": false, \"errno\": %d, \"stage\": \"open\", \"msg\": ", -err);
	json_string(messages);
	printf("}\n");
	return 0;
}

int main(int argc, char **argv)
{
	libbpf_set_print(collect);
	setvbuf(stdout, NULL, _IOFBF, 1 << 20);
	if (argc == 3 && strcmp(argv[1], "list") == 0)
		return list(argv[2]);
	if (argc == 4 && strcmp(argv[1], "load") == 0)
		return load(argv[2], argv[3]);
	fprintf(stderr, "usage: %s list OBJ | load OBJ PROG\n", argv[0]);
	return 2;
}
