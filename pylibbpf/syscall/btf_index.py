"""The on-disk index of the kernel's BTF: where each type record starts, so that a fresh
process skips the one expensive step of parsing (the walk over the type section) and is
ready for lookups in a few milliseconds.

An index is used only if it can be trusted as a whole:

* it lives in a private cache directory — ours, mode 0700 (tightened if wider); a
  directory owned by another user, or a symlink, is refused and nothing is cached — as
  0600 files written atomically (a temporary file renamed over the old one);
* it names the BTF it indexes by length and a CRC32 over all of it. The source is the
  kernel's own BTF from sysfs, so this tells one kernel build from another; it is not
  what stops a forger;
* its header and every offset are covered by an HMAC-SHA256 under a per-user key kept in
  the same directory (0600): an index edited by anyone without the key — even one right
  at every place a sampling check looks — is rejected;
* and it must still describe the records it locates (first record at 0, spot checks).

A rejected or missing index is rebuilt by walking the BTF, and written again.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import mmap
import os
import stat
import struct
import threading
import zlib
from array import array
from pathlib import Path

from ..btf.parse import Btf
from ..errors import ObjectError

MAGIC = b"PLBTFIX2"
_HEADER = struct.Struct("<8sQII")  # magic, source length, source CRC32, record count
_MAC_SIZE = hashlib.sha256().digest_size
_KEY_NAME = "index-key"
_KEY_SIZE = 32
_BTF_HEADER = struct.Struct("<HBBIIIII")
_CHECKS = 512


def cache_dir() -> Path:
    """Where the on-disk BTF index lives (``$XDG_CACHE_HOME/pylibbpf``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pylibbpf"


def private_dir(*, create: bool) -> Path | None:
    """The cache directory if it is ours and private (made 0700 if it was wider), created
    when missing and ``create``; None when it must not be used."""
    path = cache_dir()
    if create:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir(mode=0o700, exist_ok=True)
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        return None  # a symlink, or someone else's: they could swap our files
    if info.st_mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError:
            return None
    return path


def _private_file(path: Path) -> bytes | None:
    """A file's bytes, if it is a regular file of ours that others cannot write."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
            return None
        return f.read()


def _write_private(path: Path, data: bytes, *, replace: bool = True) -> bool:
    """Write ``data`` to ``path`` atomically as a 0600 file; False if it could not be (or,
    without ``replace``, if the file already exists)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if replace:
            os.replace(tmp, path)  # atomic: concurrent writers each install a whole file
        else:
            os.link(tmp, path)  # fails if another process installed one first
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _key(directory: Path) -> bytes | None:
    """This user's index key (made on first use)."""
    path = directory / _KEY_NAME
    key = _private_file(path)
    if key is None and not path.exists():
        _write_private(path, os.urandom(_KEY_SIZE), replace=False)
        key = _private_file(path)  # ours, or the one a concurrent process installed
    return key if key is not None and len(key) == _KEY_SIZE else None


def _index_path(directory: Path, name: str, length: int, crc: int) -> Path:
    safe = "".join(c if c.isalnum() else "_" for c in name)
    return directory / f"btf-{safe}-{length}-{crc:08x}.idx"


def _signed(key: bytes, header: bytes, payload: bytes) -> bytes:
    return hmac.new(key, header + payload, hashlib.sha256).digest()


def _read(path: Path, key: bytes, length: int, crc: int) -> array[int] | None:
    raw = _private_file(path)
    if raw is None or len(raw) < _HEADER.size + _MAC_SIZE:
        return None
    header, payload, mac = (
        raw[: _HEADER.size],
        raw[_HEADER.size : -_MAC_SIZE],
        raw[-_MAC_SIZE:],
    )
    magic, source_length, source_crc, count = _HEADER.unpack(header)
    if (magic, source_length, source_crc) != (MAGIC, length, crc) or len(payload) != 4 * count:
        return None
    if not hmac.compare_digest(mac, _signed(key, header, payload)):
        return None
    offsets: array[int] = array("I")
    offsets.frombytes(payload)
    return offsets


def _write(path: Path, key: bytes, length: int, crc: int, offsets: array[int]) -> None:
    header = _HEADER.pack(MAGIC, length, crc, len(offsets))
    payload = offsets.tobytes()
    # A read-only home or a full disk only costs the next process a walk.
    _write_private(path, header + payload + _signed(key, header, payload))


def _type_words(data: bytes | mmap.mmap) -> memoryview:
    """The type section as 4-byte words."""
    _magic, _version, _flags, hdr_len, type_off, type_len, _str_off, _str_len = (
        _BTF_HEADER.unpack_from(data)
    )
    start = hdr_len + type_off
    return memoryview(data)[start : start + type_len - type_len % 4].cast("I")


def _index_consistent(btf: Btf) -> bool:
    """Spot-check an index against the records it claims to locate (a last line of
    defence: the MAC already vouches for the whole index)."""
    offsets = btf.raw_offsets
    if not offsets:
        return True
    try:
        words = _type_words(btf.raw_data)
    except (struct.error, ValueError, TypeError):
        return False
    count = len(offsets)
    stride = max(1, count // _CHECKS)
    try:
        for index in (*range(0, count - 1, stride), count - 2):
            if index < 0:
                continue
            gap = offsets[index + 1] - offsets[index]
            if btf.record_words(words[offsets[index] + 1]) != gap:
                return False
        last = btf.record_words(words[offsets[-1] + 1])
        return offsets[0] == 0 and offsets[-1] + last == len(words)
    except (IndexError, ObjectError):
        return False


def parse_indexed(data: bytes | mmap.mmap, name: str, base: Btf | None = None) -> Btf:
    """Parse BTF with the record index from the on-disk cache when it is trustworthy;
    otherwise walk it, and cache the index for the next process."""
    directory = private_dir(create=True)
    key = _key(directory) if directory is not None else None
    if directory is None or key is None:
        return Btf(data, name=name, base=base)
    crc = zlib.crc32(data)
    path = _index_path(directory, name, len(data), crc)
    offsets = _read(path, key, len(data), crc)
    if offsets is not None:
        try:
            btf = Btf(data, name=name, base=base, offsets=offsets)
            if _index_consistent(btf):
                return btf
        except ObjectError:
            pass
    btf = Btf(data, name=name, base=base)
    _write(path, key, len(data), crc, btf.raw_offsets)
    return btf
