"""The new mount API (``fsopen``/``fsconfig``/``fsmount``/``move_mount``, Linux 5.2+)
through libc's ``syscall``: what it takes to build a BPF filesystem that delegates BPF
commands to a user namespace.

A delegating bpffs is a two-party job. Its superblock belongs to the user namespace that
called ``fsopen`` (the namespace its tokens will serve), while the ``delegate_*`` options
need CAP_SYS_ADMIN in the initial namespace. So the namespaced process opens the context
and hands the fd to a privileged one, which sets the options, creates the superblock and
mounts it (``fsmount``); the mount fd goes back, and ``token.create_token`` makes a token
from it. ``DelegateOptions.apply`` is the privileged half.
"""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass

from ..errors import BpfError, BpfPermissionError, NotSupportedError
from .fd import OwnedFd

# The same numbers on every architecture since 5.2 (they postdate the syscall table
# unification), x86_64 and aarch64 included.
NR_MOVE_MOUNT = 429
NR_FSOPEN = 430
NR_FSCONFIG = 431
NR_FSMOUNT = 432

FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOVE_MOUNT_F_EMPTY_PATH = 4

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def _call(number: int, what: str, *args: object) -> int:
    result = int(_syscall(number, *args))
    if result < 0:
        err = ctypes.get_errno()
        message = f"{what}: {os.strerror(err)}"
        if err == errno.ENOSYS:
            raise NotSupportedError(f"{message} (the new mount API needs Linux 5.2+)", err)
        if err in (errno.EPERM, errno.EACCES):
            raise BpfPermissionError(message, err)
        raise BpfError(message, err)
    return result


def fsopen(fs_name: str = "bpf") -> OwnedFd:
    """A filesystem context; its superblock will belong to the caller's user namespace."""
    fd = _call(NR_FSOPEN, f"fsopen({fs_name!r})", fs_name.encode(), FSOPEN_CLOEXEC)
    return OwnedFd(fd, f"{fs_name} filesystem context")


def fsconfig_string(context_fd: int, key: str, value: str) -> None:
    """Set one mount option on a filesystem context."""
    _call(
        NR_FSCONFIG,
        f"fsconfig({key}={value})",
        ctypes.c_int(context_fd),
        ctypes.c_uint(FSCONFIG_SET_STRING),
        key.encode(),
        value.encode(),
        ctypes.c_int(0),
    )


def fsconfig_create(context_fd: int) -> None:
    """Create the superblock from the options set so far."""
    _call(
        NR_FSCONFIG,
        "fsconfig(FSCONFIG_CMD_CREATE)",
        ctypes.c_int(context_fd),
        ctypes.c_uint(FSCONFIG_CMD_CREATE),
        None,
        None,
        ctypes.c_int(0),
    )


def fsmount(context_fd: int) -> OwnedFd:
    """A detached mount of the context's superblock: an fd on its root, in no directory."""
    fd = _call(NR_FSMOUNT, "fsmount", ctypes.c_int(context_fd), FSMOUNT_CLOEXEC, 0)
    return OwnedFd(fd, "detached mount")


def move_mount(mount_fd: int, target: str) -> None:
    """Attach a detached mount at ``target`` in the caller's mount namespace."""
    _call(
        NR_MOVE_MOUNT,
        f"move_mount to {target!r}",
        ctypes.c_int(mount_fd),
        b"",
        ctypes.c_int(-100),  # AT_FDCWD
        os.fsencode(target),
        MOVE_MOUNT_F_EMPTY_PATH,
    )


@dataclass(frozen=True)
class DelegateOptions:
    """bpffs ``delegate_*`` options: what tokens made from the mount may do. Each is a
    colon-separated list of names (``map_create:prog_load``, ``array``, ``xdp``), a
    number, or ``any``; empty leaves it unset."""

    cmds: str = "any"
    maps: str = "any"
    progs: str = "any"
    attachs: str = "any"

    def apply(self, context_fd: int) -> OwnedFd:
        """The privileged half: set the options on ``context_fd`` (from another user
        namespace's ``fsopen``), create the superblock, and return the detached mount."""
        for key, value in (
            ("delegate_cmds", self.cmds),
            ("delegate_maps", self.maps),
            ("delegate_progs", self.progs),
            ("delegate_attachs", self.attachs),
        ):
            if value:
                fsconfig_string(context_fd, key, value)
        fsconfig_create(context_fd)
        return fsmount(context_fd)
