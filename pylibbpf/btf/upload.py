"""Uploading BTF to the kernel (BTF_LOAD), with the kernel's log when it refuses."""

from __future__ import annotations

import ctypes
import errno

from .. import syscall
from ..errors import BpfError, BpfPermissionError, ObjectError
from ..fd import OwnedFd
from .parse import Btf

_LOG_SIZE = 1 << 20


def load_btf(raw: bytes, *, name: str = "BTF") -> OwnedFd:
    """Load raw BTF; on rejection retry with a log and raise ``ObjectError`` quoting it."""
    data = ctypes.create_string_buffer(raw, len(raw))
    attr = syscall.BtfLoadAttr(btf=ctypes.addressof(data), btf_size=len(raw))
    try:
        return OwnedFd(syscall.btf_load(attr, what=name), name)
    except BpfPermissionError:
        raise
    except BpfError as first:
        log = ctypes.create_string_buffer(_LOG_SIZE)
        attr.btf_log_buf = ctypes.addressof(log)
        attr.btf_log_size = _LOG_SIZE
        attr.btf_log_level = 1
        try:
            return OwnedFd(syscall.btf_load(attr, what=name), name)
        except BpfError:
            pass
        text = log.value.decode(errors="replace").strip()
        lines = [line for line in text.splitlines() if line.strip()]
        detail = "\n".join(lines[-8:])
        raise ObjectError(
            f"{name}: the kernel rejected the BTF [{errno.errorcode.get(first.errno or 0, '?')}]"
            + (f":\n{detail}" if detail else ""),
            first.errno,
        ) from None


def fetch_btf(btf_id: int) -> Btf:
    """BTF the kernel holds (a loaded object's, a module's) by id: for decoding the maps
    and programs other processes loaded. Split BTF gets vmlinux as its base."""
    what = f"BTF id {btf_id}"
    with OwnedFd(syscall.btf_get_fd_by_id(btf_id), what) as fd:
        name, kernel_btf, size = btf_object_info(fd.fd, what)
        data = ctypes.create_string_buffer(size)
        info = syscall.BtfInfo(btf=ctypes.addressof(data), btf_size=len(data))
        syscall.obj_get_info_by_fd(fd.fd, info, what=what)
    module = kernel_btf and name != "vmlinux"
    raw = data.raw[: info.btf_size]
    return Btf(raw, name=name or what, base=Btf.load_vmlinux() if module else None)


def btf_object_info(fd: int, what: str) -> tuple[str, bool, int]:
    """A kernel BTF object's name ("vmlinux", a module's), whether it is the kernel's
    own (vmlinux or a module) rather than a loaded program's, and its size in bytes."""
    name = ctypes.create_string_buffer(64)
    info = syscall.BtfInfo(name=ctypes.addressof(name), name_len=len(name))
    syscall.obj_get_info_by_fd(fd, info, what=what)
    return name.value.decode(errors="replace"), bool(info.kernel_btf), info.btf_size
