"""Raw BTF parsing: lazy by design.

Opening BTF reads the header and walks the type section once to record where each type
record starts (a compact ``array`` of word offsets); nothing is decoded until asked for.
Name lookups do not need a name index either: the name is found in the string section,
its offset is searched for in the type section, and every hit is checked against the
record starts — all at the speed of ``bytes.find``. Results are memoized per name.

Every loop is bounded by the data size and every read is checked, so corrupt input raises
``ObjectError`` naming the offset and kind, never IndexError or struct.error.
"""

from __future__ import annotations

import bisect
import mmap
import os
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator

from ..errors import ObjectError
from .layout import (
    BTF_MAGIC,
    HEADER,
    HEADER_SIZE,
    STEP,
    KindLayout,
    known_record_words,
    layout_record_words,
    read_header,
    read_layout,
    record_words,
)
from .types import (
    KIND_BY_NUMBER,
    MAX_KIND,
    MAX_KIND_NUMBER,
    MAX_NESTING,
    MAX_VLEN,
    EnumValue,
    Kind,
    Member,
    OpaqueType,
    Param,
    Type,
    VarSecinfo,
    kind_name,
)

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "BTF_MAGIC",
    "HEADER",
    "HEADER_SIZE",
    "VOID",
    "Btf",
    "read_btf_file",
    "record_words",
    "referenced_ids",
    "walk_records",
]

_HOST_LITTLE = sys.byteorder == "little"
_LAST_KNOWN_KIND = int(MAX_KIND)  # a plain int for the decode path's comparison
# Kind numbers as plain ints for the decode path's dispatch (``Kind.INT`` is an attribute
# read on the enum class, several times slower than a global's).
_INT, _ARRAY, _STRUCT, _UNION, _ENUM, _ENUM64 = map(
    int, (Kind.INT, Kind.ARRAY, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64)
)
_FUNC, _FUNC_PROTO, _VAR, _DATASEC, _FLOAT, _DECL_TAG = map(
    int, (Kind.FUNC, Kind.FUNC_PROTO, Kind.VAR, Kind.DATASEC, Kind.FLOAT, Kind.DECL_TAG)
)
_SMALL_TYPES = 1 << 18  # type sections below this are searched without re (see _hits)

VOID = Type(0, Kind.UNKN, "void")


def walk_records(words: Any, name: str, layout: tuple[KindLayout, ...] | None = None) -> array[int]:
    """Word offsets of every type record (the one pass over the whole type section).

    The hot loop does only a dict lookup and an add per record; the rare cases leave it
    through exceptions: an info word not seen before (KeyError: compute and remember its
    record length, or reject an unknown kind) and the end of the data (IndexError).
    Kinds this library does not know are sized by the ``layout`` section, if it has them;
    their lengths are kept apart from the shared table, as another BTF may differ.
    """
    offsets: array[int] = array("I")
    append = offsets.append
    steps = STEP if layout is None else dict(STEP)
    total = len(words)
    i = 0
    while True:
        try:
            while True:
                append(i)
                i += steps[words[i + 1]]
        except KeyError:
            offsets.pop()
            info = words[i + 1]
            step = known_record_words(info)
            if step is not None:
                STEP[info] = step
            else:
                kind = (info >> 24) & MAX_KIND_NUMBER
                try:
                    step = layout_record_words(info, layout)
                except ValueError as error:
                    raise _corrupt(name, i, str(error)) from None
                if step is None:
                    why = "no layout section" if layout is None else "no layout entry for it"
                    raise _corrupt(name, i, f"unknown BTF kind {kind} ({why})") from None
            steps[info] = step
        except IndexError:
            offsets.pop()
            break
    if i != total:
        if i < total or not offsets:
            raise _corrupt(name, i, "a type record header runs past the end of the section")
        last = offsets[-1]
        kind_text = kind_name((words[last + 1] >> 24) & MAX_KIND_NUMBER)
        raise _corrupt(name, last, f"the {kind_text} record runs past the end of the section")
    return offsets


def _corrupt(name: str, word: int, why: str) -> ObjectError:
    return ObjectError(f"{name}: corrupt BTF type section at offset {word * 4}: {why}")


class Btf:
    """BTF types and strings, optionally split on top of a base (module BTF on vmlinux)."""

    def __init__(
        self,
        data: bytes | mmap.mmap,
        *,
        name: str = "BTF",
        base: Btf | None = None,
        offsets: array[int] | None = None,
    ) -> None:
        self.name = name
        self.base = base
        self._data = data
        # Memoised lookups other modules make against this BTF (CO-RE candidates, …):
        # they live as long as it does (vmlinux's: the whole process).
        self.memo: dict[Any, Any] = {}
        header = read_header(data, name)
        self.header = header
        self.byteorder, self.version, self.flags = header.byteorder, header.version, header.flags
        # The kind layout section (7.1+): how to step over kinds this library does not know.
        self.layout: tuple[KindLayout, ...] | None = read_layout(data, header)
        types_start, type_len = header.hdr_len + header.type_off, header.type_len
        strings_start, str_len = header.hdr_len + header.str_off, header.str_len
        if type_len % 4 or header.type_off % 4:
            raise ObjectError(f"{name}: BTF type section is not 4-byte aligned")
        native = (self.byteorder == "little") == _HOST_LITTLE
        view = memoryview(data)[types_start : types_start + type_len]
        if native:
            self._words: Any = view.cast("I")
            self._tsource: Any = data
            self._tstart = types_start
        else:
            swapped = array("I", view.tobytes())
            swapped.byteswap()
            self._words = swapped
            self._tsource = swapped.tobytes()
            self._tstart = 0
        self._tend = self._tstart + type_len
        # Strings are searched in place (no copy of a multi-megabyte section).
        self._sdata = data
        self._sstart: int = strings_start
        self._send: int = strings_start + str_len
        # Split BTF (modules) continues its base's string table: no leading NUL there.
        if str_len and base is None and data[strings_start : strings_start + 1] != b"\0":
            raise ObjectError(f"{name}: BTF string section does not start with a NUL")
        self._offsets = (
            offsets if offsets is not None else walk_records(self._words, name, self.layout)
        )
        self.first_id = base.type_count if base is not None else 1
        self.str_base = base.strings_size if base is not None else 0
        self._cache: dict[int, Type] = {}
        self._by_name: dict[str, tuple[int, ...]] = {}
        # Types whose references were checked (no loop, bounded nesting): id -> height.
        self._heights: dict[int, int] = {0: 0}
        self._aligns: dict[int, int] = {}

    # ----------------------------------------------------------------- loaders

    @staticmethod
    def load_vmlinux() -> Btf:
        """The running kernel's BTF (parsed once per process, record index cached on disk)."""
        from ..syscall.kernel_btf import load_vmlinux

        return load_vmlinux()

    @staticmethod
    def load_module(name: str) -> Btf:
        """A kernel module's BTF, split on top of vmlinux."""
        from ..syscall.kernel_btf import load_module

        return load_module(name)

    @staticmethod
    def module_names() -> list[str]:
        """Loaded kernel modules that carry BTF."""
        from ..syscall.kernel_btf import module_names

        return module_names()

    @staticmethod
    def from_file(path: str | os.PathLike[str], base: Btf | None = None) -> Btf:
        """Raw BTF, or the ``.BTF`` section of an ELF object."""
        from .file import from_file

        return from_file(path, base)

    @staticmethod
    def from_id(btf_id: int) -> Btf:
        """BTF the kernel holds, by id (a loaded program's, a module's): for decoding the
        maps and programs other processes loaded."""
        from ..syscall.kernel_btf import fetch_btf

        return fetch_btf(btf_id)

    # ----------------------------------------------------------------- sizes and ids

    @property
    def type_count(self) -> int:
        """One past the highest type id (ids start at 1; 0 is void)."""
        return self.first_id + len(self._offsets)

    @property
    def strings_size(self) -> int:
        """Bytes of string data, a base's included (string offsets run up to this)."""
        return self.str_base + self._send - self._sstart

    def __len__(self) -> int:
        """Number of types in this BTF (not counting a base, nor void)."""
        return len(self._offsets)

    @property
    def raw_offsets(self) -> array[int]:
        """Each own type's word offset in the type section, in id order."""
        return self._offsets

    @property
    def raw_data(self) -> bytes | mmap.mmap:
        """The BTF blob as parsed (header, types, strings): for content-keyed caches."""
        return self._data

    @property
    def strings(self) -> bytes:
        """This BTF's own string section (a copy)."""
        return bytes(self._sdata[self._sstart : self._send])

    # ----------------------------------------------------------------- strings

    def string_at(self, offset: int) -> str:
        """The NUL-terminated string at ``offset`` in this BTF's (or its base's) strings."""
        if offset < self.str_base and self.base is not None:
            return self.base.string_at(offset)
        if offset < 0:
            raise ObjectError(f"{self.name}: string offset {offset} is negative")
        start = self._sstart + offset - self.str_base
        if start >= self._send:
            raise ObjectError(
                f"{self.name}: string offset {offset} is past the string section "
                f"({self.strings_size} bytes)"
            )
        end = self._sdata.find(b"\0", start, self._send)
        if end < 0:
            raise ObjectError(f"{self.name}: string at offset {offset} is not NUL-terminated")
        return bytes(self._sdata[start:end]).decode("utf-8", "surrogateescape")

    def _member_name(self, offset: int) -> str:
        """``string_at`` for a name offset of this BTF's own strings ("" for 0), without its
        checks when the string is in range and terminated (the others go through them)."""
        if not offset:
            return ""
        start = self._sstart + offset - self.str_base
        if offset >= self.str_base and start < self._send:
            end = self._sdata.find(b"\0", start, self._send)
            if end >= 0:
                return str(self._sdata[start:end], "utf-8", "surrogateescape")
        return self.string_at(offset)

    # ----------------------------------------------------------------- decoding

    def __getitem__(self, type_id: int) -> Type:
        cached = self._cache.get(type_id)
        if cached is not None:
            return cached
        if type_id < self.first_id:
            if type_id == 0:
                return VOID
            if self.base is None or type_id < 0:
                raise ObjectError(f"{self.name}: no type id {type_id}")
            return self.base[type_id]
        index = type_id - self.first_id
        if index >= len(self._offsets):
            raise ObjectError(
                f"{self.name}: type id {type_id} is out of range "
                f"(ids {self.first_id}..{self.type_count - 1})"
            )
        decoded = self._decode(type_id, self._offsets[index])
        self._cache[type_id] = decoded
        return decoded

    def get(self, type_id: int) -> Type:
        """``btf[type_id]``."""
        return self[type_id]

    def _decode(self, type_id: int, i: int) -> Type:
        w = self._words
        name_off, info, size_or_type = w[i], w[i + 1], w[i + 2]
        number = (info >> 24) & MAX_KIND_NUMBER
        vlen = info & MAX_VLEN
        kind_flag = bool(info >> 31)
        name = self.string_at(name_off) if name_off else ""
        if number > _LAST_KNOWN_KIND:  # only the layout section let the walk step over it
            end = i + self.record_words(info)
            return OpaqueType(
                type_id, Kind.OPAQUE, name, size=size_or_type, type=size_or_type,
                kind_flag=kind_flag, info=info, raw=tuple(w[i + 3 : end]),
            )  # fmt: skip
        kind = KIND_BY_NUMBER[number]
        at = i + 3
        if number == _INT:
            extra = w[at]
            return Type(
                type_id,
                kind,
                name,
                size=size_or_type,
                kind_flag=kind_flag,
                encoding=(extra >> 24) & 0x0F,
                bit_offset=(extra >> 16) & 0xFF,
                bits=extra & 0xFF,
            )
        if number == _ARRAY:
            return Type(type_id, kind, name, type=w[at], index_type=w[at + 1], nelems=w[at + 2])
        if number in (_STRUCT, _UNION):
            # (the loop of a decode: task_struct has hundreds of members)
            members: list[Member] = []
            append, member, name_of = members.append, Member, self._member_name
            for j in range(at, at + 3 * vlen, 3):
                offset = w[j + 2]
                member_name = name_of(w[j])
                if kind_flag:
                    append(member(member_name, w[j + 1], offset & 0xFFFFFF, offset >> 24))
                else:
                    append(member(member_name, w[j + 1], offset))
            return Type(
                type_id, kind, name, size=size_or_type, kind_flag=kind_flag, members=tuple(members)
            )
        if number == _ENUM:
            values = []
            for j in range(at, at + 2 * vlen, 2):
                value = w[j + 1]
                if kind_flag and value & 0x80000000:
                    value -= 1 << 32
                values.append(EnumValue(self.string_at(w[j]), value))
            return Type(
                type_id, kind, name, size=size_or_type, kind_flag=kind_flag, values=tuple(values)
            )
        if number == _ENUM64:
            values = []
            for j in range(at, at + 3 * vlen, 3):
                value = w[j + 1] | (w[j + 2] << 32)
                if kind_flag and value >> 63:
                    value -= 1 << 64
                values.append(EnumValue(self.string_at(w[j]), value))
            return Type(
                type_id, kind, name, size=size_or_type, kind_flag=kind_flag, values=tuple(values)
            )
        if number == _FUNC_PROTO:
            params = tuple(
                Param(self.string_at(w[j]) if w[j] else "", w[j + 1])
                for j in range(at, at + 2 * vlen, 2)
            )
            return Type(type_id, kind, name, type=size_or_type, params=params)
        if number == _DATASEC:
            entries = tuple(
                VarSecinfo(w[j], w[j + 1], w[j + 2]) for j in range(at, at + 3 * vlen, 3)
            )
            return Type(type_id, kind, name, size=size_or_type, vars=entries)
        if number == _VAR:
            return Type(type_id, kind, name, type=size_or_type, linkage=w[at])
        if number == _DECL_TAG:
            component = w[at]
            if component & 0x80000000:
                component -= 1 << 32
            return Type(type_id, kind, name, type=size_or_type, component_idx=component)
        if number == _FUNC:
            return Type(type_id, kind, name, type=size_or_type, linkage=vlen)
        if number == _FLOAT:
            return Type(type_id, kind, name, size=size_or_type)
        # PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG
        return Type(type_id, kind, name, type=size_or_type, kind_flag=kind_flag)

    def __iter__(self) -> Iterator[Type]:
        """Every type of this BTF (not its base), in id order."""
        for type_id in range(self.first_id, self.type_count):
            yield self[type_id]

    def kind_of(self, type_id: int) -> Kind:
        """The kind of a type without decoding it."""
        if type_id < self.first_id:
            if type_id == 0:
                return Kind.UNKN
            if self.base is None:
                raise ObjectError(f"{self.name}: no type id {type_id}")
            return self.base.kind_of(type_id)
        index = type_id - self.first_id
        if index >= len(self._offsets):
            raise ObjectError(f"{self.name}: type id {type_id} is out of range")
        number = (self._words[self._offsets[index] + 1] >> 24) & MAX_KIND_NUMBER
        return KIND_BY_NUMBER[number] if number <= MAX_KIND else Kind.OPAQUE

    def record_words(self, info: int) -> int:
        """Length in words of one of this BTF's records, given its info word (the walk
        has vouched for every record, so its kind is known or laid out)."""
        step = record_words(info)
        if step is None:
            try:
                step = layout_record_words(info, self.layout)
            except ValueError as error:
                raise ObjectError(f"{self.name}: {error}") from None
        if step is None:
            raise ObjectError(f"{self.name}: no layout for {kind_name((info >> 24) & 0x7F)}")
        return step

    # ----------------------------------------------------------------- name lookups

    def _own_ids_named(self, name: str) -> tuple[int, ...]:
        cached = self._by_name.get(name)
        if cached is not None:
            return cached
        needle = b"\0" + name.encode("utf-8", "surrogateescape") + b"\0"
        ids: list[int] = []
        for name_off in self._name_offsets(needle):
            ids.extend(self._ids_with_name_off(name_off))
        result = tuple(sorted(ids))
        self._by_name[name] = result
        return result

    def _name_offsets(self, needle: bytes) -> list[int]:
        """Offsets of a string, in this BTF's strings and its base's (split BTF types
        may name themselves with strings vmlinux already has)."""
        data, start, end = self._sdata, self._sstart, self._send
        offsets = self.base._name_offsets(needle) if self.base is not None else []
        pos = data.find(needle, start, end)
        while pos >= 0:
            offsets.append(self.str_base + pos - start + 1)
            pos = data.find(needle, pos + 1, end)
        if self.base is not None and data[start : start + len(needle) - 1] == needle[1:]:
            offsets.append(self.str_base)  # a split section starts without a NUL
        return offsets

    def _ids_with_name_off(self, name_off: int) -> list[int]:
        """Types whose name_off is ``name_off``: hits of the word that start a record."""
        start, offsets, ids = self._tstart, self._offsets, []
        for hit in self._hits(struct.pack("=I", name_off)):
            relative = hit - start
            if relative % 4 == 0:
                word = relative // 4
                index = bisect.bisect_left(offsets, word)
                if index < len(offsets) and offsets[index] == word:
                    ids.append(self.first_id + index)
        return ids

    def _hits(self, needle: bytes) -> Iterator[int]:
        """Where ``needle`` occurs in the type section."""
        data, start, end = self._tsource, self._tstart, self._tend
        if end - start < _SMALL_TYPES:  # an object's own BTF: not worth importing re
            at = data.find(needle, start, end)
            while at >= 0:
                yield at
                at = data.find(needle, at + 1, end)
            return
        # re's literal search beats bytes.find on these NUL-heavy 4-byte needles (~3x).
        import re

        for match in re.compile(re.escape(needle)).finditer(data, start, end):
            yield match.start()

    def find_all(self, name: str, kind: Kind | None = None) -> list[Type]:
        """Every type named ``name`` (base BTF first), optionally of one kind."""
        if not name:
            raise ValueError("anonymous types cannot be looked up by name")
        found = self.base.find_all(name, kind) if self.base is not None else []
        for type_id in self._own_ids_named(name):
            if kind is None or self.kind_of(type_id) == kind:
                found.append(self[type_id])
        return found

    def find(self, name: str, kind: Kind | None = None) -> Type:
        """The type named ``name`` (of ``kind``); KeyError if there is none."""
        found = self.find_all(name, kind)
        if not found:
            what = f"{kind.name} " if kind is not None else ""
            raise KeyError(f"{self.name}: no {what}type named {name!r}")
        return found[0]

    def find_id(self, name: str, kind: Kind | None = None) -> int | None:
        """The id of the first type named ``name`` (of ``kind``), or None."""
        found = self.find_all(name, kind)
        return found[0].id if found else None

    def names_with_prefix(self, prefix: str) -> list[str]:
        """Distinct type-or-member names that start with ``prefix`` (string-section scan)."""
        needle = b"\0" + prefix.encode("utf-8", "surrogateescape")
        data, start, end, names = self._sdata, self._sstart, self._send, []
        pos = data.find(needle, start, end)
        while pos >= 0:
            stop = data.find(b"\0", pos + 1, end)
            if stop < 0:
                stop = end
            names.append(bytes(data[pos + 1 : stop]).decode("utf-8", "surrogateescape"))
            pos = data.find(needle, pos + 1, end)
        base = self.base.names_with_prefix(prefix) if self.base is not None else []
        return base + names

    # ----------------------------------------------------------------- output

    def dump_c(self, type_ids: Iterable[int] | None = None) -> str:
        """A C header (vmlinux.h style) for all types, or those reachable from ``type_ids``
        (the types it declares checked first: ``check_graph``)."""
        from .dump_c import checked_dump_c

        return checked_dump_c(self, type_ids)

    def write_c(
        self, write: Callable[[str], object], type_ids: Iterable[int] | None = None
    ) -> None:
        """``dump_c``'s header handed to ``write`` in pieces as it is made (of some 64k
        characters; ``write`` may be a text file's): for a command that writes it out,
        without the whole text held, then encoded, at once."""
        from .dump_c import checked_write_c

        checked_write_c(self, write, type_ids)

    def ctype(self, type_id: int) -> Any:
        """A ctypes type with the size and member offsets this BTF gives ``type_id``."""
        from .ctype import ctype

        self.check_graph(type_id)
        return ctype(self, type_id)

    # ----------------------------------------------------------------- type graph

    def check_graph(self, type_id: int | None = None) -> int:
        """Check the types ``type_id`` refers to by value (every type if None) once: a
        loop, or nesting deeper than ``MAX_NESTING``, is an ObjectError naming the
        types. Returns the nesting height (what recursive walks from it may reach)."""
        if type_id is None:
            from .rawgraph import check_every_type  # the same check, on raw records

            check_every_type(self)
            return 0
        known = self._heights.get(type_id)
        if known is not None:
            return known
        from . import graph  # here: loading an object that needs no type's layout does not

        return graph.check_type(self, type_id, self._heights)

    @property
    def checked_heights(self) -> dict[int, int]:
        """What ``check_graph`` found so far: type id -> nesting height."""
        return self._heights

    def resolve(self, type_id: int) -> Type:
        """Skip typedefs and qualifiers (const, volatile, restrict, type tags)."""
        seen = 0
        t = self[type_id]
        while t.kind in (Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG):
            seen += 1
            if seen > MAX_NESTING:
                raise _chain_error(self, type_id, "typedefs and qualifiers")
            t = self[t.type]
        return t

    def sizeof(self, type_id: int) -> int:
        """Size in bytes of a type (arrays multiplied out, pointers 8); like the kernel,
        a size that does not fit in 32 bits is an error."""
        t = self.resolve(type_id)
        multiplier = 1
        steps = 0
        while t.kind == Kind.ARRAY or t.kind == Kind.VAR:
            steps += 1
            if steps > MAX_NESTING:
                raise _chain_error(self, type_id, "arrays and variables")
            if t.kind == Kind.ARRAY:
                multiplier *= t.nelems
            t = self.resolve(t.type)
        if t.kind == Kind.PTR:
            size = 8
        elif t.kind in _SIZED:
            size = t.size
        else:
            raise ObjectError(f"{self.name}: {t.describe()} (id {t.id}) has no size")
        size *= multiplier
        if size > 0xFFFFFFFF:
            raise ObjectError(
                f"{self.name}: type id {type_id} is {size} bytes, more than 32 bits can hold"
            )
        return size

    def alignof(self, type_id: int) -> int:
        """Natural alignment as a C compiler would give it (packed structs aside)."""
        known = self._aligns.get(type_id)
        if known is not None:
            return known
        if type_id not in self._heights:
            self.check_graph(type_id)
        t = self.resolve(type_id)
        if t.kind in (Kind.INT, Kind.ENUM, Kind.ENUM64, Kind.FLOAT):
            align = min(max(t.size, 1), 8)
        elif t.kind == Kind.PTR:
            align = 8
        elif t.kind == Kind.ARRAY:
            align = self.alignof(t.type)
        elif t.kind in (Kind.STRUCT, Kind.UNION):
            align = max((self.alignof(m.type) for m in t.members), default=1)
        else:
            raise ObjectError(f"{self.name}: {t.describe()} (id {t.id}) has no alignment")
        self._aligns[type_id] = align
        return align

    def member_path(self, type_id: int, name: str) -> list[tuple[Type, Member]]:
        """Find ``name`` in a struct/union, descending into anonymous members.

        Returns the chain from the outer type to the member (one element for a direct
        member); empty if there is none.
        """
        t = self.resolve(type_id)
        if t.kind not in (Kind.STRUCT, Kind.UNION):
            return []
        for member in t.members:
            if member.name == name:
                return [(t, member)]
        from .graph import anonymous_member_path

        return anonymous_member_path(self, t, name)

    def walk(self, type_id: int) -> Iterator[Type]:
        """Every type reachable from ``type_id`` (including it), each once."""
        stack, seen = [type_id], set()
        while stack:
            current = stack.pop()
            if current in seen or current == 0:
                continue
            seen.add(current)
            t = self[current]
            yield t
            stack.extend(referenced_ids(t))


_SIZED = (Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.FLOAT, Kind.DATASEC)


def referenced_ids(t: Type) -> list[int]:
    """The type ids a type refers to."""
    refs = [m.type for m in t.members] + [p.type for p in t.params] + [v.type for v in t.vars]
    if t.kind in (
        Kind.PTR,
        Kind.TYPEDEF,
        Kind.VOLATILE,
        Kind.CONST,
        Kind.RESTRICT,
        Kind.TYPE_TAG,
        Kind.FUNC,
        Kind.FUNC_PROTO,
        Kind.VAR,
        Kind.DECL_TAG,
    ):
        refs.append(t.type)
    if t.kind == Kind.ARRAY:
        refs += [t.type, t.index_type]
    return refs


def read_btf_file(path: str | os.PathLike[str]) -> bytes | mmap.mmap:
    """The bytes of a BTF file, mmapped when the filesystem allows (sysfs does since 6.16)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            return mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        except (OSError, ValueError):
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
    finally:
        os.close(fd)


def _chain_error(btf: Btf, type_id: int, what: str) -> ObjectError:
    """``graph.chain_error``, imported on this error path only."""
    from .graph import chain_error

    return chain_error(btf, type_id, what)
