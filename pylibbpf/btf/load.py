"""Compatibility: the kernel's BTF (sysfs, the on-disk index) moved to
pylibbpf.syscall.kernel_btf, BTF from files to pylibbpf.btf.file.

Kept so that code written against the flat layout keeps importing; nothing in the pure
half imports it (it pulls in the syscall layer)."""

from __future__ import annotations

from ..syscall.kernel_btf import cache_dir, load_module, load_vmlinux, module_names
from .file import from_elf, from_file

__all__ = ["cache_dir", "from_elf", "from_file", "load_module", "load_vmlinux", "module_names"]
