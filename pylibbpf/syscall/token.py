"""BPF tokens (Linux 6.9): the right to run chosen bpf commands, map and program types and
attach types inside a user namespace, granted by a bpffs mounted with ``delegate_*``
options by someone privileged in the initial namespace.

Which bpffs an object's token comes from follows libbpf (``bpf_object_open_opts
.bpf_token_path``), with cilium/ebpf's addition:

* a path given: that bpffs, and failing to make a token from it is an error;
* otherwise ``LIBBPF_BPF_TOKEN_PATH``: the same, and the empty string disables tokens;
* otherwise every bpffs among this process's mounts (``/proc/self/mountinfo``) whose
  options delegate something, ``/sys/fs/bpf`` first; the first that gives a token is used,
  and none is no error (libbpf looks at ``/sys/fs/bpf`` only).
"""

from __future__ import annotations

import errno
import os

from ..errors import BpfError
from ..logs import module_logger
from ..records import dataclass
from . import bpf
from .attrs import TokenInfo
from .fd import OwnedFd

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from enum import IntEnum

logger = module_logger(__name__)

TOKEN_PATH_ENV = "LIBBPF_BPF_TOKEN_PATH"
DEFAULT_BPFFS = "/sys/fs/bpf"
MOUNTINFO = "/proc/self/mountinfo"
ALL = (1 << 64) - 1  # what "any" delegates

# Each delegate_* option: its enum in pylibbpf.uapi, and how the kernel spells its values
# (lower case, without this prefix) in /proc/self/mountinfo.
DELEGATE_ENUMS: dict[str, str] = {
    "cmds": "Cmd",
    "maps": "MapType",
    "progs": "ProgType",
    "attachs": "AttachType",
}


def delegate_enum(kind: str) -> type[IntEnum]:
    """The enum of a delegate_* option (``maps``: ``MapType``): imported when a mount
    delegates something (the enums are not on the path of loading without a token)."""
    from .. import uapi

    enum: type[IntEnum] = getattr(uapi, DELEGATE_ENUMS[kind])
    return enum


@dataclass(frozen=True)
class Delegation:
    """What a bpffs mount (or a token made from it) allows: one bit per enum value of
    ``bpf_cmd``, ``bpf_map_type``, ``bpf_prog_type`` and ``bpf_attach_type``."""

    cmds: int = 0
    maps: int = 0
    progs: int = 0
    attachs: int = 0

    @property
    def delegates(self) -> bool:
        """Whether tokens can be made from it at all."""
        return bool(self.cmds or self.maps or self.progs or self.attachs)

    def names(self, kind: str) -> list[str]:
        """The allowed values of ``kind`` ("cmds", "maps"…) by name, ``any`` for all,
        numbers this pylibbpf does not know as hex, as bpftool prints them."""
        mask = getattr(self, kind)
        if mask == ALL:
            return ["any"]
        enum = delegate_enum(kind)
        names = []
        for bit in range(64):
            if mask >> bit & 1:
                try:
                    names.append(enum(bit).name.lower())
                except ValueError:
                    names.append(hex(1 << bit))
        return names


@dataclass(frozen=True)
class BpffsMount:
    """A BPF filesystem in this process's mount namespace."""

    path: str
    delegation: Delegation


def parse_delegation(options: str) -> Delegation:
    """The ``delegate_*`` part of a bpffs's super options (``rw,delegate_cmds=any,…``)."""
    masks = dict.fromkeys(DELEGATE_ENUMS, 0)
    for option in options.split(","):
        key, _, value = option.partition("=")
        kind = key.removeprefix("delegate_")
        if not key.startswith("delegate_") or kind not in masks:
            continue
        enum = delegate_enum(kind)
        for word in value.split(":"):
            if word == "any":
                masks[kind] = ALL
            elif word.upper() in enum.__members__:
                masks[kind] |= 1 << enum[word.upper()]
            else:
                try:
                    masks[kind] |= int(word, 0)
                except ValueError:
                    continue  # a name this pylibbpf does not know: not ours to use
    return Delegation(**masks)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    if "\\" not in field:
        return field
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def parse_mountinfo(text: str) -> list[BpffsMount]:
    """The bpf filesystems listed in a ``/proc/<pid>/mountinfo`` text."""
    mounts = []
    for line in text.splitlines():
        head, separator, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not separator or len(fields) < 5 or len(rest) < 3 or rest[0] != "bpf":
            continue
        mounts.append(BpffsMount(_unescape(fields[4]), parse_delegation(rest[2])))
    return mounts


def bpffs_mounts(mountinfo: str = MOUNTINFO) -> list[BpffsMount]:
    """Every bpffs this process sees, in mount order."""
    try:
        with open(mountinfo) as f:
            return parse_mountinfo(f.read())
    except OSError:
        return []


def delegating_mounts(mountinfo: str = MOUNTINFO) -> list[BpffsMount]:
    """The bpffs mounts that delegate something, ``/sys/fs/bpf`` first."""
    found = [m for m in bpffs_mounts(mountinfo) if m.delegation.delegates]
    return sorted(found, key=lambda m: m.path != DEFAULT_BPFFS)


def create_token(bpffs: str | os.PathLike[str] | int) -> OwnedFd:
    """A BPF token from a delegating bpffs: its mount point, or an fd on its root (an
    ``fsmount`` fd included). Raises a ``BpfError`` saying why the kernel refused."""
    source = "a mount fd" if isinstance(bpffs, int) else repr(os.fspath(bpffs))
    what = f"BPF token from {source}"
    try:
        if isinstance(bpffs, int):
            root = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=bpffs)
        else:
            root = os.open(bpffs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise BpfError(f"{what}: cannot open it: {error.strerror}", error.errno) from None
    try:
        return OwnedFd(bpf.token_create(root, what=what), "BPF token")
    finally:
        os.close(root)


def token_info(token_fd: int) -> Delegation:
    """What a token allows, as the kernel reports it (``bpf_token_info``). Kernels
    before 6.17 cannot describe a token: a ``BpfError`` says so, naming the release."""
    try:
        info = bpf.obj_get_info_by_fd(token_fd, TokenInfo(), what="BPF token")
    except BpfError as error:
        if error.errno != errno.EINVAL:
            raise
        raise BpfError(
            f"this kernel ({os.uname().release}) cannot describe a BPF token: "
            "OBJ_GET_INFO_BY_FD on tokens (bpf_token_info) is Linux 6.17+",
            error.errno,
        ) from error
    return Delegation(
        info.allowed_cmds, info.allowed_maps, info.allowed_progs, info.allowed_attachs
    )


def object_token(token_path: str | None, what: str) -> OwnedFd | None:
    """The token an object loads with (the rules in this module's docstring); None when
    there is none to use. ``what`` names the object in errors."""
    path = token_path if token_path is not None else os.environ.get(TOKEN_PATH_ENV)
    if path == "":
        return None  # explicitly disabled
    if path is not None:
        try:
            token = create_token(path)
        except BpfError as error:
            raise type(error)(f"{what}: {error.message}", error.errno) from error
        logger.info("%s: loading with the BPF token of the bpffs at %r", what, path)
        return token
    for mount in delegating_mounts():
        try:
            token = create_token(mount.path)
        except BpfError as error:
            logger.debug("%s: no BPF token from the bpffs at %r: %s", what, mount.path, error)
            continue  # another user namespace's, or not ours to use: try the next
        logger.info("%s: loading with the BPF token of the bpffs at %r", what, mount.path)
        return token
    return None


__all__ = [
    "ALL",
    "DEFAULT_BPFFS",
    "TOKEN_PATH_ENV",
    "BpffsMount",
    "Delegation",
    "bpffs_mounts",
    "create_token",
    "delegating_mounts",
    "object_token",
    "parse_delegation",
    "parse_mountinfo",
    "token_info",
]
