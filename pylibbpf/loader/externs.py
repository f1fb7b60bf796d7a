"""Externs, resolved at load time against the running kernel (never at open):

* ``__kconfig``: CONFIG_* values from the running kernel's configuration, libbpf's
  specials (LINUX_KERNEL_VERSION…), and ``kconfig=`` overrides, written into the
  ``.kconfig`` map's image at the places ``spec.kconfig`` laid out;
* ``__ksym``: kfuncs and kernel variables, from vmlinux or a loaded module's BTF, and
  typeless symbols from kallsyms.

A kfunc defined in a module is called with ``insn.off`` indexing ``fd_array``, whose
slot holds the module BTF's fd (slot 0 stands for vmlinux); a typed variable in a module
carries that fd in its ``ld_imm64`` instead. The object keeps those fds open until it
closes (``kernel.KernelBtf``).
"""

from __future__ import annotations

from ..btf import Btf, Kind
from ..errors import ObjectError
from ..spec.kconfig import fill_kconfig, layout_kconfig
from ..spec.objspec import ExternSpec, ObjectSpec
from ..spec.subprog import ExternValue
from ..syscall import system
from .kernel import KernelBtf


def kconfig_layout(spec: ObjectSpec) -> tuple[dict[str, tuple[int, int]], int]:
    """Where the object's ``__kconfig`` externs live in ``.kconfig`` and its size (0 when
    the object has none). Pure: decided at open."""
    externs = [e for e in spec.externs.values() if e.section == ".kconfig"]
    if not externs or spec.btf is None:
        return {}, 0
    return layout_kconfig(spec.btf, externs)


def fill_kconfig_image(
    spec: ObjectSpec,
    layout: dict[str, tuple[int, int]],
    image: bytearray,
    overrides: dict[str, str] | None,
) -> None:
    """Write the running kernel's values (``overrides`` on top) into ``.kconfig``'s image:
    at load, so an object opened elsewhere never sees the machine it was opened on."""
    externs = [e for e in spec.externs.values() if e.section == ".kconfig"]
    if externs and spec.btf is not None:
        fill_kconfig(spec.name, spec.btf, externs, layout, image, kconfig_values(overrides))


def kconfig_values(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The running kernel's config with ``overrides`` on top, plus libbpf's specials."""
    values = dict(system.kernel_config())
    version = system.kernel_version()
    values.setdefault("LINUX_KERNEL_VERSION", str(version))
    values.setdefault("LINUX_HAS_SYSCALL_WRAPPER", "y" if system.has_syscall_wrapper() else "n")
    values.setdefault("LINUX_HAS_BPF_COOKIE", "y" if version >= (5 << 16 | 15 << 8) else "n")
    if overrides:
        values.update({k: str(v) for k, v in overrides.items()})
    return values


class KsymResolver:
    """Resolves one object's ``__ksym`` externs against vmlinux, then the modules."""

    def __init__(self, object_name: str, local_btf: Btf | None, kernel: KernelBtf) -> None:
        self.object_name = object_name
        self.local_btf = local_btf
        self.kernel = kernel  # owns the module BTF fds
        self.fd_array: list[int] = []  # for PROG_LOAD: module BTF fds of kfunc calls

    def resolve(self, spec: ExternSpec) -> ExternValue:
        """How ``spec`` resolves in the running kernel (ObjectError if it does not and
        is not ``__weak``)."""
        kind = Kind.FUNC if spec.is_func else Kind.VAR
        found = self.kernel.find(spec.name, kind)
        if found is not None:
            return self._resolved(found.type_id, found.module, kind)
        local = self.local_btf
        if (
            not spec.is_func
            and local is not None
            and local.resolve(local[spec.type_id].type).kind == Kind.UNKN
        ):
            address = system.kallsyms_lookup({spec.name}).get(spec.name)
            if address is not None:
                return ExternValue("addr", address=address)
        if spec.weak:
            return ExternValue("missing")
        what = "kfunc" if spec.is_func else "kernel symbol"
        raise ObjectError(
            f"{self.object_name}: __ksym extern {spec.name!r}: no {what} of that name in "
            "the kernel or its loaded modules"
        )

    def _resolved(self, type_id: int, module: str | None, kind: Kind) -> ExternValue:
        if module is None:
            return ExternValue("kfunc" if kind == Kind.FUNC else "btf_var", btf_id=type_id)
        fd = self.kernel.module_fd(module)
        if kind == Kind.VAR:
            return ExternValue("btf_var", btf_id=type_id, btf_fd=fd)
        if fd not in self.fd_array:
            if not self.fd_array:
                self.fd_array.append(0)  # slot 0 stands for vmlinux
            self.fd_array.append(fd)
        return ExternValue("kfunc", btf_id=type_id, btf_fd_index=self.fd_array.index(fd))

    def close(self) -> None:
        """Forget the fd_array (the fds themselves belong to ``kernel``)."""
        self.fd_array.clear()
