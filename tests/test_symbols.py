"""Symbolisation checked against the tools everyone trusts: every byte of a gcc-built test
binary against ``nm`` and ``addr2line``, a PIE process's run-time addresses, libc through
its build-id debug file, kernel addresses against ``/proc/kallsyms``, and stacks a BPF
program recorded while the test binary made a system call."""

from __future__ import annotations

import ctypes
import os
import random
import re
import shutil
import subprocess
from bisect import bisect_right
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from spin_target import build_spin, nm_functions

from pylibbpf.errors import BpfError, BpfPermissionError, ObjectError
from pylibbpf.object import BpfObject
from pylibbpf.symbols import (
    ElfSymbols,
    Frame,
    KernelSymbols,
    ProcessSymbols,
    Symbolizer,
    elf_symbols,
    ksym,
    ksym_address,
    parse_maps,
    stack_addresses,
    stack_trace,
)

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


def addr2line(binary: Path | str, addresses: list[int], *, tool: str = "addr2line") -> list[str]:
    """``file:line`` per address, "" where the tool knows no line (discriminators dropped)."""
    out = subprocess.run(
        [tool, "-e", str(binary), *(hex(a) for a in addresses)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    lines = [re.sub(r" \(discriminator \d+\)$", "", line) for line in out]
    return ["" if line.startswith("??") or line.endswith((":?", ":0")) else line for line in lines]


def line_text(found: tuple[str, int] | None) -> str:
    return "" if found is None else f"{found[0]}:{found[1]}"


# --------------------------------------------------------------------------- ELF files


@pytest.mark.parametrize("variant", ["pie", "no-pie", "dwarf4"])
def test_every_byte_of_a_binary_matches_nm_and_addr2line(variant: str) -> None:
    binary = build_spin(variant)
    symbols = ElfSymbols.open(str(binary))
    functions = nm_functions(binary)
    assert {"spin_inner", "spin_outer", "call_getppid", "outer_getppid", "main"} <= {
        name for _, _, name in functions
    }
    addresses = [start + offset for start, size, _ in functions for offset in range(size)]
    expected = [(name, offset) for _, size, name in functions for offset in range(size)]
    assert [symbols.symbol(a) for a in addresses] == expected
    lines = addr2line(binary, addresses)
    assert sum(1 for line in lines if line) > len(lines) // 2  # most bytes have a line
    assert [line_text(symbols.line(a)) for a in addresses] == lines
    assert symbols.build_id is not None and len(symbols.build_id) == 20
    readelf = subprocess.run(["readelf", "-n", str(binary)], capture_output=True, text=True)
    assert f"Build ID: {symbols.build_id.hex()}" in readelf.stdout


def test_line_info_names_the_source_file() -> None:
    binary = build_spin()
    symbols = ElfSymbols.open(str(binary))
    start = symbols.address_of("spin_inner")
    assert start is not None
    found = symbols.line(start)
    assert found is not None and found[0].endswith("tests/programs/spin.c")
    source = Path(found[0]).read_text().splitlines()
    # The function's first instruction is on its opening brace, below its name.
    assert source[found[1] - 1] == "{" and "void spin_inner(void)" in source[found[1] - 2]


def test_malformed_elf_files_are_object_errors(tmp_path: Path) -> None:
    with pytest.raises(ObjectError, match="not an ELF file"):
        ElfSymbols(b"not an elf at all" * 8, "junk")
    whole = build_spin().read_bytes()
    for size in (100, 2000, len(whole) // 2):
        with pytest.raises(ObjectError, match="^cut: malformed ELF file"):
            ElfSymbols(whole[:size], "cut")
    with pytest.raises(ObjectError, match="cannot read"):
        elf_symbols(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ObjectError, match="empty"):
        ElfSymbols.open(str(empty))


def test_damaged_binaries_resolve_or_raise_object_errors(tmp_path: Path) -> None:
    """Bytes flipped anywhere (headers, symbol tables, DWARF): an ObjectError when
    opening, or lookups that answer (possibly None), never another exception."""
    whole = build_spin().read_bytes()
    rng = random.Random(8)
    damaged = tmp_path / "damaged"
    outcomes = {"resolved": 0, "refused": 0}
    for _ in range(150):
        data = bytearray(whole)
        for _ in range(rng.choice([1, 8, 64])):
            data[rng.randrange(len(data))] = rng.randrange(256)
        damaged.write_bytes(data)
        try:
            symbols = ElfSymbols.open(str(damaged))
        except ObjectError:
            outcomes["refused"] += 1
            continue
        for address in range(0x1100, 0x1400, 5):
            symbols.symbol(address)
            symbols.line(address)
        outcomes["resolved"] += 1
    assert outcomes["resolved"] and outcomes["refused"]


def test_files_are_cached_by_identity(tmp_path: Path) -> None:
    copy = tmp_path / "spin"
    shutil.copy(build_spin(), copy)
    first = elf_symbols(str(copy))
    assert elf_symbols(str(copy)) is first
    os.utime(copy, ns=(0, 0))  # a new version of the file: parsed again
    assert elf_symbols(str(copy)) is not first


def libc_debug() -> ElfSymbols:
    libc = ElfSymbols.open(LIBC)
    if libc.debug_file is None:
        pytest.skip("libc's debug file is not installed (apt-get install libc6-dbg)")
    return libc


def test_a_stripped_library_through_its_build_id_debug_file() -> None:
    libc = libc_debug()
    assert libc.build_id is not None
    assert libc.debug_file == (
        f"/usr/lib/debug/.build-id/{libc.build_id[:1].hex()}/{libc.build_id[1:].hex()}.debug"
    )
    debug = nm_functions(libc.debug_file)
    exported = {name for _, _, name in nm_functions(LIBC, dynamic=True)}
    names: dict[int, set[str]] = {}
    for start, _, name in debug:
        names.setdefault(start, set()).add(name.split("@")[0])
    local = [f for f in debug if f[2] not in exported and f[1] > 4]
    assert local, "the debug file adds functions libc does not export"
    rng = random.Random(21)
    for start, size, name in rng.sample(debug, 300) + rng.sample(local, 100):
        offset = rng.randrange(size) if size else 0
        found = libc.symbol(start + offset)
        assert found is not None and found[1] == offset, (hex(start), name)
        assert found[0] in names[start], (hex(start), found, names[start])


def test_library_lines_agree_with_llvm_addr2line() -> None:
    """GNU addr2line 2.40 names the wrong file of a DWARF 5 line table whose file 0 and
    file 1 differ (it counts from 1), so libc's lines are compared with LLVM's."""
    tool = shutil.which("llvm-addr2line") or shutil.which("llvm-addr2line-14")
    if tool is None:
        pytest.skip("llvm-addr2line is not installed")
    libc = libc_debug()
    assert libc.debug_file is not None
    functions = [f for f in nm_functions(libc.debug_file) if f[1] > 16]
    rng = random.Random(5)
    addresses = [start + rng.randrange(size) for start, size, _ in rng.sample(functions, 60)]
    expected = addr2line(libc.debug_file, addresses, tool=tool)
    assert sum(1 for line in expected if line) > 40
    assert [line_text(libc.line(a)) for a in addresses] == expected


# --------------------------------------------------------------------------- processes


def test_maps_text_keeps_executable_mappings() -> None:
    text = (
        "55d0c1a00000-55d0c1a01000 r--p 00000000 fe:00 12 /usr/bin/x\n"
        "55d0c1a01000-55d0c1a05000 r-xp 00001000 fe:00 12 /usr/bin/x\n"
        "7f0000000000-7f0000001000 r-xp 00000000 00:00 0 \n"
        "7ffc00000000-7ffc00002000 r-xp 00000000 00:00 0 [vdso]\n"
        "7f0000100000-7f0000101000 r-xp 00002000 fe:00 13 /tmp/gone (deleted)\n"
    )
    mappings = parse_maps(text)
    assert [(m.start, m.offset, m.path) for m in mappings] == [
        (0x55D0C1A01000, 0x1000, "/usr/bin/x"),
        (0x7F0000000000, 0, ""),
        (0x7F0000100000, 0x2000, "/tmp/gone (deleted)"),
        (0x7FFC00000000, 0, "[vdso]"),
    ]


@pytest.fixture
def waiting_spin() -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """The test binary (PIE) in its ``syscall`` mode: it waits on stdin."""
    binary = build_spin()
    child = subprocess.Popen(
        [str(binary), "syscall"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdin is not None
    assert int(child.stdout.readline()) == child.pid
    try:
        yield child, binary
    finally:
        child.stdin.close()
        child.wait(timeout=10)


def load_base(pid: int, binary: Path) -> int:
    """Where the kernel put the binary's first page (its link-time address 0 for a PIE)."""
    real = os.path.realpath(binary)
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) == 6 and fields[5] == real and int(fields[2], 16) == 0:
                return int(fields[0].split("-")[0], 16)
    raise AssertionError(f"{binary} is not mapped in {pid}")


def test_a_pie_process_resolves_like_nm_and_addr2line(
    waiting_spin: tuple[subprocess.Popen[str], Path],
) -> None:
    child, binary = waiting_spin
    base = load_base(child.pid, binary)
    assert base > 0x10000  # really relocated: ASLR put it somewhere
    process = ProcessSymbols(child.pid)
    functions = nm_functions(binary)
    addresses = [start + size // 2 for start, size, _ in functions]
    lines = addr2line(binary, addresses)
    for (_, size, name), link_time, line in zip(functions, addresses, lines, strict=True):
        frame = process.resolve(base + link_time)
        assert (frame.name, frame.offset, frame.module) == (name, size // 2, str(binary))
        assert line_text(None if frame.line is None else (frame.file or "", frame.line)) == line


def test_this_process_resolves_libc_exports() -> None:
    libc = ctypes.CDLL("libc.so.6")
    process = ProcessSymbols(os.getpid())
    exports: dict[int, set[str]] = {}
    for start, _, name in nm_functions(LIBC, dynamic=True):
        exports.setdefault(start, set()).add(name.split("@")[0])
    for function in ("getpid", "qsort", "write", "getenv"):  # not IFUNCs: dlsym gives them
        address = ctypes.cast(getattr(libc, function), ctypes.c_void_p).value
        assert address is not None
        frame = process.resolve(address + 1)
        assert frame.module is not None and os.path.realpath(frame.module) == os.path.realpath(LIBC)
        assert frame.offset == 1
        aliases = next(names for names in exports.values() if function in names)
        assert frame.name in aliases, (function, frame)
    unknown = process.resolve(0x10)  # nothing is mapped there
    assert unknown.name is None and str(unknown) == "[unknown] 0x10"


# --------------------------------------------------------------------------- kernel

KALLSYMS_TEXT = """\
ffffffff81000000 T _stext
ffffffff81000000 t startup_64
ffffffff81000000 T _text
ffffffff81000100 T do_one
ffffffff81000200 t do_two
0000000000012340 A fixed_percpu_data
ffffffffc0001000 t nf_helper\t[nf_tables]
ffffffffc0002000 t bpf_prog_0123456789abcdef_handler\t[bpf]
"""


def test_kallsyms_text_resolves_with_modules_and_aliases() -> None:
    kernel = KernelSymbols(KALLSYMS_TEXT)
    assert len(kernel) == 5  # one per address, the absolute symbol skipped
    assert kernel.resolve(0xFFFFFFFF81000004) == Frame(
        0xFFFFFFFF81000004, "_stext", 4, None, kernel=True
    )
    assert str(kernel.resolve(0xFFFFFFFF81000150)) == "do_one+0x50"
    assert str(kernel.resolve(0xFFFFFFFFC0001010)) == "nf_helper+0x10 (nf_tables)"
    assert kernel.resolve(0xFFFFFFFFC0002008).module == "bpf"
    # A return address right after a call at the end of do_one belongs to do_one.
    assert kernel.resolve(0xFFFFFFFF81000200).name == "do_two"
    caller = kernel.resolve(0xFFFFFFFF81000200, caller=True)
    assert (caller.name, caller.offset, caller.address) == ("do_one", 0x100, 0xFFFFFFFF81000200)
    assert kernel.resolve(0xFFFFFFFF80000000).name is None  # below every symbol
    assert kernel.resolve(0xFFFFFFFFC0002000 + (1 << 21)).name is None  # far past the last
    assert kernel.address_of("_text") == kernel.address_of("startup_64") == 0xFFFFFFFF81000000
    assert kernel.address_of("nf_helper") == 0xFFFFFFFFC0001000
    assert kernel.address_of("missing") is None
    assert not kernel.reload()  # parsed text has no file to re-read


def test_kallsyms_without_addresses_is_a_permission_error() -> None:
    hidden = "".join(f"0000000000000000 T f{i}\n" for i in range(100))
    with pytest.raises(BpfPermissionError, match="kptr_restrict"):
        KernelSymbols(hidden)
    with pytest.raises(BpfError, match="empty or malformed"):
        KernelSymbols("")


def read_kallsyms() -> list[tuple[int, str, str, str | None]]:
    rows = []
    with open("/proc/kallsyms") as f:
        for line in f:
            address, kind, rest = line.rstrip("\n").split(" ", 2)
            name, _, module = rest.partition("\t")
            if kind not in "aAuU":
                rows.append((int(address, 16), kind, name, module.strip("[]") or None))
    if rows and rows[0][0] == 0:
        pytest.skip("/proc/kallsyms hides addresses from this user")
    return rows


@pytest.mark.root
def test_kernel_addresses_match_proc_kallsyms() -> None:
    rows = read_kallsyms()
    kernel = KernelSymbols()
    names: dict[int, set[tuple[str, str | None]]] = {}
    for address, _, name, module in rows:
        names.setdefault(address, set()).add((name, module))
    starts = sorted(names)
    rng = random.Random(6)
    for address, _, name, module in rng.sample(rows, 3000):
        following = starts[bisect_right(starts, address)] if address < starts[-1] else address + 16
        inside = address + rng.randrange(max(1, min(following - address, 1 << 20)))
        frame = kernel.resolve(inside)
        assert (frame.name, frame.module) in names[address], (hex(inside), frame, name, module)
        assert frame.offset == inside - address and frame.kernel
    assert ksym(kernel.address_of("do_sys_openat2") or 0) == "do_sys_openat2"
    address = ksym_address("do_sys_openat2")
    assert address is not None and ("do_sys_openat2", None) in names[address]
    assert ksym(address + 4, show_offset=True) == "do_sys_openat2+0x4"


# --------------------------------------------------------------------------- stacks


@pytest.mark.root
def test_stacks_of_a_system_call(
    bpf_object: Callable[[str], Path], waiting_spin: tuple[subprocess.Popen[str], Path]
) -> None:
    child, binary = waiting_spin
    assert child.stdin is not None and child.stdout is not None
    with BpfObject.open(bpf_object("stacks")) as obj:
        obj.variables["target_tgid"].value = child.pid
        obj.load()
        obj.attach()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert int(child.stdout.readline()) == os.getpid()  # its getppid() happened
        assert obj.variables["calls"].value == 1
        stacks, user_stacks = obj.maps["stacks"], obj.maps["user_stacks"]
        user_id = obj.variables["user_stack"].value
        kernel_id = obj.variables["kernel_stack"].value
        assert user_id >= 0 and kernel_id >= 0, (user_id, kernel_id)  # bpf_get_stackid's
        symbolizer = Symbolizer()
        user = stack_trace(user_stacks, user_id, child.pid, symbolizer=symbolizer)
        kernel = stack_trace(stacks, kernel_id, symbolizer=symbolizer)
        by_build_id = stack_trace(
            obj.maps["build_id_stacks"],
            obj.variables["build_id_stack"].value,
            child.pid,
            symbolizer=symbolizer,
        )
        raw = stack_addresses(user_stacks, user_id)

    # User: the three functions of the test binary, checked against nm and addr2line at
    # link-time addresses (return addresses looked up one byte back, at the call).
    assert [f.name for f in user[:3]] == ["call_getppid", "outer_getppid", "main"]
    assert [f.address for f in user] == raw
    base = load_base(child.pid, binary)
    starts = {name: start for start, _, name in nm_functions(binary)}
    lookups = [f.address - base - (1 if i else 0) for i, f in enumerate(user[:3])]
    for frame, line in zip(user, addr2line(binary, lookups), strict=False):
        assert frame.offset == frame.address - base - starts[frame.name or ""]
        assert f"{frame.file}:{frame.line}" == line
    if len(user) > 3 and ElfSymbols.open(LIBC).debug_file is not None:
        assert user[3].name == "__libc_start_call_main"  # a local symbol: from the debug file

    # Kernel: every frame as /proc/kallsyms says, entered through the syscall path.
    rows = sorted((address, name, module) for address, _, name, module in read_kallsyms())
    starts_k = [row[0] for row in rows]
    names_at: dict[int, set[str]] = {}
    for address, name, _ in rows:
        names_at.setdefault(address, set()).add(name)
    for index, frame in enumerate(kernel):
        lookup = frame.address - (1 if index else 0)
        start = starts_k[bisect_right(starts_k, lookup) - 1]
        assert frame.name in names_at[start] and frame.offset == frame.address - start
    assert "do_syscall_64" in [f.name for f in kernel]
    assert all(f.kernel for f in kernel) and not any(f.kernel for f in user)

    # Build-id stacks name files by build-id and offset: the same functions and lines.
    assert [(f.name, f.file, f.line) for f in by_build_id] == [
        (f.name, f.file, f.line) for f in user
    ]


@pytest.mark.root
def test_a_failed_stack_id_has_no_frames(bpf_object: Callable[[str], Path]) -> None:
    with BpfObject.open(bpf_object("stacks")) as obj:
        obj.load()
        assert stack_trace(obj.maps["stacks"], -14) == []  # -EFAULT from bpf_get_stackid
        assert stack_trace(obj.maps["stacks"], 3) == []  # never written
