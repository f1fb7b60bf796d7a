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

import errno

from ..btf import Btf, Kind
from ..errors import ObjectError
from ..records import replace
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
    from ..spec.kconfig import layout_kconfig  # (objects with __kconfig externs only)

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
        from ..spec.kconfig import fill_kconfig

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

    def resolve_all(self, spec: ObjectSpec) -> dict[str, ExternValue]:
        """Every ``__ksym`` extern of the object, whichever programs use it, in libbpf's
        order (``bpf_object__resolve_externs``): typed ksyms and kfuncs by name from
        vmlinux then module BTF (any failure: EINVAL), then typeless ones from kallsyms;
        a strong extern left unresolved is ESRCH, a weak one resolves to 0."""
        ksyms = sorted((e for e in spec.externs.values() if e.section == ".ksyms"), key=_name)
        base = sum(1 for e in spec.externs.values() if e.section == ".kconfig")
        index = {e.name: base + i for i, e in enumerate(ksyms)}
        values: dict[str, ExternValue] = {}
        typeless = [e for e in ksyms if not e.is_func and self._typeless(e)]
        for extern in ksyms:
            if extern not in typeless:
                value = self._resolve_typed(extern)
                values[extern.name] = replace(value, index=index[extern.name])
        addresses = system.kallsyms_lookup({e.name for e in typeless}) if typeless else {}
        for extern in typeless:
            address = addresses.get(extern.name)
            if address is None and not extern.weak:
                raise ObjectError(
                    f"{self.object_name}: extern {extern.name!r} (strong): not resolved: "
                    "no kernel symbol of that name in /proc/kallsyms",
                    errno.ESRCH,
                )
            values[extern.name] = ExternValue(
                "addr" if address is not None else "missing",
                address=address or 0,
                index=index[extern.name],
            )
        return values

    def _typeless(self, spec: ExternSpec) -> bool:
        """``extern const void sym __ksym``: an address from kallsyms, no BTF type."""
        local = self.local_btf
        return local is None or local.resolve(local[spec.type_id].type).kind == Kind.UNKN

    def _resolve_typed(self, spec: ExternSpec) -> ExternValue:
        """A kfunc (looked up without its ``___flavour``, prototype checked) or a typed
        kernel variable; EINVAL unless found and compatible, or ``__weak``."""
        # here: only objects with typed ksyms need the type comparisons
        from ..spec.core_types import essential_name, skip_mods_and_typedefs, types_compatible

        kind = Kind.FUNC if spec.is_func else Kind.VAR
        name = essential_name(spec.name) if spec.is_func else spec.name
        what = "func ksym" if spec.is_func else "var ksym"
        where = f"{self.object_name}: extern ({what}) {spec.name!r}"
        found = self.kernel.find(name, kind)
        if found is None:
            if spec.weak:
                return ExternValue("missing")
            place = "kernel or module BTFs" if spec.is_func else "kernel BTF"
            raise ObjectError(f"{where}: not found in {place}", errno.EINVAL)
        btf, target, module = found.btf, found.btf[found.type_id], found.module
        assert self.local_btf is not None
        local = self.local_btf[spec.type_id]
        if spec.is_func:
            compatible = types_compatible(self.local_btf, local.type, btf, target.type)
        else:
            local_type = skip_mods_and_typedefs(self.local_btf, local.type).id
            target_type = skip_mods_and_typedefs(btf, target.type).id
            compatible = types_compatible(self.local_btf, local_type, btf, target_type)
        if not compatible:
            if spec.is_func and spec.weak:
                return ExternValue("missing")
            origin = module or "vmlinux"
            raise ObjectError(
                f"{where}: its type is incompatible with {origin}'s {target.describe()}",
                errno.EINVAL,
            )
        fd = self.kernel.module_fd(module) if module else 0
        if not spec.is_func:
            return ExternValue("btf_var", btf_id=target.id, btf_fd=fd)
        fd_index = 0
        if fd:
            if not self.fd_array:
                self.fd_array.append(0)  # slot 0 stands for vmlinux
            if fd not in self.fd_array:
                self.fd_array.append(fd)
            fd_index = self.fd_array.index(fd)
        return ExternValue("kfunc", btf_id=target.id, btf_fd_index=fd_index, btf_fd=fd)

    def close(self) -> None:
        """Forget the fd_array (the fds themselves belong to ``kernel``)."""
        self.fd_array.clear()


def _name(extern: ExternSpec) -> str:
    return extern.name
