"""The running kernel's BTF as one load sees it: vmlinux first, then each loaded module's
(parsed lazily, as libbpf searches them), and fds for the module BTF objects the load
names to the kernel.

Whatever lives in a module is named to the kernel by (module BTF fd, type id): a kfunc's
``fd_array`` slot, a ksym's ``ld_imm64``, a struct_ops map's ``value_type_btf_obj_fd``,
a struct_ops or fentry/fexit/tp_btf program's ``attach_btf_obj_fd``. The fds stay open
until the object closes.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..btf import Btf, Kind
from ..errors import ObjectError
from ..records import dataclass
from ..syscall import kernel_btf
from ..syscall.fd import OwnedFd


@dataclass(frozen=True)
class KernelType:
    """A type found in the kernel's BTF: its id and, if a module defines it, the module."""

    btf: Btf
    type_id: int
    module: str | None  # None: vmlinux


def kernel_btfs() -> Iterator[Btf]:
    """vmlinux, then each loaded module's BTF (read when the search gets there)."""
    yield kernel_btf.load_vmlinux()
    for module in kernel_btf.module_names():
        try:
            yield kernel_btf.load_module(module)
        except ObjectError:
            continue  # unloaded meanwhile


def module_of(btf: Btf) -> str | None:
    """The module a kernel BTF belongs to (None for vmlinux, which has no base)."""
    return btf.name if btf.base is not None else None


class KernelBtf:
    """One object's view of the kernel's BTF, and the module BTF fds it opened."""

    def __init__(self) -> None:
        self._module_fds: dict[str, OwnedFd] = {}

    def find(self, name: str, kind: Kind, module: str | None = None) -> KernelType | None:
        """``name`` of ``kind`` in vmlinux, else in the first module that defines it
        (libbpf's order); with ``module`` ("vmlinux" or a module's name) only there."""
        for btf in kernel_btfs():
            owner = module_of(btf)
            if module is not None and (owner or "vmlinux") != module:
                continue
            found = [t for t in btf.find_all(name, kind) if t.id >= btf.first_id]
            if found:
                return KernelType(btf, found[0].id, owner)
        return None

    def module_fd(self, module: str) -> int:
        """An fd for ``module``'s BTF object, opened once per object."""
        opened = self._module_fds.get(module)
        if opened is None:
            opened = self._module_fds[module] = kernel_btf.open_module_btf(module)
        return opened.fd

    def close(self) -> None:
        """Close the module BTF fds (the programs and maps that named them hold their own
        references)."""
        for fd in self._module_fds.values():
            fd.close()
        self._module_fds.clear()
