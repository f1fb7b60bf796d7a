"""The on-disk index of the kernel's BTF: where each type record starts, so that a fresh
process skips the one expensive step of parsing (the walk over the type section) and is
ready for lookups in a few milliseconds; and the names sorted (the strings, and the named
types by name), so that looking a type up by name — what CO-RE does for every type an
object relocates — is a binary search instead of a scan of megabytes of strings.

An index is used only if it can be trusted as a whole:

* it lives in a private cache directory — ours, mode 0700 (tightened if wider); a
  directory owned by another user, or a symlink, is refused and nothing is cached — as
  0600 files written atomically (a temporary file renamed over the old one);
* it names the BTF it indexes by length and a CRC32 over all of it. The source is the
  kernel's own BTF from sysfs, so this tells one kernel build from another; it is not
  what stops a forger. The running kernel's BTF cannot change until the next boot, so a
  signed note (boot id, length, CRC32) spares the next processes of this boot computing
  the CRC32 of megabytes again;
* its header and every offset are covered by a keyed BLAKE2b MAC (BLAKE2's own keyed
  mode, a MAC by design) under a per-user key kept in the same directory (0600): an index
  edited by anyone without the key — even one right at every place a sampling check looks
  — is rejected. (BLAKE2b rather than HMAC-SHA256: CPython has it built in, while hashlib
  and hmac load OpenSSL, several milliseconds of a fresh process's first CO-RE load);
* the MAC over the megabyte of an index is checked once per boot and index file: the
  signed boot note also names the index file a process verified whole (device, inode,
  size, mtime and ctime), once that file had not changed for a while. A later process
  whose index still has that identity skips the MAC (a fifth of a CO-RE object's first
  load). Nobody without root sets a ctime: any write to the file, or a file put in its
  place, stamps the current time, which the note does not name, and the MAC is checked
  again;
* and it must still describe the records it locates (first record at 0, spot checks).

A rejected or missing index is rebuilt by walking the BTF, and written again.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
import time
import zlib
from _thread import get_ident  # (threading.get_ident, without threading.py)
from array import array
from bisect import bisect_left
from itertools import accumulate

try:  # CPython's built-in blake2b and constant-time compare, without OpenSSL's load
    from _blake2 import blake2b
    from _operator import _compare_digest as compare_digest
except ImportError:  # another Python
    from hashlib import blake2b
    from hmac import compare_digest  # type: ignore[no-redef]

from ..btf.parse import Btf
from ..btf.tables import STORE
from ..errors import ObjectError

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from io import RawIOBase
    from pathlib import Path

MAGIC = b"PLBTFIX4"
_HEADER = struct.Struct("<8sQII")  # magic, source length, source CRC32, record count
# After the record offsets: how many strings and named types the name index sorts.
_NAMES_HEADER = struct.Struct("<II")
NOTE_MAGIC = b"PLBTFBT3"
# magic, boot id, source length, source CRC32, then the identity of the index file whose
# MAC was checked this boot (all zero: none yet): device, inode, size, mtime, ctime (ns).
_NOTE = struct.Struct("<8s36sQIQQQqq")
_NO_FILE = (0, 0, 0, 0, 0)
# A file vouched for must have been left alone this long first: any later write stamps a
# ctime past the one noted, whatever the file system's timestamp granularity.
_SETTLED_NS = 2_000_000_000
BOOT_ID = "/proc/sys/kernel/random/boot_id"
_MAC_SIZE = 32  # keyed BLAKE2b, 256-bit digest
_KEY_NAME = "index-key"
_KEY_SIZE = 32
_BTF_HEADER = struct.Struct("<HBBIIIII")
TABLE_MAGIC = b"PLBTFTB1"
_TABLE_HEADER = struct.Struct("<8s32sQI")  # magic, table name, source length, CRC32
_CHECKS = 512


def cache_dir() -> Path:
    """Where the on-disk BTF index lives (``$XDG_CACHE_HOME/pylibbpf``)."""
    from pathlib import Path

    return Path(_cache_path())


def _cache_path() -> str:
    # (paths here are strings: pathlib would cost this module's import twice over)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pylibbpf")


def private_dir(*, create: bool) -> str | None:
    """The cache directory if it is ours and private (made 0700 if it was wider), created
    when missing and ``create``; None when it must not be used."""
    path = _cache_path()
    if create:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.mkdir(path, mode=0o700)
        except OSError:
            pass
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


def _private_file(path: str) -> bytes | None:
    """A file's bytes, if it is a regular file of ours that others cannot write."""
    found = _private_file_identity(path)
    return None if found is None else found[0]


def _private_file_identity(path: str) -> tuple[bytes, tuple[int, ...]] | None:
    """As :func:`_private_file`, with the file's identity (device, inode, size, mtime,
    ctime) as it stood once the bytes were read: a write changes the ctime before its
    data, so bytes read before an identity taken after are the bytes of that identity."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not _private(info):
            return None
        data = f.read()
        info = os.fstat(f.fileno())
        return data, (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _private(info: os.stat_result) -> bool:
    """Whether a file is a regular file of ours that others cannot write."""
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _write_private(path: str, data: bytes, *, replace: bool = True) -> bool:
    """Write ``data`` to ``path`` atomically as a 0600 file; False if it could not be (or,
    without ``replace``, if the file already exists)."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{get_ident()}.tmp")
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
        try:  # noqa: SIM105 (contextlib is kept off the load path)
            os.unlink(tmp)
        except OSError:
            pass


def _key(directory: str) -> bytes | None:
    """This user's index key (made on first use)."""
    path = os.path.join(directory, _KEY_NAME)
    key = _private_file(path)
    if key is None and not os.path.exists(path):
        _write_private(path, os.urandom(_KEY_SIZE), replace=False)
        key = _private_file(path)  # ours, or the one a concurrent process installed
    return key if key is not None and len(key) == _KEY_SIZE else None


def _index_path(directory: str, name: str, length: int, crc: int) -> str:
    safe = "".join(c if c.isalnum() else "_" for c in name)
    # The format in the name: a pylibbpf of another format (another install, another
    # virtualenv of the same user) keeps its own file instead of rejecting and rewriting
    # this one at every process start, each in turn.
    return os.path.join(
        directory, f"btf-{safe}-{length}-{crc:08x}-{MAGIC[-3:].decode().lower()}.idx"
    )


def _signed(
    key: bytes, header: bytes | memoryview, *payload: bytes | memoryview | array[int]
) -> bytes:
    """The MAC of ``header`` and the payload (given in parts, as they were written)."""
    mac = blake2b(header, digest_size=_MAC_SIZE, key=key, person=b"pylibbpf-btfidx")
    for part in payload:
        mac.update(part)
    return mac.digest()


def _signed_by(
    mac: bytes, key: bytes, header: bytes | memoryview, *payload: bytes | memoryview | array[int]
) -> bool:
    """Whether ``mac`` signs ``header`` and ``payload`` with ``key`` (constant time)."""
    return compare_digest(mac, _signed(key, header, *payload))


class NameIndex:
    """A BTF's names, sorted: ``strings`` (offsets of every string, by content) and
    ``named`` (indexes of the records of named types, by name, then id)."""

    __slots__ = ("named", "strings")

    def __init__(self, strings: array[int], named: array[int]) -> None:
        self.strings = strings
        self.named = named

    @classmethod
    def build(cls, btf: Btf) -> NameIndex:
        """Sort a BTF's names (once per kernel build: ~0.05 s for vmlinux)."""
        data = bytes(btf._sdata[btf._sstart : btf._send])
        parts = data.split(b"\0")
        # Every step a C-level pass (map, accumulate, sorted with a C key): no Python
        # code per string or per type.
        starts = array("I", accumulate(map((1).__add__, map(len, parts)), initial=0))
        del starts[-1]
        order = sorted(range(len(parts)), key=parts.__getitem__)
        strings = array("I", map(starts.__getitem__, order))
        at_start = dict(zip(starts, parts, strict=True))
        del at_start[0]  # name offset 0: no name
        names = list(map(at_start.get, map(btf._words.__getitem__, btf._offsets)))
        named_ids = [i for i, n in enumerate(names) if n is not None]
        by_name: Callable[[int], bytes] = names.__getitem__  # type: ignore[assignment]  # named: never None
        named = array("I", sorted(named_ids, key=by_name))  # stable: by name, then index
        return cls(strings, named)

    def tobytes(self) -> bytes:
        return (
            _NAMES_HEADER.pack(len(self.strings), len(self.named))
            + self.strings.tobytes()
            + self.named.tobytes()
        )


class IndexedBtf(Btf):
    """vmlinux BTF with its name index: lookups by name and by prefix are binary
    searches, with the same results as the scans they replace."""

    def __init__(
        self, data: bytes | mmap.mmap, *, name: str, offsets: array[int], names: NameIndex
    ) -> None:
        super().__init__(data, name=name, offsets=offsets)
        self._names = names

    def _string_bytes(self, offset: int) -> bytes:
        start = self._sstart + offset
        end = self._sdata.find(b"\0", start, self._send)
        return bytes(self._sdata[start : end if end >= 0 else self._send])

    def _type_name_bytes(self, index: int) -> bytes:
        if index >= len(self._offsets):
            raise ObjectError(f"{self.name}: the name index names record {index}, past the end")
        return self._string_bytes(self._words[self._offsets[index]])

    def _own_ids_named(self, name: str) -> tuple[int, ...]:
        cached = self._by_name.get(name)
        if cached is not None:
            return cached
        needle = name.encode("utf-8", "surrogateescape")
        named = self._names.named
        position = bisect_left(named, needle, key=self._type_name_bytes)
        ids = []
        while position < len(named) and self._type_name_bytes(named[position]) == needle:
            ids.append(self.first_id + named[position])
            position += 1
        result = tuple(ids)
        self._by_name[name] = result
        return result

    def names_with_prefix(self, prefix: str) -> list[str]:
        needle = prefix.encode("utf-8", "surrogateescape")
        strings = self._names.strings
        position = bisect_left(strings, needle, key=self._string_bytes)
        hits = []
        while position < len(strings):
            text = self._string_bytes(strings[position])
            if not text.startswith(needle):
                break
            if strings[position]:  # the scan it replaces finds strings after a NUL
                hits.append(strings[position])
            position += 1
        return [
            self._string_bytes(offset).decode("utf-8", "surrogateescape") for offset in sorted(hits)
        ]


class SignedTables:
    """``btf.tables.TableStore`` for one BTF content (length, CRC32): each table a 0600
    file in the private cache directory, signed like the index with the user's key and
    naming the table and the content it was derived from, so no file stands in for
    another (``btf-NAME-LENGTH-CRC-TABLE.tbl``)."""

    def __init__(self, directory: str, key: bytes, name: str, length: int, crc: int) -> None:
        self._key, self._length, self._crc = key, length, crc
        self._prefix = _index_path(directory, name, length, crc)[: -len(".idx")]

    def _header(self, name: str) -> bytes:
        return _TABLE_HEADER.pack(TABLE_MAGIC, name.encode(), self._length, self._crc)

    def _path(self, name: str) -> str:
        return f"{self._prefix}-{''.join(c if c.isalnum() else '_' for c in name)}.tbl"

    def get(self, name: str) -> memoryview | None:
        raw = _private_file(self._path(name))
        header = self._header(name)
        if raw is None or len(raw) < len(header) + _MAC_SIZE or raw[: len(header)] != header:
            return None
        # The payload as a view of the bytes read (a table may be a megabyte: no copy).
        payload, mac = memoryview(raw)[len(header) : -_MAC_SIZE], raw[-_MAC_SIZE:]
        return payload if _signed_by(mac, self._key, header, payload) else None

    def put(self, name: str, table: bytes) -> None:
        header = self._header(name)
        _write_private(self._path(name), header + table + _signed(self._key, header, table))


def _read(
    path: str, key: bytes, length: int, crc: int, vouched: tuple[int, ...] = _NO_FILE
) -> tuple[array[int], NameIndex, tuple[int, ...] | None] | None:
    """The index at ``path`` if it is signed, or if it is the file ``vouched`` names; with
    the identity a boot note may vouch for (None: the file is too fresh to be). Read
    straight into its arrays (a megabyte read whole, then copied out, cost twice that)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb", buffering=0) as f:
        info = os.fstat(fd)
        if not _private(info) or info.st_size < _HEADER.size + _NAMES_HEADER.size + _MAC_SIZE:
            return None
        header = f.read(_HEADER.size)
        if len(header) != _HEADER.size:
            return None
        magic, source_length, source_crc, count = _HEADER.unpack(header)
        names_at = _HEADER.size + 4 * count
        if (magic, source_length, source_crc) != (MAGIC, length, crc) or (
            info.st_size < names_at + _NAMES_HEADER.size + _MAC_SIZE
        ):
            return None
        offsets = _read_words(f, count)
        names_header = f.read(_NAMES_HEADER.size)
        if offsets is None or len(names_header) != _NAMES_HEADER.size:
            return None
        string_count, named_count = _NAMES_HEADER.unpack(names_header)
        if info.st_size != names_at + _NAMES_HEADER.size + 4 * (string_count + named_count) + (
            _MAC_SIZE
        ):
            return None
        strings, named = _read_words(f, string_count), _read_words(f, named_count)
        mac = f.read(_MAC_SIZE)
        if strings is None or named is None or len(mac) != _MAC_SIZE or f.read(1):
            return None
        # The identity as it stood once the bytes were read: a write changes the ctime
        # before its data, so these bytes are the bytes of that identity.
        info = os.fstat(fd)
    identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    payload = (offsets, names_header, strings, named)  # as written: offsets, then names
    if identity != vouched and not _signed_by(mac, key, header, *payload):
        return None
    settled = identity[4] <= time.time_ns() - _SETTLED_NS
    return offsets, NameIndex(strings, named), identity if settled else None


def _read_words(file: RawIOBase, count: int) -> array[int] | None:
    """``count`` native 32-bit words read from ``file`` into a new array (None if short)."""
    words = array("I", [0]) * count
    view = memoryview(words).cast("B")
    done = 0
    while done < len(view):
        got = file.readinto(view[done:])
        if not got:
            return None
        done += got
    return words


def _write(
    path: str, key: bytes, length: int, crc: int, offsets: array[int], names: NameIndex
) -> None:
    header = _HEADER.pack(MAGIC, length, crc, len(offsets))
    payload = offsets.tobytes() + names.tobytes()
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


def _boot_id() -> bytes | None:
    try:
        with open(BOOT_ID, "rb") as file:
            boot = file.read().strip()
    except OSError:
        return None
    return boot if len(boot) == 36 else None


def _note_path(directory: str, name: str) -> str:
    safe = "".join(c if c.isalnum() else "_" for c in name)
    # The format in the name, as for the index files.
    return os.path.join(directory, f"btf-{safe}-boot-{NOTE_MAGIC[-3:].decode().lower()}.note")


def _boot_note(
    directory: str, key: bytes, name: str, length: int
) -> tuple[int, tuple[int, ...]] | None:
    """The CRC32 of this boot's ``name`` BTF of ``length`` bytes, and the identity of the
    index file whose MAC was checked this boot, from our signed note."""
    boot = _boot_id()
    raw = _private_file(_note_path(directory, name))
    if boot is None or raw is None or len(raw) != _NOTE.size + _MAC_SIZE:
        return None
    body, mac = raw[: _NOTE.size], raw[_NOTE.size :]
    if not _signed_by(mac, key, body, b""):
        return None
    magic, noted_boot, noted_length, crc, *identity = _NOTE.unpack(body)
    if (magic, noted_boot, noted_length) != (NOTE_MAGIC, boot, length):
        return None
    return int(crc), tuple(identity)


def _note(
    directory: str,
    key: bytes,
    name: str,
    length: int,
    crc: int,
    verified: tuple[int, ...] | None = None,
) -> None:
    """Sign this boot's note: the CRC32, and the index file ``verified`` whole, if any."""
    boot = _boot_id()
    if boot is not None:
        body = _NOTE.pack(NOTE_MAGIC, boot, length, crc, *(verified or _NO_FILE))
        _write_private(_note_path(directory, name), body + _signed(key, body, b""))


def parse_indexed(
    data: bytes | mmap.mmap, name: str, base: Btf | None = None, *, fixed_for_boot: bool = False
) -> Btf:
    """Parse BTF with the record and name index from the on-disk cache when it is
    trustworthy; otherwise walk it, and cache the index for the next process. (Split BTF,
    on a base, gets the record index only.) ``fixed_for_boot``: ``data`` is the running
    kernel's own BTF, which stays the same until the next boot; it also gets a store of
    derived tables (``SignedTables``): only there do the length and CRC32 they are keyed
    by tell contents apart (nobody forges the kernel's own BTF)."""
    directory = private_dir(create=True)
    key = _key(directory) if directory is not None else None
    if directory is None or key is None:
        return Btf(data, name=name, base=base)
    note = _boot_note(directory, key, name, len(data)) if fixed_for_boot else None
    noted = note is not None
    crc, vouched = note if note is not None else (zlib.crc32(data), _NO_FILE)
    path = _index_path(directory, name, len(data), crc)
    found = _read(path, key, len(data), crc, vouched)
    if found is not None:
        offsets, names, identity = found
        try:
            btf = (
                IndexedBtf(data, name=name, offsets=offsets, names=names)
                if base is None
                else Btf(data, name=name, base=base, offsets=offsets)
            )
            if _index_consistent(btf):
                if fixed_for_boot and (not noted or (identity or _NO_FILE) != vouched):
                    _note(directory, key, name, len(data), crc, identity)
                if base is None and fixed_for_boot:
                    btf.memo[STORE] = SignedTables(directory, key, name, len(data), crc)
                return btf
        except ObjectError:
            pass
    if noted:  # the note pointed at a bad index: do not trust it either
        crc = zlib.crc32(data)
        path = _index_path(directory, name, len(data), crc)
    btf = Btf(data, name=name, base=base)
    names = NameIndex.build(btf)
    _write(path, key, len(data), crc, btf.raw_offsets, names)
    if fixed_for_boot:
        _note(directory, key, name, len(data), crc)
    if base is not None:
        return btf
    indexed = IndexedBtf(data, name=name, offsets=btf.raw_offsets, names=names)
    if fixed_for_boot:
        indexed.memo[STORE] = SignedTables(directory, key, name, len(data), crc)
    return indexed
