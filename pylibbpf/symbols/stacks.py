"""Stacks recorded by ``bpf_get_stackid()`` in a ``BPF_MAP_TYPE_STACK_TRACE`` map, turned
into frames; one ``Symbolizer`` holds the caches (kallsyms, processes, files) that make
symbolising thousands of stacks a second possible."""

from __future__ import annotations

import ctypes
import struct
import sys
from collections import OrderedDict
from typing import Any

from ..maps import Map
from .elf import by_build_id
from .frame import Frame
from .kernel import KernelSymbols, kernel_symbols
from .process import ProcessSymbols, symbol_frame

BPF_F_STACK_BUILD_ID = 1 << 5
BUILD_ID_VALID, BUILD_ID_IP = 1, 2  # enum bpf_stack_build_id_status
_BUILD_ID_ENTRY = struct.Struct("<i20sQ")  # struct bpf_stack_build_id
# x86-64, arm64, riscv64, s390x, ppc64le: the kernel lives in the top half of the space.
KERNEL_START = 1 << 63 if sys.maxsize > 2**32 else 0xC0000000
MAX_PROCESSES = 1024
MAX_STACKS = 1 << 16


def is_kernel_address(address: int) -> bool:
    return address >= KERNEL_START


def _raw(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, ctypes.Array | ctypes.Structure):
        return bytes(value)
    raise TypeError(f"a stack trace map value should be bytes, not {type(value).__name__}")


def stack_addresses(stack_map: Map, stack_id: int) -> list[int]:
    """The instruction pointers of stack ``stack_id``, innermost first (empty for a
    negative id: ``bpf_get_stackid()`` failed, e.g. -EFAULT for a kernel-only task)."""
    if stack_id < 0:
        return []
    value = stack_map.lookup(stack_id)
    if value is None:
        return []
    raw = _raw(value)
    ips = struct.unpack(f"<{len(raw) // 8}Q", raw[: len(raw) // 8 * 8])
    end = ips.index(0) if 0 in ips else len(ips)
    return list(ips[:end])


class Symbolizer:
    """Kernel and user address resolution with caches per process and per file.

    ``lines``: add DWARF file:line to user frames when the binary has debug info.
    Processes are forgotten least-recently-used first beyond ``max_processes``.
    """

    def __init__(self, *, lines: bool = True, max_processes: int = MAX_PROCESSES) -> None:
        self.lines = lines
        self._kernel: KernelSymbols | None = None
        self._processes: OrderedDict[int, ProcessSymbols] = OrderedDict()
        self._max_processes = max_processes
        self._stacks: dict[tuple[int | None, tuple[int, ...]], list[Frame]] = {}

    @property
    def kernel(self) -> KernelSymbols:
        if self._kernel is None:
            self._kernel = kernel_symbols()
        return self._kernel

    def process(self, pid: int) -> ProcessSymbols:
        processes = self._processes
        symbols = processes.get(pid)
        if symbols is None:
            symbols = processes[pid] = ProcessSymbols(pid, lines=self.lines)
            if len(processes) > self._max_processes:
                processes.popitem(last=False)
        else:
            processes.move_to_end(pid)
        return symbols

    def forget(self, pid: int) -> None:
        """Drop what is cached about ``pid`` (it exited; its pid may be reused)."""
        self._processes.pop(pid, None)
        self._stacks = {key: frames for key, frames in self._stacks.items() if key[0] != pid}

    def resolve(self, address: int, pid: int | None = None, *, caller: bool = False) -> Frame:
        """A kernel address (any pid), or a user address of process ``pid``."""
        if address >= KERNEL_START:
            return self.kernel.resolve(address, caller=caller)
        if pid is None:
            return Frame(address, None)
        return self.process(pid).resolve(address, caller=caller)

    def frames(self, addresses: list[int], pid: int | None = None) -> list[Frame]:
        """Frames of a stack, innermost first: all but the first are return addresses.
        Whole stacks are cached too: a profile sees the same few stacks again and again."""
        key = (pid, tuple(addresses))
        frames = self._stacks.get(key)
        if frames is None:
            resolve = self.resolve
            frames = [resolve(a, pid, caller=i > 0) for i, a in enumerate(addresses)]
            if len(self._stacks) >= MAX_STACKS:
                self._stacks.clear()
            # An address outside everything known may resolve later (a new module, a
            # library loaded since): such stacks are not kept.
            if all(f.name is not None or f.module is not None for f in frames):
                self._stacks[key] = frames
        return list(frames)

    def stack(self, stack_map: Map, stack_id: int, pid: int | None = None) -> list[Frame]:
        """The frames of stack ``stack_id`` in ``stack_map``, innermost first. Kernel
        addresses resolve through kallsyms, user ones in process ``pid``; maps created
        with ``BPF_F_STACK_BUILD_ID`` resolve by build-id and file offset."""
        if not stack_map.flags & BPF_F_STACK_BUILD_ID:
            return self.frames(stack_addresses(stack_map, stack_id), pid)
        if stack_id < 0:
            return []
        value = stack_map.lookup(stack_id)
        if value is None:
            return []
        raw = _raw(value)
        frames = []
        for index, (status, build_id, offset) in enumerate(
            _BUILD_ID_ENTRY.iter_unpack(raw[: len(raw) // 32 * 32])
        ):
            if status == BUILD_ID_VALID:
                frames.append(self._by_build_id(build_id, offset, caller=index > 0))
            elif status == BUILD_ID_IP:
                frames.append(self.resolve(offset, pid, caller=index > 0))
            else:
                break
        return frames

    def _by_build_id(self, build_id: bytes, offset: int, *, caller: bool) -> Frame:
        symbols = by_build_id(build_id)
        if symbols is None:
            return Frame(offset, None, module=f"build-id {build_id.hex()}")
        target = offset - 1 if caller else offset
        vaddr = symbols.vaddr_of_offset(target)
        return symbol_frame(
            symbols,
            target if vaddr is None else vaddr,
            offset - target,
            offset,
            symbols.name,
            lines=self.lines,
        )


_default: Symbolizer | None = None


def default_symbolizer() -> Symbolizer:
    global _default
    if _default is None:
        _default = Symbolizer()
    return _default


def stack_trace(
    stack_map: Map, stack_id: int, pid: int | None = None, *, symbolizer: Symbolizer | None = None
) -> list[Frame]:
    """Frames of stack ``stack_id`` (innermost first) through the shared symbolizer."""
    return (symbolizer or default_symbolizer()).stack(stack_map, stack_id, pid)


def ksym(address: int, *, show_module: bool = False, show_offset: bool = False) -> str:
    """bcc's ``BPF.ksym()``: the kernel function at ``address`` (``[unknown]`` if none)."""
    frame = default_symbolizer().kernel.resolve(address)
    if frame.name is None:
        return "[unknown]"
    return frame.format(offset=show_offset, module=show_module, line=False)


def sym(address: int, pid: int, *, show_module: bool = False, show_offset: bool = False) -> str:
    """bcc's ``BPF.sym()``: the function at user ``address`` of ``pid`` (``[unknown]``)."""
    frame = default_symbolizer().resolve(address, pid)
    if frame.name is None:
        return f"[unknown] ({frame.module})" if show_module and frame.module else "[unknown]"
    return frame.format(offset=show_offset, module=show_module, line=False)


def ksym_address(name: str) -> int | None:
    """bcc's ``BPF.ksymname()``: where kernel function ``name`` starts."""
    return default_symbolizer().kernel.address_of(name)
