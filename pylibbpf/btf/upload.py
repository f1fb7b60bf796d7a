"""Uploading BTF to the kernel (BTF_LOAD), with the kernel's log when it refuses."""

from __future__ import annotations

import ctypes
import errno

from .. import syscall
from ..errors import BpfError, BpfPermissionError, ObjectError
from ..fd import OwnedFd

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
