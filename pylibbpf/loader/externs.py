"""Externs, resolved at load time against the running kernel (never at open):

* ``__kconfig``: CONFIG_* values from the running kernel's configuration, libbpf's
  specials (LINUX_KERNEL_VERSION…), and ``kconfig=`` overrides, written into the
  ``.kconfig`` map's image at the places ``spec.kconfig`` laid out;
* ``__ksym``: kfuncs and kernel variables, from vmlinux or a loaded module's BTF, and
  typeless symbols from kallsyms.

A kfunc defined in a module is called with ``insn.off`` indexing ``fd_array``, whose
slot holds the module BTF's fd (slot 0 stands for vmlinux); a typed variable in a module
carries that fd in its ``ld_imm64`` instead. The resolver keeps those fds open for as long
as the object is loaded.
"""

from __future__ import annotations

from .. import syscall
from ..btf import Btf, Kind
from ..errors import BpfError, ObjectError
from ..spec.kconfig import fill_kconfig, layout_kconfig
from ..spec.objspec import ExternSpec, ObjectSpec
from ..spec.subprog import ExternValue
from ..syscall import kernel_btf, system
from ..syscall.fd import OwnedFd


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
    """Resolves one object's ``__ksym`` externs; owns the module BTF fds it opens."""

    def __init__(self, object_name: str, local_btf: Btf | None) -> None:
        self.object_name = object_name
        self.local_btf = local_btf
        self.fd_array: list[int] = []  # for PROG_LOAD: module BTF fds of kfunc calls
        self._module_fds: dict[str, OwnedFd] = {}

    def resolve(self, spec: ExternSpec) -> ExternValue:
        """How ``spec`` resolves in the running kernel (ObjectError if it does not and
        is not ``__weak``)."""
        kind = Kind.FUNC if spec.is_func else Kind.VAR
        found = kernel_btf.load_vmlinux().find_all(spec.name, kind)
        if found:
            return ExternValue("kfunc" if spec.is_func else "btf_var", btf_id=found[0].id)
        in_module = self._in_module(spec.name, kind)
        if in_module is not None:
            return in_module
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

    def _in_module(self, name: str, kind: Kind) -> ExternValue | None:
        for module in kernel_btf.module_names():
            try:
                btf = kernel_btf.load_module(module)
            except ObjectError:
                continue
            found = [t for t in btf.find_all(name, kind) if t.id >= btf.first_id]
            if not found:
                continue
            fd = self._module_btf_fd(module)
            if kind == Kind.VAR:
                return ExternValue("btf_var", btf_id=found[0].id, btf_fd=fd)
            if fd not in self.fd_array:
                if not self.fd_array:
                    self.fd_array.append(0)  # slot 0 stands for vmlinux
                self.fd_array.append(fd)
            return ExternValue("kfunc", btf_id=found[0].id, btf_fd_index=self.fd_array.index(fd))
        return None

    def _module_btf_fd(self, module: str) -> int:
        """An fd for a module's BTF object, found among the kernel's BTF ids by name."""
        opened = self._module_fds.get(module)
        if opened is not None:
            return opened.fd
        for btf_id in syscall.iterate_ids(syscall.btf_get_next_id):
            try:
                fd = OwnedFd(syscall.btf_get_fd_by_id(btf_id), f"BTF id {btf_id}")
            except BpfError:
                continue
            name, is_kernel, _size = kernel_btf.btf_object_info(fd.fd, f"BTF id {btf_id}")
            if is_kernel and name == module:
                self._module_fds[module] = fd
                return fd.fd
            fd.close()
        raise ObjectError(f"{self.object_name}: no kernel BTF object for module {module!r}")

    def close(self) -> None:
        """Close the module BTF fds (after the programs that needed them loaded)."""
        for fd in self._module_fds.values():
            fd.close()
        self._module_fds.clear()
        self.fd_array.clear()
