"""BPF objects for the static-linker tests, built as the kernel's selftests build them
(clang -O2 -g -mcpu=v3), cached by content: tests/bpf/linker_*.bpf.c and linux-source-6.12's
selftests progs/*.c. vm-tests/run calls ``precompile`` on the host.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import BPF_SRC, CACHE, _clang, _multiarch, kernel_selftests_dir, vmlinux_h_dir

from pylibbpf.spec.linker import link_objects

TARGET_ARCH = {"x86_64": "x86", "aarch64": "arm64"}
# The reference tools tools/build_reference.sh builds (libbpf 1.5, bpftool 1.5): in
# $PYLIBBPF_REFERENCE_CACHE, by default ~/.cache/pylibbpf-reference.
REFERENCE_CACHE = Path(
    os.environ.get("PYLIBBPF_REFERENCE_CACHE", Path.home() / ".cache" / "pylibbpf-reference")
)
BPFTOOL_15 = Path(
    os.environ.get("PYLIBBPF_TEST_BPFTOOL", REFERENCE_CACHE / "bpftool-1.5" / "sbin" / "bpftool")
)
# What the tests link: (where, objects), "tests" meaning tests/bpf.
LINK_SETS = {
    "linker_lib+main": ("tests", ["linker_lib", "linker_main"]),
    "linked_funcs": ("selftests", ["linked_funcs1", "linked_funcs2"]),
    "linked_vars": ("selftests", ["linked_vars1", "linked_vars2"]),
    "linked_maps": ("selftests", ["linked_maps1", "linked_maps2"]),
    "subskeleton": (
        "selftests",
        ["test_subskeleton_lib2", "test_subskeleton_lib", "test_subskeleton"],
    ),
    "usdt": ("selftests", ["test_usdt", "test_usdt_multispec"]),
    "one object": ("selftests", ["test_subskeleton"]),
}


def _build(source: Path, includes: Sequence[Path], defines: Sequence[str] = ()) -> bytes:
    """Compile a BPF C file as the selftests do (-O2 -g -mcpu=v3), cached by content."""
    clang = _clang()
    arch = TARGET_ARCH.get(platform.machine(), "x86")
    flags = ["-O2", "-g", "-Wall", "-target", "bpf", "-mcpu=v3", "-mlittle-endian"]
    flags += [f"-D__TARGET_ARCH_{arch}", "-Wno-compare-distinct-pointer-types"]
    flags += [f"-D{define}" for define in defines]
    flags += [arg for path in includes for arg in ("-I", str(path))]
    version = subprocess.run([clang, "--version"], capture_output=True, text=True).stdout
    digest = hashlib.sha256("\0".join([source.read_text(), version, *flags]).encode())
    out = CACHE / "linker" / digest.hexdigest()[:16] / f"{source.stem}.o"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        result = subprocess.run(
            [clang, *flags, "-c", str(source), "-o", str(tmp)], capture_output=True, text=True
        )
        if result.returncode:
            raise RuntimeError(f"clang failed on {source}:\n{result.stderr[-3000:]}")
        tmp.replace(out)
    return out.read_bytes()


def build_object(name: str, *defines: str) -> bytes:
    """tests/bpf/<name>.bpf.c (plain <linux/bpf.h> and <bpf/bpf_helpers.h>)."""
    return _build(BPF_SRC / f"{name}.bpf.c", [Path(f"/usr/include/{_multiarch()}")], defines)


def selftest_object(name: str, *defines: str) -> bytes:
    """tools/testing/selftests/bpf/progs/<name>.c of linux-source-6.12 (``defines``: -D)."""
    tools = kernel_selftests_dir()
    progs = tools / "testing/selftests/bpf/progs"
    includes = [vmlinux_h_dir(), tools / "lib", Path("/usr/include/bpf"), progs, progs.parent]
    includes += [tools / "include/uapi", Path(f"/usr/include/{_multiarch()}")]
    return _build(progs / f"{name}.c", includes, defines)


def precompile() -> None:
    """Build every object these tests use (vm-tests/run calls it on the host)."""
    for name, *defines in (
        ("linker_lib",),
        ("linker_main",),
        ("linker_main", "STRONG_LIB_VALUE"),
        ("linker_main", "LONG_LIB_VALUE"),
        ("linker_main", "STATS_ENTRIES=8"),
        ("linker_main", "STATS_VALUE=__u64"),
        ("linker_main", "OTHER_LICENSE"),
        ("linker_kfunc", "SIDE=1"),
        ("linker_kfunc", "SIDE=2"),
        ("linker_statics", "SIDE=1"),
        ("linker_statics", "SIDE=2"),
    ):
        build_object(name, *defines)
    for where, names in LINK_SETS.values():
        for name in names:
            (build_object if where == "tests" else selftest_object)(name)


def link(*names: str) -> bytes:
    """Link tests/bpf objects (a ``name:DEFINE`` entry compiles with -DDEFINE)."""
    datas, labels = [], []
    for entry in names:
        name, *defines = entry.split(":")
        datas.append(build_object(name, *defines))
        labels.append(f"{name}.o")
    return link_objects(datas, labels)


def link_selftests(*names: str) -> bytes:
    """Link selftest objects, named as the selftests' Makefile names them."""
    return link_objects([selftest_object(n) for n in names], [f"{n}.bpf.o" for n in names])


def bpftools() -> list[str]:
    """bpftool 1.5 built from linux-6.12 as a reference tool (PYLIBBPF_TEST_BPFTOOL), then
    the system's; skip without either."""
    tools = [str(BPFTOOL_15)] if os.access(BPFTOOL_15, os.X_OK) else []
    system = shutil.which("bpftool")
    if system is not None:
        tools.append(system)
    if not tools:
        pytest.skip("bpftool is not installed")
    return tools
