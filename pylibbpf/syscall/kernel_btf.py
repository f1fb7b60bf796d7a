"""The kernel's BTF: vmlinux and module BTF from sysfs (parsed once per process, with an
on-disk record index), BTF the kernel holds by id, and uploading BTF (BTF_LOAD).

The kernel's BTF is parsed once per process. The one expensive step of parsing — walking
the type section to find where records start — is also cached on disk, so a fresh process
is ready for lookups in a few milliseconds. The cache key is the BTF's size and a CRC32 of
its header and of both ends of its type and string sections (hashing all of it would cost
more than the cache saves); on top of that, a cached index is used only if it is
consistent with the BTF it is applied to: the record lengths at a spread of cached offsets
must match the gaps to the next offset, and the last record must end the section. Record
boundaries depend only on each record's kind and length, so an index that passes is the
index. Cache files are written atomically (rename over) and carry their own checksum;
anything stale or corrupt is ignored and rewritten.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import os
import struct
import threading
import zlib
from array import array
from pathlib import Path

from ..btf.parse import Btf, read_btf_file, record_words
from ..errors import BpfError, BpfPermissionError, ObjectError
from .attrs import BtfInfo, BtfLoadAttr
from .bpf import btf_get_fd_by_id, btf_load, obj_get_info_by_fd
from .fd import OwnedFd

SYSFS_BTF = Path("/sys/kernel/btf")
_INDEX_MAGIC = b"PLBTFIX1"
_lock = threading.Lock()
_kernel: dict[str, Btf] = {}


def cache_dir() -> Path:
    """Where the on-disk BTF index lives (``$XDG_CACHE_HOME/pylibbpf``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pylibbpf"


_SAMPLE = 1 << 18


def _fingerprint(data: bytes | mmap.mmap) -> int:
    header = struct.unpack_from("<HBBIIIII", data)
    hdr_len, type_off, type_len, str_off, str_len = header[3:]
    crc = zlib.crc32(data[:hdr_len])
    for start, length in ((hdr_len + type_off, type_len), (hdr_len + str_off, str_len)):
        end = start + length
        crc = zlib.crc32(data[start : min(end, start + _SAMPLE)], crc)
        crc = zlib.crc32(data[max(start, end - _SAMPLE) : end], crc)
    return crc


def _index_path(data: bytes | mmap.mmap, name: str) -> Path:
    key = f"{len(data)}-{_fingerprint(data):08x}"
    safe = "".join(c if c.isalnum() else "_" for c in name)
    return cache_dir() / f"btf-{safe}-{key}.idx"


def _read_index(path: Path, expected_words: int) -> array[int] | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    head = len(_INDEX_MAGIC) + 8
    if len(raw) < head or not raw.startswith(_INDEX_MAGIC):
        return None
    count, checksum = struct.unpack_from("<II", raw, len(_INDEX_MAGIC))
    payload = raw[head:]
    if len(payload) != 4 * count or zlib.crc32(payload) != checksum:
        return None
    offsets: array[int] = array("I")
    offsets.frombytes(payload)
    if count and (offsets[0] != 0 or offsets[-1] >= expected_words):
        return None
    return offsets


def _write_index(path: Path, offsets: array[int]) -> None:
    payload = offsets.tobytes()
    header = _INDEX_MAGIC + struct.pack("<II", len(offsets), zlib.crc32(payload))
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(header + payload)
        os.replace(tmp, path)  # atomic: concurrent writers each install a complete file
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # a read-only home or full disk only costs the next process a walk


def parse_indexed(data: bytes | mmap.mmap, name: str, base: Btf | None = None) -> Btf:
    """Parse BTF, taking the record index from the on-disk cache when it is valid."""
    path = _index_path(data, name)
    offsets = None
    try:
        header = struct.unpack_from("<HBBIIIII", data)
        type_words = header[5] // 4
        offsets = _read_index(path, type_words)
    except struct.error:
        pass
    if offsets is not None:
        try:
            btf = Btf(data, name=name, base=base, offsets=offsets)
            if _index_consistent(btf):
                return btf
        except ObjectError:
            pass
    btf = Btf(data, name=name, base=base)
    _write_index(path, btf.raw_offsets)
    return btf


_CHECKS = 512


def _index_consistent(btf: Btf) -> bool:
    """Spot-check a cached index against the records it claims to locate."""
    offsets = btf.raw_offsets
    if not offsets:
        return True
    words = btf._words
    count = len(offsets)
    stride = max(1, count // _CHECKS)
    try:
        for index in (*range(0, count - 1, stride), count - 2):
            if index < 0:
                continue
            gap = offsets[index + 1] - offsets[index]
            if record_words(words[offsets[index] + 1]) != gap:
                return False
        return offsets[-1] + (record_words(words[offsets[-1] + 1]) or 0) == len(words)
    except IndexError:
        return False


def load_vmlinux(path: str | os.PathLike[str] | None = None) -> Btf:
    """The running kernel's BTF, parsed once per process."""
    key = os.fspath(path) if path is not None else str(SYSFS_BTF / "vmlinux")
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
        btf = parse_indexed(data, "vmlinux")
        _kernel[key] = btf
        return btf


def module_names() -> list[str]:
    """Kernel modules that carry BTF (``/sys/kernel/btf/*`` except vmlinux)."""
    try:
        return sorted(p.name for p in SYSFS_BTF.iterdir() if p.name != "vmlinux")
    except FileNotFoundError:
        return []


def load_module(name: str) -> Btf:
    """A module's BTF, split on top of vmlinux (type ids continue after vmlinux's)."""
    base = load_vmlinux()
    key = str(SYSFS_BTF / name)
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

_LOG_SIZE = 1 << 20


def load_btf(raw: bytes, *, name: str = "BTF") -> OwnedFd:
    """Load raw BTF; on rejection retry with a log and raise ``ObjectError`` quoting it."""
    data = ctypes.create_string_buffer(raw, len(raw))
    attr = BtfLoadAttr(btf=ctypes.addressof(data), btf_size=len(raw))
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
    what = f"BTF id {btf_id}"
    with OwnedFd(btf_get_fd_by_id(btf_id), what) as fd:
        name, kernel_btf, size = btf_object_info(fd.fd, what)
        data = ctypes.create_string_buffer(size)
        info = BtfInfo(btf=ctypes.addressof(data), btf_size=len(data))
        obj_get_info_by_fd(fd.fd, info, what=what)
    module = kernel_btf and name != "vmlinux"
    raw = data.raw[: info.btf_size]
    return Btf(raw, name=name or what, base=load_vmlinux() if module else None)


def btf_object_info(fd: int, what: str) -> tuple[str, bool, int]:
    """A kernel BTF object's name ("vmlinux", a module's), whether it is the kernel's
    own (vmlinux or a module) rather than a loaded program's, and its size in bytes."""
    name = ctypes.create_string_buffer(64)
    info = BtfInfo(name=ctypes.addressof(name), name_len=len(name))
    obj_get_info_by_fd(fd, info, what=what)
    return name.value.decode(errors="replace"), bool(info.kernel_btf), info.btf_size
