"""The seam for tests without a kernel (aya's ``override_syscall``): while
``override_syscall`` is active, every ``bpf(2)`` call of this package goes to a Python
handler instead — the fake kernel of ``tests/fakekernel.py``, or a watcher that passes
calls on with ``call_kernel``."""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import os
import sys
from collections.abc import Callable, Iterator

from ..uapi import Cmd
from .bpf import KERNEL_ENTRY, NR_BPF

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object  # (the protocols below are for the type checker only)


class SyscallHandler(Protocol):
    """Stands in for the kernel: gets each command and its attr (filled in by the caller,
    writable for results) and returns the syscall's result, or raises ``OSError`` with
    the errno the kernel would give."""

    def __call__(self, cmd: Cmd, attr: ctypes.Structure, size: int) -> int: ...


_ENTRY_MODULES = ("pylibbpf.syscall.bpf", "pylibbpf.syscall.elem")


def call_kernel(cmd: Cmd, attr: ctypes.Structure, size: int) -> int:
    """The real ``bpf(2)``, for a handler that watches calls and passes them on; raises
    ``OSError`` with the kernel's errno."""
    result = int(KERNEL_ENTRY(NR_BPF, int(cmd), ctypes.byref(attr), size))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


_on_override: list[Callable[[], None]] = []  # caches of what the kernel answered


def on_override(reset: Callable[[], None]) -> None:
    """Call ``reset`` whenever a handler is installed or removed: for caches (feature
    probes) whose answers came from the kernel that is being swapped."""
    _on_override.append(reset)


@contextlib.contextmanager
def override_syscall(handler: SyscallHandler) -> Iterator[None]:
    """Route every ``bpf(2)`` call to ``handler`` while the block runs (tests that exercise
    maps, links and the loader without privileges or a kernel)."""

    def entry(_nr: int, cmd: int, ref: Any, size: int) -> int:
        attr = ref._obj if hasattr(ref, "_obj") else ref
        try:
            return int(handler(Cmd(cmd), attr, int(size)))
        except OSError as error:
            ctypes.set_errno(error.errno or _errno.EINVAL)
            return -1

    entries = ("_bpf_slow", "_bpf_fast")
    modules = [sys.modules[name] for name in _ENTRY_MODULES if name in sys.modules]
    saved = [
        (module, entry_name, getattr(module, entry_name))
        for module in modules
        for entry_name in entries
        if hasattr(module, entry_name)
    ]
    for module, entry_name, _ in saved:
        setattr(module, entry_name, entry)
    _reset_caches()
    try:
        yield
    finally:
        for module, entry_name, original in saved:
            setattr(module, entry_name, original)
        _reset_caches()


def _reset_caches() -> None:
    """Re-pick every map buffer's entry points for the entry now installed (direct ones
    would bypass it), and forget the answers the kernel being swapped gave: the feature
    probes and ``on_override``'s (their modules do not import this one, a test seam)."""
    elem = sys.modules.get("pylibbpf.syscall.elem")
    if elem is not None:
        elem.rebind_all()
    features = sys.modules.get("pylibbpf.syscall.features")
    if features is not None:
        features.forget_probes()
    for reset in _on_override:
        reset()
