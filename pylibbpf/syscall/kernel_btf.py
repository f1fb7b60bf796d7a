"""The kernel's BTF: vmlinux and module BTF from sysfs (parsed once per process, with the
on-disk record index of ``btf_index``), BTF the kernel holds by id, and uploading BTF
(BTF_LOAD)."""

from __future__ import annotations

import errno
import os
from _thread import allocate_lock

from ..btf.parse import Btf, read_btf_file
from ..errors import BpfError, BpfPermissionError, ObjectError

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)

if TYPE_CHECKING:
    from pathlib import Path

    from .btf_index import cache_dir, parse_indexed
    from .fd import OwnedFd

    SYSFS_BTF: Path

_SYSFS_BTF = "/sys/kernel/btf"


def __getattr__(name: str) -> object:
    """``SYSFS_BTF`` (a ``Path``) and the index's ``cache_dir``/``parse_indexed`` on first
    use: pathlib and the index are for loads that need the kernel's BTF, not for import."""
    if name == "SYSFS_BTF":
        from pathlib import Path

        return Path(_SYSFS_BTF)
    if name in ("cache_dir", "parse_indexed"):
        from . import btf_index

        return getattr(btf_index, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_lock = allocate_lock()  # (threading.Lock, without threading.py's import)
_kernel: dict[str, Btf] = {}


def load_vmlinux(path: str | os.PathLike[str] | None = None) -> Btf:
    """The running kernel's BTF, parsed once per process."""
    key = os.fspath(path) if path is not None else f"{_SYSFS_BTF}/vmlinux"
    with _lock:
        cached = _kernel.get(key)
        if cached is not None:
            return cached
        try:
            data = read_btf_file(key)
        except FileNotFoundError as error:
            raise ObjectError(
                f"{key} does not exist: this kernel was built without BTF "
                "(CONFIG_DEBUG_INFO_BTF); give a BTF file instead"
            ) from error
        from .btf_index import parse_indexed  # (pathlib, mmap: for the kernel's BTF only)

        btf = parse_indexed(data, "vmlinux", fixed_for_boot=path is None)
        _kernel[key] = btf
        return btf


def module_names() -> list[str]:
    """Kernel modules that carry BTF (``/sys/kernel/btf/*`` except vmlinux)."""
    try:
        return sorted(name for name in os.listdir(_SYSFS_BTF) if name != "vmlinux")
    except FileNotFoundError:
        return []


def load_module(name: str) -> Btf:
    """A module's BTF, split on top of vmlinux (type ids continue after vmlinux's)."""
    base = load_vmlinux()
    key = f"{_SYSFS_BTF}/{name}"
    with _lock:
        cached = _kernel.get(key)
        if cached is not None:
            return cached
    try:
        data = read_btf_file(key)
    except FileNotFoundError as error:
        raise ObjectError(
            f"module {name!r} has no BTF (not loaded, or built without it)"
        ) from error
    btf = Btf(data, name=name, base=base)
    with _lock:
        _kernel[key] = btf
    return btf


# --------------------------------------------------------------------------- upload and fetch
# (bpf(2), its attrs and ctypes are imported here, on first use: reading the kernel's BTF
# from sysfs, as ``btf dump`` does, needs none of them.)

_LOG_SIZE = 1 << 20


def load_btf(raw: bytes, *, name: str = "BTF") -> OwnedFd:
    """Load raw BTF; on rejection retry with a log and raise ``ObjectError`` quoting it."""
    import ctypes

    from .attrs import BtfLoadAttr
    from .bpf import btf_load, kernel_buffer
    from .fd import OwnedFd

    _data, address = kernel_buffer(raw)  # (the copy lives as long as this call)
    attr = BtfLoadAttr(btf=address, btf_size=len(raw))
    try:
        return OwnedFd(btf_load(attr, what=name), name)
    except BpfPermissionError:
        raise
    except BpfError as first:
        log = ctypes.create_string_buffer(_LOG_SIZE)
        attr.btf_log_buf = ctypes.addressof(log)
        attr.btf_log_size = _LOG_SIZE
        attr.btf_log_level = 1
        try:
            return OwnedFd(btf_load(attr, what=name), name)
        except BpfError:
            pass
        text = log.value.decode(errors="replace").strip()
        lines = [line for line in text.splitlines() if line.strip()]
        detail = "\n".join(lines[-8:])
        raise ObjectError(
            f"{name}: the kernel rejected the BTF [{errno.errorcode.get(first.errno or 0, '?')}]"
            + (f":\n{detail}" if detail else ""),
            first.errno,
        ) from first


def fetch_btf(btf_id: int) -> Btf:
    """BTF the kernel holds (a loaded object's, a module's) by id: for decoding the maps
    and programs other processes loaded. Split BTF gets vmlinux as its base."""
    import ctypes

    from .attrs import BtfInfo
    from .bpf import btf_get_fd_by_id, obj_get_info_by_fd
    from .fd import OwnedFd

    what = f"BTF id {btf_id}"
    with OwnedFd(btf_get_fd_by_id(btf_id), what) as fd:
        name, kernel_btf, size = btf_object_info(fd.fd, what)
        data = ctypes.create_string_buffer(size)
        info = BtfInfo(btf=ctypes.addressof(data), btf_size=len(data))
        obj_get_info_by_fd(fd.fd, info, what=what)
    module = kernel_btf and name != "vmlinux"
    raw = data.raw[: info.btf_size]
    return Btf(raw, name=name or what, base=load_vmlinux() if module else None)


def open_module_btf(module: str) -> OwnedFd:
    """An fd for a loaded module's BTF object (found among the kernel's BTF ids by name):
    what PROG_LOAD and MAP_CREATE take to name a type in that module's BTF."""
    from .bpf import btf_get_fd_by_id, btf_get_next_id, iterate_ids
    from .fd import OwnedFd

    for btf_id in iterate_ids(btf_get_next_id):
        what = f"BTF id {btf_id}"
        try:
            fd = OwnedFd(btf_get_fd_by_id(btf_id), what)
        except BpfError:
            continue  # gone meanwhile
        try:
            name, is_kernel, _size = btf_object_info(fd.fd, what)
        except BpfError:
            fd.close()
            continue
        if is_kernel and name == module:
            fd.label = f"BTF of module {module!r}"
            return fd
        fd.close()
    raise ObjectError(f"no kernel BTF object for module {module!r} (was it unloaded?)")


def btf_object_info(fd: int, what: str) -> tuple[str, bool, int]:
    """A kernel BTF object's name ("vmlinux", a module's), whether it is the kernel's
    own (vmlinux or a module) rather than a loaded program's, and its size in bytes."""
    import ctypes

    from .attrs import BtfInfo
    from .bpf import obj_get_info_by_fd

    name = ctypes.create_string_buffer(64)
    info = BtfInfo(name=ctypes.addressof(name), name_len=len(name))
    obj_get_info_by_fd(fd, info, what=what)
    return name.value.decode(errors="replace"), bool(info.kernel_btf), info.btf_size


__all__ = [
    "SYSFS_BTF",
    "btf_object_info",
    "cache_dir",
    "fetch_btf",
    "load_btf",
    "load_module",
    "load_vmlinux",
    "module_names",
    "open_module_btf",
    "parse_indexed",
]
