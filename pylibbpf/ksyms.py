"""``__ksym`` externs: kfuncs and kernel variables, from vmlinux or a loaded module's BTF,
and typeless symbols from kallsyms.

A kfunc defined in a module is called with ``insn.off`` indexing ``fd_array``, whose
slot holds the module BTF's fd (slot 0 stands for vmlinux); a typed variable in a module
carries that fd in its ``ld_imm64`` instead. The resolver keeps those fds open for as long
as the object is loaded.
"""

from __future__ import annotations

from . import syscall
from .btf import Btf, Kind
from .btf.upload import btf_object_info
from .elf import ExternSpec
from .errors import BpfError, ObjectError
from .fd import OwnedFd
from .kconfig import kallsyms_lookup
from .relocs import ExternValue


class KsymResolver:
    """Resolves one object's ``__ksym`` externs; owns the module BTF fds it opens."""

    def __init__(self, object_name: str, local_btf: Btf | None) -> None:
        self.object_name = object_name
        self.local_btf = local_btf
        self.fd_array: list[int] = []  # for PROG_LOAD: module BTF fds of kfunc calls
        self._module_fds: dict[str, OwnedFd] = {}

    def resolve(self, spec: ExternSpec) -> ExternValue:
        kind = Kind.FUNC if spec.is_func else Kind.VAR
        found = Btf.load_vmlinux().find_all(spec.name, kind)
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
            address = kallsyms_lookup({spec.name}).get(spec.name)
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
        for module in Btf.module_names():
            try:
                btf = Btf.load_module(module)
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
            name, kernel_btf, _size = btf_object_info(fd.fd, f"BTF id {btf_id}")
            if kernel_btf and name == module:
                self._module_fds[module] = fd
                return fd.fd
            fd.close()
        raise ObjectError(f"{self.object_name}: no kernel BTF object for module {module!r}")

    def close(self) -> None:
        for fd in self._module_fds.values():
            fd.close()
        self._module_fds.clear()
        self.fd_array.clear()
