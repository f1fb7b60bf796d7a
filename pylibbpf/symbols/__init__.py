"""Addresses to names: kernel symbols from ``/proc/kallsyms``, user symbols from ELF
symbol tables (and DWARF lines, build-id debug files), and stack traces recorded by BPF
programs in ``BPF_MAP_TYPE_STACK_TRACE`` maps. For example::

    from pylibbpf.symbols import stack_trace
    for frame in stack_trace(obj.maps["stacks"], key.user_stack_id, pid=key.pid):
        print(frame)            # spin+0x1c (spin.c:12), or do_syscall_64+0x82

Everything is cached: kallsyms once per process (re-read when an address misses, as
modules and BPF programs come and go), each process's mappings (re-read on a miss), and
each file's symbols by (device, inode, mtime, size).
"""

from __future__ import annotations

from .elf import ElfSymbols, build_id_path, elf_symbols, find_debug_file
from .frame import Frame
from .kernel import KernelSymbols, kernel_symbols
from .process import Mapping, ProcessSymbols, parse_maps
from .stacks import (
    Symbolizer,
    default_symbolizer,
    is_kernel_address,
    ksym,
    ksym_address,
    stack_addresses,
    stack_trace,
    sym,
)

__all__ = [
    "ElfSymbols",
    "Frame",
    "KernelSymbols",
    "Mapping",
    "ProcessSymbols",
    "Symbolizer",
    "build_id_path",
    "default_symbolizer",
    "elf_symbols",
    "find_debug_file",
    "is_kernel_address",
    "kernel_symbols",
    "ksym",
    "ksym_address",
    "parse_maps",
    "stack_addresses",
    "stack_trace",
    "sym",
]
