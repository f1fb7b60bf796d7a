#!/bin/sh
# Build the reference tools the libbpf-fidelity run compares pylibbpf against, from
# Debian's linux-source-6.12 (the tree whose tools/lib/bpf is libbpf 1.5):
#
#   $CACHE/linux-6.12          the unpacked tree, `make headers_install` done
#   $CACHE/libbpf-1.5          libbpf.a (static) + include/bpf/*.h, built as the
#                              selftests' Makefile builds it (make -C tools/lib/bpf)
#   $CACHE/bpftool-1.5         sbin/bpftool from the same tree
#   $CACHE/selftests-objs      include/vmlinux.h (that bpftool, this host's BTF) and
#                              <name>.bpf.o for every progs/*.c that compiles with the
#                              selftests' own clang flags (-mcpu=v3, test_progs flavour)
#
# Each step builds in a temporary directory and moves it into place, so a half-built
# artefact never looks finished; a step whose result exists is skipped.
# Needs: clang-19, gcc, make, rsync, libelf-dev, zlib1g-dev (all on the dev machine).
#
#   tools/build_reference.sh [CACHE]
#
# CACHE defaults to $PYLIBBPF_REFERENCE_CACHE, else ~/.cache/pylibbpf-reference: where
# tools/selftests_conformance.py and the tests that compare with libbpf/bpftool 1.5
# (tests/linker_objects.py) look for these tools, through the same variable.
set -eu

CACHE=${1:-${PYLIBBPF_REFERENCE_CACHE:-$HOME/.cache/pylibbpf-reference}}
SOURCE=/usr/src/linux-source-6.12.tar.xz
CLANG=${CLANG:-clang-19}
JOBS=${JOBS:-2}
NICE="nice -n 10"
mkdir -p "$CACHE"
cd "$CACHE"

note() {
	# One README line per artefact, written once.
	grep -qsF -- "$1:" README || echo "$1: $2" >>README
}

if [ ! -d linux-6.12 ]; then
	tmp=$(mktemp -d "$CACHE/.tmp-linux.XXXXXX")
	$NICE tar -xJf "$SOURCE" -C "$tmp"
	$NICE make -s -C "$tmp/linux-source-6.12" headers_install INSTALL_HDR_PATH=usr
	mv "$tmp/linux-source-6.12" linux-6.12
	rmdir "$tmp"
fi
note linux-6.12 "$SOURCE unpacked; make headers_install (usr/include) done (tools/build_reference.sh)"
TREE=$CACHE/linux-6.12

if [ ! -f libbpf-1.5/libbpf.a ]; then
	tmp=$(mktemp -d "$CACHE/.tmp-libbpf.XXXXXX")
	$NICE make -s -j"$JOBS" -C "$TREE/tools/lib/bpf" OUTPUT="$tmp/" \
		EXTRA_CFLAGS='-g -O2' DESTDIR="$tmp" prefix= all install_headers
	rm -rf libbpf-1.5
	mv "$tmp" libbpf-1.5
fi
note libbpf-1.5 "libbpf 1.5 from linux-6.12/tools/lib/bpf: libbpf.a (static), include/bpf/ (make -C tools/lib/bpf OUTPUT=.. DESTDIR=.. prefix= all install_headers, -g -O2)"

if [ ! -x bpftool-1.5/sbin/bpftool ]; then
	tmp=$(mktemp -d "$CACHE/.tmp-bpftool.XXXXXX")
	mkdir -p "$tmp/build" "$tmp/libbpf"
	$NICE make -s -j"$JOBS" -C "$TREE/tools/bpf/bpftool" EXTRA_CFLAGS='-g -O2' \
		OUTPUT="$tmp/build/" LIBBPF_OUTPUT="$tmp/libbpf/" LIBBPF_DESTDIR="$tmp/" \
		prefix= DESTDIR="$tmp/" install-bin
	rm -rf bpftool-1.5
	mv "$tmp" bpftool-1.5
fi
note bpftool-1.5 "bpftool from linux-6.12/tools/bpf/bpftool: sbin/bpftool"

OBJS=$CACHE/selftests-objs
if [ ! -f "$OBJS/.complete" ]; then
	tmp=$(mktemp -d "$CACHE/.tmp-objs.XXXXXX")
	mkdir -p "$tmp/include"
	bpftool-1.5/sbin/bpftool btf dump file /sys/kernel/btf/vmlinux format c \
		>"$tmp/include/vmlinux.h"
	cp -r libbpf-1.5/include/bpf "$tmp/include/bpf"
	SELF=$TREE/tools/testing/selftests/bpf
	# The selftests' BPF_CFLAGS + CLANG_CFLAGS (CLANG_SYS_INCLUDES) + -DENABLE_ATOMICS_TESTS,
	# and CLANG_BPF_BUILD_RULE: -O2 --target=bpf -mcpu=v3. -Werror stays: an object the
	# selftests would not build is not in the corpus.
	SYS_INCLUDES=$($CLANG -v -E - </dev/null 2>&1 |
		sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
	FLAGS="-g -Wall -Werror -D__TARGET_ARCH_x86 -mlittle-endian -I$tmp/include -I$SELF \
		-I$TREE/tools/include/uapi -I$TREE/usr/include -Wno-compare-distinct-pointer-types \
		$SYS_INCLUDES -DENABLE_ATOMICS_TESTS"
	export CLANG FLAGS SELF tmp
	ls "$SELF"/progs/*.c | $NICE xargs -P"$JOBS" -I{} sh -c '
		src={}; name=$(basename "$src" .c)
		case "$name" in
		bind4_prog|bind6_prog|dynptr_fail|linked_list_fail|map_kptr_fail|syscall|\
		test_pkt_md_access|test_sk_lookup|timer_crash|test_global_func9|verifier_nocsr)
			extra=-fno-strict-aliasing ;;
		*) extra= ;;
		esac
		build() {
			cd "$SELF" && $CLANG $FLAGS $extra "$@" -O2 --target=bpf -c "$src" -mcpu=v3 \
				-o "$tmp/$name.bpf.o" 2>"$tmp/$name.err" && rm -f "$tmp/$name.err"
		}
		# vmlinux.h from a newer kernel declares some kfuncs with other types than the
		# 6.12 selftests headers do; such a source is built again without those
		# prototypes (as several selftests do themselves) and marked <name>.noproto.
		build || { grep -qs "conflicting types for" "$tmp/$name.err" &&
			build -DBPF_NO_KFUNC_PROTOTYPES && touch "$tmp/$name.noproto"; } || true'
	touch "$tmp/.complete"
	rm -rf "$OBJS"
	mv "$tmp" "$OBJS"
fi
note selftests-objs "linux-6.12 selftests progs/*.c compiled with the selftests' test_progs flags (-mcpu=v3, -Werror, CLANG_SYS_INCLUDES, -DENABLE_ATOMICS_TESTS) against include/vmlinux.h (bpftool-1.5, this host's /sys/kernel/btf/vmlinux); <name>.err = why one did not compile; <name>.noproto = built with -DBPF_NO_KFUNC_PROTOTYPES (its kfunc declarations conflict with the newer vmlinux.h)"
echo "reference tools ready in $CACHE"
