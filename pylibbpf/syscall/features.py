"""Kernel feature probes: tiny map creations and program loads, cached per process.

A probe answers "does *this* kernel support X" by trying X, never from the version number
(distributions backport features). Probes talk to ``syscall`` directly so that nothing
here depends on the higher layers that use the answers.

Inside ``bpf.using_token`` the probes carry the BPF token, as libbpf's do for an object
opened with one: in a user namespace the token is what makes a probe's map or program
loadable at all. Answers are cached per token (and once without one).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import struct
from collections.abc import Callable

from ..btf.encode import KernelBtfSupport, raw_btf
from ..btf.layout import ENTRY, KNOWN_LAYOUT
from ..btf.types import Kind
from ..errors import BpfError, BpfPermissionError, NotSupportedError
from ..spec.helpers import helper_id
from ..spec.insn import assemble, call, mov64_imm, return_imm
from ..uapi_values import ENOTSUPP, AttachType, MapFlags, MapType, ProgFlags, ProgType, value_name
from . import bpf, kernel_btf
from .attrs import BtfLoadAttr, ProgLoadAttr
from .system import effective_capabilities

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any, ParamSpec, Protocol, TypeVar

    from .link_attrs import UprobeMultiLinkOpts

    _P = ParamSpec("_P")
    _R = TypeVar("_R", covariant=True)

    class _PerToken(Protocol[_P, _R]):
        """A probe cached per BPF token (what ``_cached`` returns)."""

        def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R: ...

        def cache_clear(self) -> None: ...


_PROBE_LOG_SIZE = 4096


def _token_identity() -> tuple[int, int] | None:
    """Which token the probes run with (its inode: fd numbers get reused), if any."""
    fd = bpf.active_token()
    if not fd:
        return None
    stat = os.fstat(fd)
    return stat.st_dev, stat.st_ino


def _cached(probe: Callable[_P, _R]) -> _PerToken[_P, _R]:
    """``functools.cache`` keyed also by the active BPF token."""
    results: dict[Any, _R] = {}

    @functools.wraps(probe)
    def cached(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        key = (_token_identity(), args, tuple(sorted(kwargs.items())))
        if key not in results:
            results[key] = probe(*args, **kwargs)
        return results[key]

    cached.cache_clear = results.clear  # type: ignore[attr-defined]
    return cached  # type: ignore[return-value]


def _close(fd: int) -> bool:
    os.close(fd)  # (a probe's own fd: no ``OwnedFd`` and finalizer for a moment's life)
    return True


def _probe_load(
    prog_type: int,
    insns: bytes,
    *,
    expected_attach_type: int = 0,
    prog_flags: int = 0,
    attach_btf_id: int = 0,
) -> tuple[int | None, int, str]:
    """Load a probe program with a log; (fd or None, errno, log)."""
    log, log_address = bpf.kernel_buffer(_PROBE_LOG_SIZE)
    _code, code_address = bpf.kernel_buffer(insns)  # (the copies live as long as this call)
    _license, license_address = bpf.kernel_buffer(b"GPL\0")
    attr = ProgLoadAttr(
        prog_type=prog_type,
        insn_cnt=len(insns) // 8,
        insns=code_address,
        license=license_address,
        log_level=1,
        log_size=len(log),
        log_buf=log_address,
        expected_attach_type=expected_attach_type,
        prog_flags=prog_flags,
        attach_btf_id=attach_btf_id,
    )
    try:
        return bpf.prog_load(attr, what="feature probe"), 0, _log_text(log)
    except BpfPermissionError as error:
        if not _privileged():
            raise
        return None, error.errno or 0, ""  # refused by policy despite privileges
    except BpfError as error:
        return None, error.errno or 0, _log_text(log)


def _log_text(log: bytearray) -> str:
    """A verifier log buffer's text (up to its first NUL, as ctypes' ``.value``)."""
    return log.partition(b"\0")[0].decode(errors="replace")


def _privileged() -> bool:
    return {"CAP_BPF", "CAP_SYS_ADMIN"} & effective_capabilities() != set()


# --------------------------------------------------------------------------- memlock


@_cached
def has_memcg_accounting() -> bool:
    """True if BPF memory is charged to the memory cgroup, not RLIMIT_MEMLOCK (5.11+).

    bpf_ktime_get_coarse_ns arrived in the same release as memcg accounting; loading a
    program that calls it is the probe libbpf uses too.
    """
    insns = assemble(call("ktime_get_coarse_ns"), return_imm(0))
    fd, _, _ = _probe_load(ProgType.SOCKET_FILTER, insns)
    return fd is not None and _close(fd)


@_cached
def ensure_memlock() -> None:
    """Lift RLIMIT_MEMLOCK, but only on kernels that still charge BPF memory to it.

    Never raises: without privileges the probe fails, and the operation the caller is
    about to make reports the missing capability itself, naming its own object.
    """
    try:
        if has_memcg_accounting():
            return
    except BpfError:
        pass
    import resource  # (kernels before 5.11 only: not worth its load for the others)

    # Unprivileged, this fails; the operation that needs it then reports EPERM itself.
    try:  # noqa: SIM105 (contextlib is kept off the load path)
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY,) * 2)
    except (ValueError, OSError):
        pass


# --------------------------------------------------------------------------- map types

_PAGE = 4096


def _tiny_btf() -> bytes:
    """BTF with ``int`` (id 1) and ``struct v { int a; }`` (id 2) for maps that need BTF."""
    int_t = _record(1, Kind.INT, 4, 1 << 24 | 32)  # signed, 32 bits
    return raw_btf(int_t + _record(5, Kind.STRUCT, 4, 7, 1, 0, vlen=1), b"\0int\0v\0a\0")


def _load_tiny_btf() -> int | None:
    raw = _tiny_btf()
    _data, address = bpf.kernel_buffer(raw)
    fd = bpf.btf_load_probe(BtfLoadAttr(btf=address, btf_size=len(raw)))
    return fd if fd >= 0 else None


_STORAGE_MAPS = {
    MapType.SK_STORAGE,
    MapType.INODE_STORAGE,
    MapType.TASK_STORAGE,
    MapType.CGRP_STORAGE,
}


@_cached
def has_map_type(map_type: MapType | int) -> bool:
    """Whether this kernel creates maps of ``map_type``."""
    key, value, entries, flags, extra, btf_fd = 4, 4, 1, 0, 0, 0
    if map_type in (MapType.RINGBUF, MapType.USER_RINGBUF):
        key, value, entries = 0, 0, _PAGE
    elif map_type == MapType.STACK_TRACE:
        value = 8
    elif map_type in (MapType.QUEUE, MapType.STACK):
        key = 0
    elif map_type == MapType.BLOOM_FILTER:
        key, extra = 0, 1
    elif map_type == MapType.LPM_TRIE:
        key, value, flags = 8, 8, MapFlags.NO_PREALLOC
    elif map_type in (MapType.CGROUP_STORAGE, MapType.PERCPU_CGROUP_STORAGE):
        key, entries = 16, 0
    elif map_type in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
        return _probe_map_in_map(map_type)
    elif map_type == MapType.ARENA:
        key, value, entries, flags = 0, 0, 1, MapFlags.MMAPABLE
    elif map_type in _STORAGE_MAPS:
        entries, flags = 0, MapFlags.NO_PREALLOC
        btf_fd = _load_tiny_btf() or 0
        if not btf_fd:
            return False
    elif map_type == MapType.STRUCT_OPS:
        # Needs a kernel struct's BTF id; an unknown map type fails earlier, with EINVAL,
        # than a bad vmlinux value type id (which gives ENOTSUPP or EINVAL after lookup).
        return _probe_struct_ops_map()
    try:
        fd = bpf.map_create(
            map_type,
            key,
            value,
            entries,
            flags=flags,
            map_extra=extra,
            btf_fd=btf_fd,
            btf_key_type_id=1 if btf_fd else 0,
            btf_value_type_id=2 if btf_fd else 0,
            what="feature probe",
        )
        return _close(fd)
    except BpfPermissionError:
        raise
    except BpfError:
        return False
    finally:
        if btf_fd:
            _close(btf_fd)


def _probe_map_in_map(map_type: MapType | int) -> bool:
    try:
        inner = bpf.map_create(MapType.ARRAY, 4, 4, 1, what="feature probe")
    except BpfError:
        return False
    try:
        fd = bpf.map_create(map_type, 4, 4, 1, inner_map_fd=inner, what="feature probe")
        return _close(fd)
    except BpfError:
        return False
    finally:
        _close(inner)


def _probe_struct_ops_map() -> bool:
    try:
        fd = bpf.map_create(
            MapType.STRUCT_OPS, 4, 4, 1, btf_vmlinux_value_type_id=1, what="feature probe"
        )
        return _close(fd)
    except BpfError as error:
        # A kernel with struct_ops checks the BTF id and says it is not a struct_ops value.
        return error.errno == ENOTSUPP


# --------------------------------------------------------------------------- program types

_EXPECTED_ATTACH: dict[int, int] = {
    ProgType.CGROUP_SOCK_ADDR: AttachType.CGROUP_INET4_CONNECT,
    ProgType.SK_LOOKUP: AttachType.SK_LOOKUP,
    ProgType.NETFILTER: AttachType.NETFILTER,
    ProgType.LSM: AttachType.LSM_MAC,
    ProgType.TRACING: AttachType.TRACE_RAW_TP,  # tp_btf: hosts may refuse only fentry
    ProgType.CGROUP_SOCKOPT: AttachType.CGROUP_GETSOCKOPT,
}
# Types that cannot load without an attach target: a kernel that knows them refuses the
# probe *after* recognising the type, with errors an unknown type never produces.
_NEEDS_TARGET = {ProgType.TRACING, ProgType.EXT, ProgType.LSM, ProgType.STRUCT_OPS}


@_cached
def has_prog_type(prog_type: ProgType | int) -> bool:
    """Whether this kernel loads programs of ``prog_type``."""
    if value_name(ProgType, prog_type) is None:
        return False
    flags = ProgFlags.SLEEPABLE if prog_type == ProgType.SYSCALL else 0
    fd, err, log = _probe_load(
        prog_type,
        assemble(return_imm(0)),
        expected_attach_type=_EXPECTED_ATTACH.get(prog_type, 0),
        prog_flags=flags,
    )
    if fd is not None:
        return _close(fd)
    if prog_type in _NEEDS_TARGET and err != errno.EPERM:
        # Unknown types fail with EINVAL and an empty log before any attach check.
        return bool(log) or err != errno.EINVAL
    return False


@_cached
def has_helper(prog_type: ProgType, helper: int | str) -> bool:
    """True if programs of ``prog_type`` may call ``helper`` on this kernel."""
    if not has_prog_type(prog_type):
        return False
    insns = assemble(
        [mov64_imm(reg, 0) for reg in range(1, 6)], call(helper_id(helper)), return_imm(0)
    )
    fd, _, log = _probe_load(
        prog_type, insns, expected_attach_type=_EXPECTED_ATTACH.get(prog_type, 0)
    )
    if fd is not None:
        return _close(fd)
    markers = ("invalid func ", "unknown func ", "program of this type cannot use helper")
    return not any(marker in log for marker in markers)


@_cached
def has_mmapable_maps() -> bool:
    """Whether array maps can be mmapped (BPF_F_MMAPABLE, 5.5+)."""
    try:
        fd = bpf.map_create(MapType.ARRAY, 4, 4, 1, flags=MapFlags.MMAPABLE, what="feature probe")
        return _close(fd)
    except BpfError:
        return False


@_cached
def has_btf() -> bool:
    """Whether this kernel accepts BTF (BTF_LOAD)."""
    fd = _load_tiny_btf()
    return fd is not None and _close(fd)


def _btf_accepted(data: bytes) -> bool:
    _copy, address = bpf.kernel_buffer(data)
    fd = bpf.btf_load_probe(BtfLoadAttr(btf=address, btf_size=len(data)))
    return fd >= 0 and _close(fd)


def _record(name_off: int, kind: int, size_or_type: int, *extra: int, vlen: int = 0) -> bytes:
    """One raw BTF type record (kind_flag clear): the common header, then ``extra`` words."""
    return struct.pack(f"<{3 + len(extra)}I", name_off, kind << 24 | vlen, size_or_type, *extra)


@_cached
def btf_support() -> KernelBtfSupport:
    """Which BTF kinds the kernel accepts (``btf.encode.KernelBtfSupport``), by tiny loads.

    The probes are written as raw records (``encode`` of the same types gives the same
    bytes; tests/test_btf.py checks it): a first load then builds no ``Type`` and runs no
    encoder for them."""
    int_t = _record(1, Kind.INT, 4, 1 << 24 | 32)  # "int": signed, 32 bits
    proto = _record(0, Kind.FUNC_PROTO, 1, 5, 1, vlen=1)  # int (*)(int a)
    probes = {
        "datasec": raw_btf(
            int_t + _record(5, Kind.VAR, 1, 1) + _record(7, Kind.DATASEC, 4, 2, 0, 4, vlen=1),
            b"\0int\0x\0.data\0",
        ),
        "func": raw_btf(int_t + proto + _record(7, Kind.FUNC, 2), b"\0int\0a\0f\0"),
        "func_global": raw_btf(int_t + proto + _record(7, Kind.FUNC, 2, vlen=1), b"\0int\0a\0f\0"),
        "float": raw_btf(_record(1, Kind.FLOAT, 4), b"\0float\0"),
        "decl_tag": raw_btf(
            int_t + _record(5, Kind.TYPEDEF, 1) + _record(7, Kind.DECL_TAG, 2, 0xFFFFFFFF),
            b"\0int\0t\0tag\0",
        ),
        "type_tag": raw_btf(
            int_t + _record(5, Kind.TYPE_TAG, 1) + _record(0, Kind.PTR, 2), b"\0int\0tag\0"
        ),
        "enum64": raw_btf(
            _record(1, Kind.ENUM64, 8, 3, 0, 1 << 8, vlen=1), b"\0e\0A\0"
        ),  # "e" { A = 1 << 40 } (the value's low word, then its high word)
        # 7.1: the 32-byte header and its kind layout section (libbpf probes the same way).
        "layout": raw_btf(
            int_t,
            b"\0int\0",
            b"".join(
                struct.pack("<" + ENTRY.format, *entry) for entry in KNOWN_LAYOUT[: Kind.INT + 1]
            ),
        ),
    }
    return KernelBtfSupport(**{name: _btf_accepted(raw) for name, raw in probes.items()})


def probe_all() -> dict[str, dict[str, bool]]:
    """Every map and program type probe, for ``pylibbpf feature probe``."""
    from ..uapi import MapType, ProgType  # (the enums: their names)

    return {
        "map_types": {t.name.lower(): has_map_type(t) for t in MapType if t != MapType.UNSPEC},
        "prog_types": {t.name.lower(): has_prog_type(t) for t in ProgType if t != ProgType.UNSPEC},
        "misc": {
            "btf": has_btf(),
            "mmapable_maps": has_mmapable_maps(),
            "memcg_accounting": has_memcg_accounting(),
            "bpf_token": has_bpf_token(),
            "prog_streams": has_prog_streams(),
            "exclusive_maps": has_exclusive_maps(),
        },
    }


@_cached
def has_struct_ops_link() -> bool:
    """struct_ops maps registered through a bpf_link (BPF_F_LINK, Linux 6.4)."""
    try:
        wrapper = kernel_btf.load_vmlinux().find_id(
            "bpf_struct_ops_tcp_congestion_ops", Kind.STRUCT
        )
    except Exception:
        return False
    btf_fd = _load_tiny_btf()
    if wrapper is None or btf_fd is None:
        return False
    try:
        size = kernel_btf.load_vmlinux()[wrapper].size
        fd = bpf.map_create(
            MapType.STRUCT_OPS,
            4,
            size,
            1,
            flags=MapFlags.LINK,
            btf_fd=btf_fd,
            btf_vmlinux_value_type_id=wrapper,
            what="feature probe",
        )
        return _close(fd)
    except BpfError:
        return False
    finally:
        _close(btf_fd)


@_cached
def has_uprobe_multi_link() -> bool:
    """uprobe.multi links with working pid filtering (Linux 6.6+, libbpf's
    FEAT_UPROBE_MULTI_LINK): what decides whether usdt programs are loaded as
    uprobe.multi programs and attached through one link."""
    fd, _, _ = _probe_load(
        ProgType.KPROBE,
        assemble(return_imm(0)),
        expected_attach_type=AttachType.TRACE_UPROBE_MULTI,
    )
    if fd is None:
        return False
    from .link_attrs import UprobeMultiLinkOpts  # (not on the load path)

    path = ctypes.create_string_buffer(b"/")
    offset = ctypes.c_uint64(0)
    opts = UprobeMultiLinkOpts(path=ctypes.addressof(path), offsets=ctypes.addressof(offset), cnt=1)
    try:
        # A uprobe in "/" (a directory) fails with EBADF where the link kind exists...
        if _link_errno(fd, opts) != errno.EBADF:
            return False
        # ...and an invalid pid with EINVAL once pid filtering was fixed (6.6.y/6.7).
        opts.pid = 0xFFFFFFFF
        return _link_errno(fd, opts) == errno.EINVAL
    finally:
        _close(fd)


def _link_errno(prog_fd: int, opts: UprobeMultiLinkOpts) -> int:
    """The errno of a LINK_CREATE that is meant to fail (0 if it succeeded)."""
    try:
        _close(bpf.link_create(prog_fd, -1, AttachType.TRACE_UPROBE_MULTI, opts=opts))
    except BpfError as error:
        return error.errno or 0
    return 0


@_cached
def kernel_knows(enum: str, value: str) -> bool:
    """Whether the running kernel's BTF has ``value`` in ``enum`` (e.g. an attach type):
    a side-effect-free probe for features that only attaching would otherwise reveal."""
    try:
        for t in kernel_btf.load_vmlinux().find_all(enum):
            if any(v.name == value for v in t.values):
                return True
    except BpfError:
        return False
    return False


def has_tcx() -> bool:
    """tcx links (Linux 6.6)."""
    return kernel_knows("bpf_attach_type", "BPF_TCX_INGRESS")


@_cached
def has_bpf_token() -> bool:
    """BPF tokens (TOKEN_CREATE, Linux 6.9): an unknown command is EINVAL, a known one
    refuses the bad fd first."""
    try:
        _close(bpf.token_create(-1 & 0xFFFFFFFF, what="feature probe"))
    except BpfError as error:
        return error.errno == errno.EBADF
    return True


@_cached
def has_prog_streams() -> bool:
    """BPF streams (PROG_STREAM_READ_BY_FD, Linux 6.17), probed the same way."""
    try:
        bpf.prog_stream_read(-1 & 0xFFFFFFFF, 1, 1, what="feature probe")
    except BpfError as error:
        return error.errno == errno.EBADF
    return True


@_cached
def has_exclusive_maps() -> bool:
    """Maps only the program with a given SHA-256 may use (``excl_prog_hash``, 6.18): an
    older kernel refuses the longer attr (E2BIG)."""
    try:
        fd = bpf.map_create(MapType.ARRAY, 4, 4, 1, excl_prog_hash=bytes(32), what="feature probe")
    except BpfError:
        return False
    return _close(fd)


def require(available: bool, feature: str, version: str) -> None:
    """``NotSupportedError`` naming the kernel release that added ``feature`` unless
    ``available``."""
    if not available:
        raise NotSupportedError(
            f"{feature} needs Linux {version} or later; this kernel does not have it",
            errno.EOPNOTSUPP,
        )


def has_netkit() -> bool:
    """netkit links (Linux 6.7; the device itself needs CONFIG_NETKIT)."""
    return kernel_knows("bpf_attach_type", "BPF_NETKIT_PRIMARY")


def has_kprobe_session() -> bool:
    """kprobe.session links (Linux 6.10)."""
    return kernel_knows("bpf_attach_type", "BPF_TRACE_KPROBE_SESSION")


def has_uprobe_session() -> bool:
    """uprobe.session links (Linux 6.13)."""
    return kernel_knows("bpf_attach_type", "BPF_TRACE_UPROBE_SESSION")


def has_sockmap_link() -> bool:
    """sk_msg/sk_skb programs on a sockmap through a bpf_link (Linux 6.10)."""
    return kernel_knows("bpf_link_type", "BPF_LINK_TYPE_SOCKMAP")


def has_prog_assoc_struct_ops() -> bool:
    """PROG_ASSOC_STRUCT_OPS, a program tied to a struct_ops map (Linux 6.19)."""
    return kernel_knows("bpf_cmd", "BPF_PROG_ASSOC_STRUCT_OPS")


@functools.cache
def has_cgroup_mprog() -> bool:
    """Ordered cgroup links (relative_fd/expected_revision in LINK_CREATE, Linux 6.15):
    the kernel's ``union bpf_attr`` has a ``link_create.cgroup`` member. Read from BTF,
    since attaching with the flags on an older kernel would attach something."""
    try:
        btf = kernel_btf.load_vmlinux()
        attr = btf.find_id("bpf_attr", Kind.UNION)
        if attr is None:
            return False
        return _has_member_path(btf, attr, ("link_create", "cgroup"))
    except BpfError:
        return False


def _has_member_path(btf: Any, type_id: int, path: tuple[str, ...]) -> bool:
    """Whether ``a.b.c`` reaches a member, looking through anonymous structs and unions."""
    if not path:
        return True
    for member in btf.resolve(type_id).members:
        if member.name == path[0] and _has_member_path(btf, member.type, path[1:]):
            return True
        anonymous = not member.name and btf.resolve(member.type).kind in (Kind.STRUCT, Kind.UNION)
        if anonymous and _has_member_path(btf, member.type, path):
            return True
    return False


_PROBES = (
    has_exclusive_maps,
    has_bpf_token,
    has_prog_streams,
    has_memcg_accounting,
    ensure_memlock,
    has_map_type,
    has_prog_type,
    has_helper,
    has_mmapable_maps,
    has_btf,
    btf_support,
    has_struct_ops_link,
    has_uprobe_multi_link,
    kernel_knows,
    has_cgroup_mprog,
)


def forget_probes() -> None:
    """Drop every cached answer: the kernel behind ``bpf(2)`` was swapped (the test seam,
    ``seam.override_syscall``, calls this when it installs or removes a handler)."""
    for probe in _PROBES:
        probe.cache_clear()
