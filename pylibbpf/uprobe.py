"""uprobes: probing functions in user-space binaries and shared libraries.

The kernel places a uprobe at a *file offset* in an inode, so attaching means turning
``binary:function+offset`` into that offset: find the symbol in ``.symtab`` or
``.dynsym``, then map its virtual address through the ``PT_LOAD`` segment that holds it
(which works the same for PIE, non-PIE and shared objects). The probe itself is a perf
event of the uprobe PMU (or, where that PMU is missing, a tracefs ``uprobe_events`` entry),
linked to the program; ``uprobe.multi`` puts many offsets behind one bpf_link (6.6+).
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from . import perf, syscall
from .errors import AttachError, BpfError, NotSupportedError
from .fd import OwnedFd
from .uapi import AttachType

if TYPE_CHECKING:
    from .link import Link
    from .program import Program

LIBRARY_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
)
_STT_FUNC = ("STT_FUNC", "STT_GNU_IFUNC")
_REF_CTR_SHIFT = 32  # PERF_UPROBE_REF_CTR_OFFSET_SHIFT


def find_binary(name: str) -> str:
    """A path for ``name``: as given if it has a slash, else a library (``libc.so.6``) from
    the usual directories or an executable from ``PATH``, as libbpf resolves them."""
    if "/" in name:
        if not os.path.isfile(name):
            raise AttachError(f"uprobe target {name!r} does not exist", errno.ENOENT)
        return os.path.abspath(name)
    if ".so" in name:
        for directory in LIBRARY_DIRS:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate):
                return candidate
    found = shutil.which(name)
    if found:
        return os.path.realpath(found)
    raise AttachError(
        f"uprobe target {name!r} is neither a library in {', '.join(LIBRARY_DIRS[:4])}… "
        "nor an executable on PATH",
        errno.ENOENT,
    )


@dataclass(frozen=True)
class _Segment:
    vaddr: int
    memsz: int
    offset: int


@dataclass(frozen=True)
class ElfImage:
    """What uprobes need from a binary: function symbols and its loadable segments."""

    path: str
    functions: dict[str, int]  # name -> virtual address (first definition wins)
    segments: tuple[_Segment, ...]

    def file_offset(self, address: int, what: str) -> int:
        for segment in self.segments:
            if segment.vaddr <= address < segment.vaddr + segment.memsz:
                return address - segment.vaddr + segment.offset
        raise AttachError(
            f"{what}: address {address:#x} is in no loadable segment of {self.path}", errno.EINVAL
        )

    def function_offset(self, function: str) -> int:
        address = self.functions.get(function)
        if address is None:
            close = sorted(n for n in self.functions if function in n)[:5]
            hint = f" (similar: {', '.join(close)})" if close else ""
            raise AttachError(
                f"function {function!r} not found in {self.path} (.symtab/.dynsym){hint}",
                errno.ENOENT,
            )
        return self.file_offset(address, f"function {function!r}")


@lru_cache(maxsize=32)
def _read_image(path: str, _mtime_ns: int) -> ElfImage:
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            functions: dict[str, int] = {}
            for section_name in (".symtab", ".dynsym"):
                section = elf.get_section_by_name(section_name)
                if not isinstance(section, SymbolTableSection):
                    continue
                for symbol in section.iter_symbols():
                    info = symbol["st_info"]
                    if info["type"] in _STT_FUNC and symbol["st_value"] and symbol.name:
                        functions.setdefault(symbol.name.split("@", 1)[0], symbol["st_value"])
            segments = tuple(
                _Segment(seg["p_vaddr"], seg["p_memsz"], seg["p_offset"])
                for seg in elf.iter_segments()
                if seg["p_type"] == "PT_LOAD"
            )
    except (OSError, ELFError) as error:
        raise AttachError(f"cannot read {path} as an ELF binary: {error}", errno.ENOEXEC) from None
    return ElfImage(path, functions, segments)


def read_image(path: str) -> ElfImage:
    """The binary's symbols and segments, cached while the file is unchanged."""
    return _read_image(path, os.stat(path).st_mtime_ns)


def resolve(binary: str, function: str | None, offset: int = 0) -> tuple[str, int]:
    """(path, file offset) of ``function+offset`` in ``binary`` (``function=None``: the
    offset is already a file offset)."""
    path = find_binary(binary)
    if function is None:
        return path, offset
    return path, read_image(path).function_offset(function) + offset


def attach_uprobe(
    program: Program,
    binary: str,
    function: str | None = None,
    *,
    offset: int = 0,
    retprobe: bool = False,
    pid: int = -1,
    ref_ctr_offset: int = 0,
    cookie: int = 0,
) -> Link:
    """A uprobe (``retprobe``: uretprobe) on ``binary:function+offset`` for every process
    (``pid=-1``) or one."""
    from .link import _pmu, attach_perf_event, attach_tracefs_probe

    path, file_offset = resolve(binary, function, offset)
    kind = "uretprobe" if retprobe else "uprobe"
    target = f"{path}:{function or ''}{'+' if function and offset else ''}"
    target += f"{offset:#x}" if offset or not function else ""
    what = f"program {program.name!r} on {kind} {target}" + (f" pid {pid}" if pid >= 0 else "")
    try:
        pmu_type, bit = _pmu("uprobe")
    except NotSupportedError:
        return attach_tracefs_probe(
            program, "uprobe", f"{path}:{file_offset:#x}", retprobe=retprobe, pid=pid, what=what
        )
    path_buffer = ctypes.create_string_buffer(path.encode())
    attr = perf.PerfEventAttr(
        type=pmu_type,
        config=((1 << bit) if retprobe else 0) | (ref_ctr_offset << _REF_CTR_SHIFT),
        config1=ctypes.addressof(path_buffer),
        config2=file_offset,
        sample_period=1,
        wakeup_events=1,
    )
    perf_fd = perf.perf_event_open(attr, pid=pid, cpu=0 if pid < 0 else -1, what=what)
    return attach_perf_event(program, perf_fd, what, cookie=cookie)


def attach_uprobe_multi(
    program: Program,
    binary: str,
    functions: str | list[str],
    *,
    retprobe: bool = False,
    pid: int = 0,
    cookies: list[int] | None = None,
) -> Link:
    """One link on many functions of one binary: a list of names or a glob (6.6+)."""
    path = find_binary(binary)
    image = read_image(path)
    if isinstance(functions, str) and any(c in functions for c in "*?["):
        names = sorted(n for n in image.functions if fnmatch.fnmatchcase(n, functions))
    else:
        names = [functions] if isinstance(functions, str) else list(functions)
    what = f"program {program.name!r} on uprobe.multi {path}:{functions!r} ({len(names)})"
    if not names:
        raise AttachError(f"{what}: no function matches", errno.ENOENT)
    offsets = (ctypes.c_uint64 * len(names))(*(image.function_offset(n) for n in names))
    cookie_array = (ctypes.c_uint64 * len(names))(*(cookies or [0] * len(names)))
    path_buffer = ctypes.create_string_buffer(path.encode())
    opts = syscall.UprobeMultiLinkOpts(
        path=ctypes.addressof(path_buffer),
        offsets=ctypes.addressof(offsets),
        cookies=ctypes.addressof(cookie_array),
        cnt=len(names),
        flags=1 if retprobe else 0,  # BPF_F_UPROBE_MULTI_RETURN
        pid=max(pid, 0),
    )
    from .link import Link

    try:
        fd = syscall.link_create(program.fd, 0, AttachType.TRACE_UPROBE_MULTI, opts=opts, what=what)
    except BpfError as error:
        raise AttachError(error.message, error.errno) from None
    return Link(OwnedFd(fd, what), what)


def parse_target(target: str) -> tuple[str, str | None, int]:
    """libbpf's ``path:function+offset`` (or ``path:0xoffset``) from a section name."""
    binary, separator, spec = target.rpartition(":")
    if not separator or not binary:
        raise AttachError(
            f"uprobe target {target!r} should be <path>:<function>[+<offset>]", errno.EINVAL
        )
    function, _, offset = spec.partition("+")
    try:
        if (not offset and function[:2] in ("0x", "0X")) or function.isdigit():
            return binary, None, int(function, 0)
        return binary, function or None, int(offset or "0", 0)
    except ValueError:
        raise AttachError(f"uprobe target {target!r}: bad offset", errno.EINVAL) from None
