"""Exception hierarchy. Every message names the object, program or map it is about.

``BpfError`` is an ``OSError`` so callers that already handle ``OSError`` keep working, and
``.errno`` is set whenever the kernel gave one. ``describe_errno`` turns an errno from a
given bpf command into what it means *for that command* (E2BIG on an update is a full map,
not an argument list), which is the part users otherwise look up in kernel sources.
"""

from __future__ import annotations

import errno as _errno
import functools
import os
from collections.abc import Callable

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from .uapi_values import Cmd

ENOTSUPP = 524  # the kernel-internal errno that BPF leaks to user space (as uapi.ENOTSUPP)


class BpfError(OSError):
    """Base of every pylibbpf error."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        if errno is None:
            super().__init__(message)
        else:
            super().__init__(errno, message)
        self.message = message

    def __str__(self) -> str:
        """The message alone (no errno prefix): it already names the errno."""
        return self.message


class ObjectError(BpfError):
    """The input (ELF object, BTF, instructions, arguments) is malformed or inconsistent."""


class LoadError(BpfError):
    """The verifier (or the kernel's load path) rejected a program."""

    def __init__(
        self, message: str, errno: int | None = None, *, program: str = "", log: str = ""
    ) -> None:
        super().__init__(message, errno)
        self.program = program
        self.log = log


class RelocationError(ObjectError):
    """A CO-RE or other relocation could not be applied."""


class AttachError(BpfError):
    """A program could not be attached to its hook."""


class NotSupportedError(BpfError):
    """The running kernel lacks a feature (map type, program type, helper, link kind...)."""


class BpfPermissionError(BpfError, PermissionError):
    """The caller lacks the capability the command needs."""


class MapFullError(BpfError):
    """An update needed a new element and the map already holds ``max_entries``."""


@functools.cache
def _meanings() -> dict[tuple[int | None, int], str]:
    """What an errno means per command (built on first use: a clean run never needs it,
    nor ``import pylibbpf.cli`` the command numbers)."""
    from .uapi_values import Cmd

    return {
        (Cmd.MAP_UPDATE_ELEM, _errno.E2BIG): "the map is full (max_entries reached)",
        (Cmd.MAP_UPDATE_ELEM, _errno.EEXIST): "the key already exists (NOEXIST was requested)",
        (Cmd.MAP_UPDATE_ELEM, _errno.ENOENT): "the key does not exist (EXIST was requested)",
        (Cmd.MAP_UPDATE_ELEM, _errno.EPERM): (
            "the map is frozen or read-only for user space (BPF_F_RDONLY / map_freeze)"
        ),
        (Cmd.MAP_UPDATE_BATCH, _errno.EPERM): (
            "the map is frozen or read-only for user space (BPF_F_RDONLY / map_freeze)"
        ),
        (Cmd.MAP_UPDATE_BATCH, _errno.E2BIG): "the map is full (max_entries reached)",
        (Cmd.MAP_UPDATE_ELEM, _errno.EINVAL): "invalid flags or value for this map type",
        (Cmd.MAP_UPDATE_ELEM, _errno.EBADF): "the map fd (or an fd in the value) is not valid",
        (Cmd.MAP_FREEZE, _errno.EBUSY): "the map is already frozen or has writable mmaps",
        (Cmd.MAP_CREATE, _errno.EINVAL): (
            "the kernel rejected the map attributes (unknown map type or flags, sizes not allowed "
            "for this type, or a BTF mismatch)"
        ),
        (Cmd.PROG_LOAD, _errno.EACCES): "the verifier rejected the program",
        (Cmd.PROG_LOAD, _errno.EINVAL): "the verifier or the kernel rejected the program",
        (Cmd.PROG_LOAD, _errno.E2BIG): "the program is too large for this kernel",
        (Cmd.PROG_TEST_RUN, ENOTSUPP): "this program type cannot be run with test_run",
        (Cmd.PROG_TEST_RUN, _errno.EINVAL): "test_run rejected the input (data or ctx size)",
        (Cmd.OBJ_PIN, _errno.EEXIST): "the pin path already exists",
        (Cmd.OBJ_PIN, _errno.EPERM): "the path is not on a BPF filesystem (mount -t bpf)",
        (Cmd.OBJ_GET, _errno.ENOENT): "nothing is pinned at that path",
        (Cmd.TOKEN_CREATE, _errno.ENOENT): "that BPF filesystem delegates nothing (no delegate_*)",
        (Cmd.TOKEN_CREATE, _errno.EINVAL): (
            "not the root of a BPF filesystem (or a kernel without BPF tokens: Linux 6.9+)"
        ),
        (Cmd.TOKEN_CREATE, _errno.EOPNOTSUPP): (
            "BPF tokens cannot be created in the initial user namespace"
        ),
        (None, _errno.EBADF): "bad file descriptor (the object is closed or the fd is not BPF)",
        (None, ENOTSUPP): "operation not supported by this kernel",
        (None, _errno.EOPNOTSUPP): "operation not supported by this kernel or object type",
        (None, _errno.ENOSPC): "out of space (a buffer or count was too small)",
        (None, _errno.ENOMEM): "the kernel could not allocate memory",
    }


_PRIVILEGED_ERRNOS = {_errno.EPERM, _errno.EACCES}
_UPDATES = ("MAP_UPDATE_ELEM", "MAP_UPDATE_BATCH")


def describe_errno(err: int, cmd: Cmd | None = None) -> str:
    """What ``err`` means when returned by ``cmd``; falls back to ``strerror``."""
    meanings = _meanings()
    meaning = meanings.get((cmd, err)) or meanings.get((None, err))
    if meaning:
        return meaning
    try:
        return os.strerror(err)
    except ValueError:
        return f"errno {err}"


def error_from_errno(
    err: int,
    cmd: Cmd | None,
    what: str,
    *,
    permission_hint: Callable[[], str] | None = None,
) -> BpfError:
    """Build the right ``BpfError`` subclass for a failed bpf command on ``what``;
    ``permission_hint()`` (the syscall layer's: it reads the process's capabilities) is
    appended to permission errors."""
    from .uapi_values import Cmd, value_name

    command = (value_name(Cmd, cmd) or f"command {cmd}") if cmd is not None else "bpf"
    subject = f"{what}: " if what else ""
    meaning = describe_errno(err, cmd)
    message = f"{subject}{command} failed: {meaning} [{_errno.errorcode.get(err, err)}]"
    if (cmd, err) in _meanings():
        full = err == _errno.E2BIG and cmd is not None and command in _UPDATES
        return MapFullError(message, err) if full else BpfError(message, err)
    if err in _PRIVILEGED_ERRNOS:
        hint = f"; {permission_hint()}" if permission_hint is not None else ""
        return BpfPermissionError(f"{message}{hint}", err)
    if err in (ENOTSUPP, _errno.EOPNOTSUPP):
        return NotSupportedError(message, err)
    return BpfError(message, err)
