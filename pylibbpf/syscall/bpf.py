"""The ``bpf(2)`` entry point and one function per command.

Two entry points into libc's ``syscall``:

* ``_bpf_slow`` (``CDLL``) releases the GIL, for commands that can take long (PROG_LOAD
  runs the verifier, BTF_LOAD, batch operations, test runs).
* ``_bpf_fast`` (``PyDLL``) keeps the GIL, for single-element map operations: faster (no
  release/re-acquire around a ~1 us syscall). It does not make buffers safe to share:
  threads switch between bytecodes, so ``elem.MapElemOps`` are per thread.

Every function raises the ``BpfError`` subclass that ``kernel_error`` picks, with the
``what`` argument (e.g. ``"map 'counts'"``) naming the object in the message.

Both are module globals looked up on every call: ``seam.override_syscall`` swaps them for
a Python handler (tests without a kernel).
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
from _thread import allocate_lock
from bisect import bisect_left
from collections.abc import Sequence

from ..errors import BpfError, error_from_errno
from ..records import dataclass, field
from ..uapi_values import OBJ_NAME_LEN, Cmd, MapFlags, ProgFlags
from .attrs import (
    BtfLoadAttr,
    FdAttr,
    GetIdAttr,
    InfoAttr,
    MapBatchAttr,
    MapCreateAttr,
    MapElemAttr,
    ObjAttr,
    ProgBindMapAttr,
    ProgLoadAttr,
    TokenCreateAttr,
    c_u32,
)

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from contextvars import ContextVar, Token
    from typing import Any, TypeVar

    _Attr = TypeVar("_Attr", bound=ctypes.Structure)


_NR_BPF = {
    "x86_64": 321,
    "aarch64": 280,
    "riscv64": 280,
    "loongarch64": 280,
    "s390x": 351,
    "ppc64le": 361,
    "ppc64": 361,
    "i686": 357,
    "i386": 357,
    "armv7l": 386,
}
NR_BPF = _NR_BPF.get(os.uname().machine, 321)  # (platform.machine(), without platform)

_bpf_slow = ctypes.CDLL(None, use_errno=True).syscall
_bpf_fast = ctypes.PyDLL(None, use_errno=True).syscall
_bpf_slow.restype = ctypes.c_long
_bpf_fast.restype = ctypes.c_long
KERNEL_ENTRY = _bpf_slow  # the real entry, kept for seam.call_kernel whatever is installed


def kernel_error(err: int, cmd: Cmd | None, what: str, attr: object = None) -> BpfError:
    """The ``BpfError`` for a failed command, with a capability hint for EPERM/EACCES
    naming what this command (for ``attr``'s program or map type) needs and lacks."""
    return error_from_errno(err, cmd, what, permission_hint=lambda: _hint_for(cmd, attr))


def _hint_for(cmd: Cmd | None, attr: object) -> str:
    from .capabilities import hint_for  # (the rules, read only when a command is refused)

    return hint_for(cmd, attr)


# --------------------------------------------------------------------------- core call


# Per attr layout: its fields' offsets in order, and each one's end.
_FIELD_BOUNDS: dict[type, tuple[list[int], list[int]]] = {}


def _used_size(attr: ctypes.Structure) -> int:
    """Bytes up to the end of the last non-zero field, so older kernels accept the attr."""
    raw = bytes(attr)
    end = len(raw.rstrip(b"\0"))
    if end == 0:
        return 4
    bounds = _FIELD_BOUNDS.get(type(attr))
    if bounds is None:
        fields = [getattr(type(attr), name) for name, *_ in attr._fields_]
        bounds = [f.offset for f in fields], [f.offset + f.size for f in fields]
        _FIELD_BOUNDS[type(attr)] = bounds
    offsets, ends = bounds
    last = bisect_left(offsets, end) - 1  # the last field starting before ``end``
    return int(ends[last]) if last >= 0 else len(raw)


def bpf(cmd: Cmd, attr: ctypes.Structure, *, what: str = "", size: int | None = None) -> int:
    """Run one bpf command (GIL released); raise the matching ``BpfError`` on failure."""
    result = int(_bpf_slow(NR_BPF, int(cmd), ctypes.byref(attr), size or _used_size(attr)))
    if result < 0:
        raise kernel_error(ctypes.get_errno(), cmd, what, attr)
    return result


def _address(buffer: Any) -> int:
    """Address of a ctypes object, bytearray or bytes (caller keeps the object alive)."""
    if buffer is None:
        return 0
    if isinstance(buffer, ctypes._SimpleCData | ctypes.Structure | ctypes.Array):
        return ctypes.addressof(buffer)
    if isinstance(buffer, bytes):
        return ctypes.cast(ctypes.c_char_p(buffer), ctypes.c_void_p).value or 0
    view = memoryview(buffer)
    if view.readonly:
        raise TypeError("a writable buffer is needed")
    # Seen as its first ``c_char``: ``c_char * nbytes`` would make a ctypes array type
    # for each new length (~75 k instructions each).
    cell = ctypes.c_char if view.nbytes else ctypes.c_char * 0
    return ctypes.addressof(cell.from_buffer(view))


def kernel_buffer(data: bytes | int) -> tuple[bytearray, int]:
    """A buffer for the kernel (a copy of ``data``, or that many zero bytes) and its
    address; keep the buffer alive while the kernel uses it. Unlike
    ``create_string_buffer``, no ctypes array type per new length (a dozen lengths on a
    first load)."""
    buffer = bytearray(data) or bytearray(1)
    return buffer, _address(buffer)


def _path_bytes(path: str | os.PathLike[str]) -> bytes:
    return os.fsencode(path) + b"\0"


# --------------------------------------------------------------------------- BPF tokens

# The context's token: made by the first ``using_token`` with one (until then, every
# context has none, and contextvars is not imported: most processes never use a token).
_TOKEN: ContextVar[int] | None = None
_TOKEN_MADE = allocate_lock()


class _TokenScope:
    """The block of :func:`using_token` (a class rather than ``@contextmanager``:
    ``contextlib`` stays off the path of ``import pylibbpf`` and of loading)."""

    __slots__ = ("_reset", "_token_fd", "_var")

    def __init__(self, token_fd: int) -> None:
        self._token_fd = token_fd
        self._var: ContextVar[int] | None = None
        self._reset: Token[int] | None = None

    def __enter__(self) -> None:
        global _TOKEN
        token = _TOKEN
        if token is None:
            if not self._token_fd:
                return  # no context has a token yet: this one has none already
            with _TOKEN_MADE:
                if _TOKEN is None:
                    from contextvars import ContextVar

                    _TOKEN = ContextVar("pylibbpf_bpf_token", default=0)
                token = _TOKEN
        self._var, self._reset = token, token.set(self._token_fd)

    def __exit__(self, *exc_info: object) -> None:
        if self._var is not None and self._reset is not None:
            self._var.reset(self._reset)


def using_token(token_fd: int) -> _TokenScope:
    """Within the block, MAP_CREATE, PROG_LOAD and BTF_LOAD (feature probes included)
    carry this BPF token unless given another; 0 means none. What an object's load uses."""
    return _TokenScope(token_fd)


def active_token() -> int:
    """The token fd ``using_token`` set for this context (0: none)."""
    token = _TOKEN
    return 0 if token is None else token.get()


def token_create(bpffs_fd: int, *, what: str = "") -> int:
    """TOKEN_CREATE (6.9): a BPF token from the root of a bpffs mounted with delegate_*."""
    attr = TokenCreateAttr(bpffs_fd=bpffs_fd)
    return bpf(Cmd.TOKEN_CREATE, attr, what=what or "BPF token", size=ctypes.sizeof(attr))


# --------------------------------------------------------------------------- maps


def map_create(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    *,
    flags: int = 0,
    name: str = "",
    inner_map_fd: int = 0,
    numa_node: int = 0,
    ifindex: int = 0,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    btf_vmlinux_value_type_id: int = 0,
    map_extra: int = 0,
    value_type_btf_obj_fd: int = 0,
    token_fd: int | None = None,
    excl_prog_hash: bytes = b"",
    what: str = "",
) -> int:
    """MAP_CREATE: a new map; returns its fd. ``token_fd`` None: the active token, if any;
    ``excl_prog_hash``: the SHA-256 of the one program allowed to use it (6.18)."""
    token = active_token() if token_fd is None else token_fd
    # (``_excl`` keeps the hash's copy alive until the kernel has read it)
    _excl, excl_address = kernel_buffer(excl_prog_hash) if excl_prog_hash else (None, 0)
    attr = MapCreateAttr(
        map_type=map_type,
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        map_flags=flags | (MapFlags.TOKEN_FD if token else 0),
        inner_map_fd=inner_map_fd,
        numa_node=numa_node,
        map_name=name.encode()[: OBJ_NAME_LEN - 1],
        map_ifindex=ifindex,
        btf_fd=btf_fd,
        btf_key_type_id=btf_key_type_id,
        btf_value_type_id=btf_value_type_id,
        btf_vmlinux_value_type_id=btf_vmlinux_value_type_id,
        map_extra=map_extra,
        value_type_btf_obj_fd=value_type_btf_obj_fd,
        map_token_fd=token,
        excl_prog_hash=excl_address,
        excl_prog_hash_size=len(excl_prog_hash),
    )
    return bpf(Cmd.MAP_CREATE, attr, what=what or f"map {name!r}")


def _elem(cmd: Cmd, map_fd: int, key: Any, value: Any, flags: int, what: str) -> bool:
    attr = MapElemAttr(map_fd=map_fd, key=_address(key), value=_address(value), flags=flags)
    result = _bpf_fast(NR_BPF, int(cmd), ctypes.byref(attr), ctypes.sizeof(attr))
    if result < 0:
        err = ctypes.get_errno()
        if err == _errno.ENOENT and cmd != Cmd.MAP_UPDATE_ELEM:
            return False
        raise kernel_error(err, cmd, what)
    return True


def map_lookup_elem(map_fd: int, key: Any, value: Any, flags: int = 0, *, what: str = "") -> bool:
    """Copy the value for ``key`` into ``value``; False if there is no such key."""
    return _elem(Cmd.MAP_LOOKUP_ELEM, map_fd, key, value, flags, what)


def map_update_elem(map_fd: int, key: Any, value: Any, flags: int = 0, *, what: str = "") -> None:
    """MAP_UPDATE_ELEM: insert or replace ``key``'s value."""
    _elem(Cmd.MAP_UPDATE_ELEM, map_fd, key, value, flags, what)


def map_delete_elem(map_fd: int, key: Any, *, what: str = "") -> bool:
    """Delete ``key``; False if it was not there."""
    return _elem(Cmd.MAP_DELETE_ELEM, map_fd, key, None, 0, what)


def map_get_next_key(map_fd: int, key: Any, next_key: Any, *, what: str = "") -> bool:
    """Write the key after ``key`` (the first one if ``key`` is None); False at the end."""
    return _elem(Cmd.MAP_GET_NEXT_KEY, map_fd, key, next_key, 0, what)


def map_lookup_and_delete_elem(
    map_fd: int, key: Any, value: Any, flags: int = 0, *, what: str = ""
) -> bool:
    """MAP_LOOKUP_AND_DELETE_ELEM; False if there is no such key."""
    return _elem(Cmd.MAP_LOOKUP_AND_DELETE_ELEM, map_fd, key, value, flags, what)


def map_freeze(map_fd: int, *, what: str = "") -> None:
    """MAP_FREEZE: read-only for user space from now on."""
    bpf(Cmd.MAP_FREEZE, FdAttr(fd=map_fd), what=what)


@dataclass(frozen=True)
class BatchResult:
    """What one MAP_*_BATCH call did."""

    count: int  # elements processed by this call
    done: bool  # the kernel reported the end of the map (ENOENT)


def map_batch(
    cmd: Cmd,
    map_fd: int,
    *,
    keys: Any,
    values: Any = None,
    count: int,
    in_batch: Any = None,
    out_batch: Any = None,
    elem_flags: int = 0,
    flags: int = 0,
    what: str = "",
) -> BatchResult:
    """One MAP_*_BATCH call. Lookups report ``done`` at the end of the map instead of raising."""
    attr = MapBatchAttr(
        in_batch=_address(in_batch),
        out_batch=_address(out_batch),
        keys=_address(keys),
        values=_address(values),
        count=count,
        map_fd=map_fd,
        elem_flags=elem_flags,
        flags=flags,
    )
    result = _bpf_slow(NR_BPF, int(cmd), ctypes.byref(attr), ctypes.sizeof(attr))
    if result < 0:
        err = ctypes.get_errno()
        lookup = cmd in (Cmd.MAP_LOOKUP_BATCH, Cmd.MAP_LOOKUP_AND_DELETE_BATCH)
        if err == _errno.ENOENT and lookup:
            return BatchResult(attr.count, True)
        error = kernel_error(err, cmd, what)
        error.batch_count = attr.count  # type: ignore[attr-defined]
        raise error
    return BatchResult(attr.count, False)


# --------------------------------------------------------------------------- programs


def prog_load(attr: ProgLoadAttr, *, what: str = "") -> int:
    """PROG_LOAD with a caller-built attr (the caller reads ``log_true_size`` back); the
    active token goes in unless the attr names one."""
    if not attr.prog_token_fd and active_token():
        attr.prog_token_fd = active_token()
        attr.prog_flags |= ProgFlags.TOKEN_FD
    return bpf(Cmd.PROG_LOAD, attr, what=what)


def prog_stream_read(prog_fd: int, stream_id: int, size: int = 4096, *, what: str = "") -> bytes:
    """PROG_STREAM_READ_BY_FD (6.17): up to ``size`` bytes of a program's stream (b"" if
    none is waiting); what is read is consumed."""
    from .link_attrs import ProgStreamReadAttr  # (not on the load path)

    buf = ctypes.create_string_buffer(size)
    attr = ProgStreamReadAttr(
        stream_buf=ctypes.addressof(buf), stream_buf_len=size, stream_id=stream_id, prog_fd=prog_fd
    )
    count = bpf(Cmd.PROG_STREAM_READ_BY_FD, attr, what=what, size=ctypes.sizeof(attr))
    return buf.raw[:count]


@dataclass(frozen=True)
class TestRunResult:
    """What BPF_PROG_TEST_RUN returned."""

    retval: int
    duration_ns: int  # average per repetition, as the kernel reports it
    data: bytes
    ctx: bytes | None


def prog_test_run(
    prog_fd: int,
    *,
    data: bytes = b"",
    data_out_size: int | None = None,
    ctx: bytes | None = None,
    ctx_out_size: int | None = None,
    repeat: int = 1,
    flags: int = 0,
    cpu: int = 0,
    batch_size: int = 0,
    what: str = "",
) -> TestRunResult:
    """BPF_PROG_TEST_RUN: run a program on ``data``/``ctx`` in the kernel."""
    from .link_attrs import TestRunAttr  # (not on the load path)

    out_size = len(data) + 256 if data_out_size is None else data_out_size
    data_out = ctypes.create_string_buffer(max(out_size, 1))
    data_in = ctypes.create_string_buffer(data, len(data)) if data else None
    ctx_in = ctypes.create_string_buffer(ctx, len(ctx)) if ctx else None
    ctx_size = (len(ctx) if ctx else 0) if ctx_out_size is None else ctx_out_size
    ctx_out = ctypes.create_string_buffer(ctx_size) if ctx_size else None
    attr = TestRunAttr(
        prog_fd=prog_fd,
        data_size_in=len(data),
        data_size_out=out_size if data else 0,
        data_in=_address(data_in),
        data_out=_address(data_out) if data else 0,
        repeat=repeat if repeat > 1 else 0,  # raw_tp and syscall refuse any repeat; 0 means 1
        ctx_size_in=len(ctx) if ctx else 0,
        ctx_size_out=ctx_size,
        ctx_in=_address(ctx_in),
        ctx_out=_address(ctx_out),
        flags=flags,
        cpu=cpu,
        batch_size=batch_size,
    )
    bpf(Cmd.PROG_TEST_RUN, attr, what=what)
    out = data_out.raw[: min(attr.data_size_out, out_size)] if data else b""
    ctx_bytes = ctx_out.raw[: attr.ctx_size_out] if ctx_out is not None else None
    return TestRunResult(attr.retval, attr.duration, out, ctx_bytes)


def prog_bind_map(prog_fd: int, map_fd: int, *, what: str = "") -> None:
    """PROG_BIND_MAP: keep a map alive as long as the program."""
    bpf(Cmd.PROG_BIND_MAP, ProgBindMapAttr(prog_fd=prog_fd, map_fd=map_fd), what=what)


def prog_assoc_struct_ops(prog_fd: int, map_fd: int, *, what: str = "") -> None:
    """PROG_ASSOC_STRUCT_OPS (6.19): tie a program to a struct_ops map it may call into."""
    from .link_attrs import ProgAssocStructOpsAttr  # (not on the load path)

    attr = ProgAssocStructOpsAttr(map_fd=map_fd, prog_fd=prog_fd)
    bpf(Cmd.PROG_ASSOC_STRUCT_OPS, attr, what=what)


# --------------------------------------------------------------------------- pinning


def obj_pin(fd: int, path: str | os.PathLike[str], *, what: str = "") -> None:
    """OBJ_PIN: pin an object's fd on bpffs."""
    raw = _path_bytes(path)
    attr = ObjAttr(pathname=_address(raw), bpf_fd=fd)
    bpf(Cmd.OBJ_PIN, attr, what=f"{what} pin at {os.fspath(path)!r}")


def obj_get(path: str | os.PathLike[str], *, flags: int = 0, what: str = "") -> int:
    """OBJ_GET: an fd of a pinned object."""
    raw = _path_bytes(path)
    attr = ObjAttr(pathname=_address(raw), file_flags=flags)
    return bpf(Cmd.OBJ_GET, attr, what=what or f"pinned object {os.fspath(path)!r}")


# --------------------------------------------------------------------------- attach/query


def prog_attach(
    target_fd: int,
    prog_fd: int,
    attach_type: int,
    *,
    flags: int = 0,
    replace_fd: int = 0,
    relative_fd: int = 0,
    expected_revision: int = 0,
    what: str = "",
) -> None:
    """PROG_ATTACH: attach a program to a cgroup, sockmap, … without a link."""
    from .link_attrs import ProgAttachAttr  # (not on the load path)

    attr = ProgAttachAttr(
        target_fd=target_fd,
        attach_bpf_fd=prog_fd,
        attach_type=attach_type,
        attach_flags=flags,
        replace_bpf_fd=replace_fd,
        relative_fd=relative_fd,
        expected_revision=expected_revision,
    )
    bpf(Cmd.PROG_ATTACH, attr, what=what)


def prog_detach(
    target_fd: int, prog_fd: int, attach_type: int, *, flags: int = 0, what: str = ""
) -> None:
    """PROG_DETACH: undo a PROG_ATTACH."""
    from .link_attrs import ProgAttachAttr  # (not on the load path)

    attr = ProgAttachAttr(
        target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type, attach_flags=flags
    )
    bpf(Cmd.PROG_DETACH, attr, what=what)


@dataclass(frozen=True)
class ProgQueryResult:
    """The programs PROG_QUERY found at a hook, in the order they run; ``link_ids`` holds
    the link behind each (0 where a program was attached without one) and ``revision``
    the hook's revision (multi-program hooks: tcx, netkit, cgroup since 6.15)."""

    attach_flags: int
    prog_ids: list[int]
    revision: int
    link_ids: list[int] = field(default_factory=list)


def prog_query(
    target_fd: int,
    attach_type: int,
    *,
    query_flags: int = 0,
    link_ids: bool = False,
    what: str = "",
) -> ProgQueryResult:
    """Programs attached at a hook; retries with a bigger array if more are attached.
    ``link_ids`` also asks for the links (6.6+: older kernels refuse the field with E2BIG)."""
    from .link_attrs import ProgQueryAttr  # (not on the load path)

    capacity = 64
    while True:
        ids = (c_u32 * capacity)()
        links = (c_u32 * capacity)()
        attr = ProgQueryAttr(
            target_fd=target_fd,
            attach_type=attach_type,
            query_flags=query_flags,
            prog_ids=ctypes.addressof(ids),
            prog_cnt=capacity,
            link_ids=ctypes.addressof(links) if link_ids else 0,
        )
        try:
            bpf(Cmd.PROG_QUERY, attr, what=what, size=ctypes.sizeof(attr))
        except BpfError as error:
            if error.errno == _errno.ENOSPC and attr.prog_cnt > capacity:
                capacity = attr.prog_cnt
                continue
            raise
        count = attr.prog_cnt
        linked = list(links[:count]) if link_ids else []
        return ProgQueryResult(attr.attach_flags, list(ids[:count]), attr.revision, linked)


def raw_tracepoint_open(name: str | None, prog_fd: int, *, cookie: int = 0, what: str = "") -> int:
    """RAW_TRACEPOINT_OPEN: a raw tracepoint link (``name=None``: BTF-attached programs)."""
    from .link_attrs import RawTracepointAttr  # (not on the load path)

    raw = name.encode() + b"\0" if name is not None else None
    attr = RawTracepointAttr(name=_address(raw), prog_fd=prog_fd, cookie=cookie)
    return bpf(Cmd.RAW_TRACEPOINT_OPEN, attr, what=what or f"raw tracepoint {name!r}")


def link_create(
    prog_fd: int,
    target_fd: int,
    attach_type: int,
    *,
    flags: int = 0,
    opts: ctypes.Structure | None = None,
    what: str = "",
) -> int:
    """LINK_CREATE: a bpf_link; ``opts`` fills the per-kind part of the attr."""
    from .link_attrs import LinkCreateAttr  # (not on the load path)

    attr = LinkCreateAttr(prog_fd=prog_fd, target_fd=target_fd, attach_type=attach_type)
    attr.flags = flags
    if opts is not None:
        raw = bytes(opts)
        ctypes.memmove(ctypes.addressof(attr.tail), raw, len(raw))
    return bpf(Cmd.LINK_CREATE, attr, what=what)


def link_update(
    link_fd: int, new_prog_fd: int, *, old_prog_fd: int = 0, flags: int = 0, what: str = ""
) -> None:
    """LINK_UPDATE: swap the program (or struct_ops map) behind a link."""
    from .link_attrs import LinkUpdateAttr  # (not on the load path)

    attr = LinkUpdateAttr(
        link_fd=link_fd, new_prog_fd=new_prog_fd, flags=flags, old_prog_fd=old_prog_fd
    )
    bpf(Cmd.LINK_UPDATE, attr, what=what)


def link_detach(link_fd: int, *, what: str = "") -> None:
    """LINK_DETACH: detach a link even if others hold it."""
    bpf(Cmd.LINK_DETACH, FdAttr(fd=link_fd), what=what, size=4)


def iter_create(link_fd: int, *, what: str = "") -> int:
    """ITER_CREATE: a readable fd that runs an iterator program."""
    from .link_attrs import IterCreateAttr  # (not on the load path)

    return bpf(Cmd.ITER_CREATE, IterCreateAttr(link_fd=link_fd), what=what, size=8)


def enable_stats(stats_type: int) -> int:
    """Turn on run-time statistics while the returned fd is open."""
    return bpf(Cmd.ENABLE_STATS, FdAttr(fd=stats_type), what="enable_stats", size=4)


@dataclass(frozen=True)
class TaskFdQueryResult:
    """What TASK_FD_QUERY says about a process's fd."""

    prog_id: int
    fd_type: int
    name: str
    probe_offset: int
    probe_addr: int


def task_fd_query(pid: int, fd: int, *, what: str = "") -> TaskFdQueryResult:
    """What BPF program a perf-event or raw-tracepoint fd of ``pid`` carries."""
    from .link_attrs import TaskFdQueryAttr  # (not on the load path)

    buf = ctypes.create_string_buffer(4096)
    attr = TaskFdQueryAttr(pid=pid, fd=fd, buf_len=len(buf), buf=ctypes.addressof(buf))
    bpf(Cmd.TASK_FD_QUERY, attr, what=what or f"task_fd_query pid {pid} fd {fd}")
    return TaskFdQueryResult(
        attr.prog_id,
        attr.fd_type,
        buf.value.decode(errors="replace"),
        attr.probe_offset,
        attr.probe_addr,
    )


# --------------------------------------------------------------------------- BTF


def btf_load(attr: BtfLoadAttr, *, what: str = "") -> int:
    """BTF_LOAD with a caller-built attr; returns the BTF's fd (with the active token
    unless the attr names one)."""
    _carry_token(attr)
    return bpf(Cmd.BTF_LOAD, attr, what=what or "BTF")


def btf_load_probe(attr: BtfLoadAttr) -> int:
    """``btf_load`` for a feature probe, whose refusal is an answer: the fd, or -1 without
    the ``BpfError`` (its message looks up tables on a first refusal, and every kernel
    before 7.1 refuses one of the kind probes)."""
    _carry_token(attr)
    return int(_bpf_slow(NR_BPF, Cmd.BTF_LOAD, ctypes.byref(attr), _used_size(attr)))


def _carry_token(attr: BtfLoadAttr) -> None:
    """The active token on a BTF_LOAD attr that names none."""
    if not attr.btf_token_fd and active_token():
        attr.btf_token_fd = active_token()
        attr.btf_flags |= MapFlags.TOKEN_FD  # BPF_F_TOKEN_FD: one bit for every command


# --------------------------------------------------------------------------- ids and info


def _next_id(cmd: Cmd, start: int) -> int | None:
    attr = GetIdAttr(start_id=start)
    result = _bpf_slow(NR_BPF, int(cmd), ctypes.byref(attr), 8)
    if result < 0:
        err = ctypes.get_errno()
        if err == _errno.ENOENT:
            return None
        raise kernel_error(err, cmd, "")
    return int(attr.next_id)


def prog_get_next_id(start: int) -> int | None:
    """The next program id after ``start`` (None at the end)."""
    return _next_id(Cmd.PROG_GET_NEXT_ID, start)


def map_get_next_id(start: int) -> int | None:
    """The next map id after ``start`` (None at the end)."""
    return _next_id(Cmd.MAP_GET_NEXT_ID, start)


def btf_get_next_id(start: int) -> int | None:
    """The next BTF id after ``start`` (None at the end)."""
    return _next_id(Cmd.BTF_GET_NEXT_ID, start)


def link_get_next_id(start: int) -> int | None:
    """The next link id after ``start`` (None at the end)."""
    return _next_id(Cmd.LINK_GET_NEXT_ID, start)


def _fd_by_id(cmd: Cmd, obj_id: int, flags: int, kind: str) -> int:
    return bpf(cmd, GetIdAttr(start_id=obj_id, open_flags=flags), what=f"{kind} id {obj_id}")


def prog_get_fd_by_id(prog_id: int, flags: int = 0) -> int:
    """An fd of the program with this id."""
    return _fd_by_id(Cmd.PROG_GET_FD_BY_ID, prog_id, flags, "program")


def map_get_fd_by_id(map_id: int, flags: int = 0) -> int:
    """An fd of the map with this id."""
    return _fd_by_id(Cmd.MAP_GET_FD_BY_ID, map_id, flags, "map")


def btf_get_fd_by_id(btf_id: int, flags: int = 0) -> int:
    """An fd of the BTF object with this id."""
    return _fd_by_id(Cmd.BTF_GET_FD_BY_ID, btf_id, flags, "BTF")


def link_get_fd_by_id(link_id: int, flags: int = 0) -> int:
    """An fd of the link with this id."""
    return _fd_by_id(Cmd.LINK_GET_FD_BY_ID, link_id, flags, "link")


def obj_get_info_by_fd(fd: int, info: _Attr, *, what: str = "") -> _Attr:
    """Fill ``info`` (a MapInfo/ProgInfo/BtfInfo/LinkInfo with its pointers pre-set)."""
    attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(Cmd.OBJ_GET_INFO_BY_FD, attr, what=what, size=ctypes.sizeof(attr))
    return info


def iterate_ids(next_id: Any) -> Sequence[int]:
    """All ids from a ``*_get_next_id`` function, in order."""
    ids: list[int] = []
    current = 0
    while (current_id := next_id(current)) is not None:
        ids.append(current_id)
        current = current_id
    return ids
