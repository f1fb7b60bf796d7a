"""Raw BTF type records by id: for whole-BTF passes that cannot afford a ``Type`` each.

``Btf[type_id]`` decodes one record into a ``Type``: right for lookups, too slow for a
pass over vmlinux's ~130k types, most of which such a pass never looks into. ``Records``
reads the words instead: every type's kind and third word (a size or a type id) in two
lists, every string once, and per-type facts (members, parameters, enumerators, size,
alignment) decoded on first use and memoised. Sizes and alignments follow ``Btf.sizeof``
and ``Btf.alignof``, with None (or 0 and 1) where those raise.
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections.abc import Iterable, Mapping, Sequence

from . import tables
from .parse import Btf
from .types import Kind

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

VOID = 0
INT, PTR, ARRAY = int(Kind.INT), int(Kind.PTR), int(Kind.ARRAY)
STRUCT, UNION, ENUM, ENUM64 = int(Kind.STRUCT), int(Kind.UNION), int(Kind.ENUM), 19
FWD, TYPEDEF, FUNC, FUNC_PROTO = int(Kind.FWD), int(Kind.TYPEDEF), int(Kind.FUNC), 13
CONST, VOLATILE, RESTRICT = int(Kind.CONST), int(Kind.VOLATILE), int(Kind.RESTRICT)
VAR, DATASEC, FLOAT = int(Kind.VAR), int(Kind.DATASEC), int(Kind.FLOAT)
DECL_TAG, TYPE_TAG = int(Kind.DECL_TAG), int(Kind.TYPE_TAG)

MODIFIERS = frozenset({TYPEDEF, CONST, VOLATILE, RESTRICT, TYPE_TAG})
SIZED = frozenset({INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC})
SCALARS = frozenset({INT, ENUM, ENUM64, FLOAT})
# The tables (``tables``) of kinds, third words and ids by kind, and of string offsets;
# bump a version with any change.
RECORDS_TABLE, STRINGS_TABLE = "records-1", "string-offsets-1"
TYPE_STRINGS_TABLE = "type-strings-2"  # (``Records(type_strings_only=True)``)
# Kinds whose own name no C declaration of a type shows (vmlinux: 56k functions' names).
_UNDECLARED_NAMES = frozenset({FUNC, VAR, DATASEC, DECL_TAG})
MAX_HOPS = 64  # modifier chains and array nesting, as Btf.resolve and Btf.sizeof allow


class Strings(dict[int, str]):
    """Every string of a BTF by offset; an offset into the middle of a string (a shared
    suffix, rare) is looked up on demand, and a bad one raises ObjectError."""

    def __init__(self, btf: Btf) -> None:
        super().__init__({0: ""})
        self.btf = btf

    def __missing__(self, offset: int) -> str:
        text = self[offset] = self.btf.string_at(offset)
        return text


def _kept_records(btf: Btf) -> tuple[list[int], array[int], dict[int, array[int]]] | None:
    """Every type's kind and third word, and the type ids by kind, as an earlier process
    read them from this BTF's content (``tables``), if one kept them. (The third words and
    the ids stay arrays: a dump reads a few of them, and an int object each costs more.)"""
    kept = tables.cached(btf, RECORDS_TABLE)
    count = len(btf.raw_offsets) + 1  # void too
    if kept is None or len(kept) < 9 * count or (len(kept) - 9 * count) % 5:
        return None
    kinds = list(bytes(kept[:count]))  # (bytes: a list of a memoryview is slower)
    refs, ids, counts = array("I"), array("I"), array("I")
    view = memoryview(kept)  # (slices of it are no copies)
    refs.frombytes(view[count : 5 * count])
    ids.frombytes(view[5 * count : 9 * count])
    distinct = (len(kept) - 9 * count) // 5
    counts.frombytes(view[9 * count + distinct :])
    ends = list(itertools.accumulate(counts))
    starts = [0, *ends[:-1]]
    by_kind = {}
    for kind, start, end in zip(kept[9 * count : 9 * count + distinct], starts, ends, strict=True):
        by_kind[kind] = ids[start:end]
    return kinds, refs, by_kind


def _keep_records(
    btf: Btf, kinds: list[int], refs: list[int], by_kind: dict[int, list[int]]
) -> None:
    """Keep what ``_kept_records`` reads, if this BTF has a store for its tables."""
    if tables.STORE in btf.memo:  # (kinds are 7 bits)
        grouped = array("I", itertools.chain.from_iterable(by_kind.values()))
        counts = array("I", map(len, by_kind.values()))
        table = bytes(kinds) + array("I", refs).tobytes() + grouped.tobytes()
        tables.keep(btf, RECORDS_TABLE, table + bytes(by_kind) + counts.tobytes())


def _string_offsets(btf: Btf, data: bytes, texts: list[str]) -> Iterable[int]:
    """Where each of ``texts`` (the strings ``data`` holds) starts: as an earlier process
    found for this BTF's content (``tables``), or each string's length and NUL after the
    one before (in bytes: the texts' lengths are those when all is ASCII)."""
    kept = tables.cached(btf, STRINGS_TABLE)
    if kept is not None and len(kept) == 4 * len(texts):
        offsets = array("I")
        offsets.frombytes(kept)
        return offsets
    pieces: list[Any] = texts if data.isascii() else data.split(b"\0")
    steps = map((1).__add__, map(len, pieces))
    found = list(itertools.accumulate(steps, initial=btf.str_base))[:-1]
    if tables.STORE in btf.memo and found and found[-1] < 1 << 32:
        tables.keep(btf, STRINGS_TABLE, array("I", found).tobytes())
    return found


def _kept_type_strings(btf: Btf) -> tuple[array[int], list[str]] | None:
    """The strings that name types, members, parameters and enumerators, and their
    offsets, as an earlier process cut them out of this BTF's content (``tables``)."""
    kept = tables.cached(btf, TYPE_STRINGS_TABLE)
    if kept is None or len(kept) < 4:
        return None
    count = int.from_bytes(kept[:4], "little")
    offsets = array("I")
    view = memoryview(kept)  # (slices of it are no copies)
    offsets.frombytes(view[4 : 4 + 4 * count])
    texts = str(view[4 + 4 * count :], "utf-8", "surrogateescape").split("\0")
    if len(offsets) != count or len(texts) != count + 1 or texts[-1]:
        return None
    del texts[-1]
    return offsets, texts


class Records:
    """The type records of a BTF (and of its base, for split BTF) by id.

    ``type_strings_only``: for a C dump of a BTF with kept tables (vmlinux), the strings
    read at once are those a C declaration may show: not functions', variables',
    sections' and tags' own names (68k of vmlinux's 125k strings: half the memory, and
    its page faults); any other is read from the section on first use."""

    def __init__(self, btf: Btf, *, type_strings_only: bool = False) -> None:
        chain: list[Btf] = []
        layer: Btf | None = btf
        while layer is not None:
            chain.append(layer)
            layer = layer.base
        chain.reverse()
        self.btf = btf
        self.kinds: list[int] = [VOID]
        # The third word (a size or a type id, by kind), and where each record starts in
        # its words: lists, or arrays when read from kept tables (no int object each).
        self.refs: list[int] | array[int]
        self.starts: list[int] | array[int]
        self.words_of: list[Any] = [()]  # the words holding each record
        self.strings = Strings(btf)
        by_kind: Mapping[int, Sequence[int]] | None = None
        refs, starts = [0], [0]  # (void's)
        for layer in chain:
            words, offsets = layer._words, layer.raw_offsets
            kept = _kept_records(layer) if len(chain) == 1 else None
            if kept is not None:
                self.kinds, self.refs, by_kind = kept
                self.starts = array("I", (0,)) + offsets
            else:
                self.kinds += [(words[o + 1] >> 24) & 0x7F for o in offsets]
                refs += [words[o + 2] for o in offsets]
                starts += offsets
                self.refs, self.starts = refs, starts
            self.words_of += [words] * len(offsets)
            subset = _kept_type_strings(layer) if type_strings_only and kept else None
            if subset is not None:
                self.strings.update(zip(*subset, strict=True))
                continue
            data = bytes(layer._sdata[layer._sstart : layer._send])
            ascii_only = data.isascii()  # (as C identifiers are: decoded faster)
            texts = (
                data.decode("ascii") if ascii_only else data.decode("utf-8", "surrogateescape")
            ).split("\0")
            del texts[-1]  # unterminated (or empty, past the end): string_at rejects it
            self.strings.update(zip(_string_offsets(layer, data, texts), texts, strict=False))
        if by_kind is None:
            listed: dict[int, list[int]] = {}
            for type_id, kind in enumerate(self.kinds):
                if kind in listed:
                    listed[kind].append(type_id)
                else:
                    listed[kind] = [type_id]
            if len(chain) == 1:
                _keep_records(btf, self.kinds, refs, listed)
            by_kind = listed
        self.by_kind = by_kind  # type ids in id order
        if type_strings_only and subset is None:
            self.keep_type_strings()
        self.arrays: dict[int, tuple[int, int, int]] = {}  # element, index type, count
        for type_id in self.by_kind.get(ARRAY, ()):
            words, at = self.words_of[type_id], self.starts[type_id]
            self.arrays[type_id] = (words[at + 3], words[at + 4], words[at + 5])
        self._names: dict[int, str] = {}
        self._member_types: dict[int, list[int]] = {}
        self._sizes: dict[int, int] = {}
        self._aligns: dict[int, int] = {}
        self.exact_aligns: dict[int, int | None] = {}  # None: no alignment
        self._aligning: set[int] = set()

    def keep_type_strings(self) -> None:
        """Keep what ``_kept_type_strings`` reads, if this BTF (not split) has a store: every
        string but the own names of ``_UNDECLARED_NAMES`` (the few hundred of those that
        also name a member or a parameter are read on use, as any string not kept)."""
        if self.btf.base is not None or tables.STORE not in self.btf.memo:
            return
        words, strings = self.words_of[-1], self.strings  # (one layer: the same words)
        undeclared: set[int] = set()
        for kind in _UNDECLARED_NAMES & self.by_kind.keys():
            undeclared.update(
                map(words.__getitem__, map(self.starts.__getitem__, self.by_kind[kind]))
            )
        offsets = array("I", [offset for offset in strings if offset not in undeclared])
        texts = list(map(strings.__getitem__, offsets))
        blob = "\0".join(texts) + "\0" if texts else ""
        table = len(offsets).to_bytes(4, "little") + offsets.tobytes()
        tables.keep(self.btf, TYPE_STRINGS_TABLE, table + blob.encode("utf-8", "surrogateescape"))

    def own_ids(self, kinds: Iterable[int]) -> list[int]:
        """This BTF's own type ids of ``kinds`` (not its base's), in id order."""
        first = self.btf.first_id
        ids: list[int] = []
        for kind in kinds:
            of_kind = self.by_kind.get(kind, ())
            ids += of_kind[bisect.bisect_left(of_kind, first) :]
        return sorted(ids)

    # ----------------------------------------------------------------- record parts

    def name(self, type_id: int) -> str:
        name = self._names.get(type_id)
        if name is None:
            name = self.strings[self.words_of[type_id][self.starts[type_id]]] if type_id else ""
            self._names[type_id] = name
        return name

    def names_of(self, type_ids: Sequence[int]) -> list[str]:
        """``name`` of each of ``type_ids`` (all > 0), in one pass."""
        strings, words_of, starts = self.strings, self.words_of, self.starts
        names = [strings[words_of[type_id][starts[type_id]]] for type_id in type_ids]
        self._names.update(zip(type_ids, names, strict=True))
        return names

    def kind_flag(self, type_id: int) -> bool:
        return bool(self.words_of[type_id][self.starts[type_id] + 1] >> 31)

    def int_encoding(self, type_id: int) -> int:
        encoding: int = (self.words_of[type_id][self.starts[type_id] + 3] >> 24) & 0x0F
        return encoding

    def member_types(self, type_id: int) -> list[int]:
        types = self._member_types.get(type_id)
        if types is None:
            words, at = self.words_of[type_id], self.starts[type_id]
            types = list(words[at + 4 : at + 3 + 3 * (words[at + 1] & 0xFFFFFF) : 3])
            self._member_types[type_id] = types
        return types

    def member_names(self, type_id: int) -> set[str]:
        words, at = self.words_of[type_id], self.starts[type_id]
        end = at + 3 + 3 * (words[at + 1] & 0xFFFFFF)
        return set(map(self.strings.__getitem__, words[at + 3 : end : 3]))

    def param_types(self, type_id: int) -> Iterable[int]:
        words, at = self.words_of[type_id], self.starts[type_id]
        types: Iterable[int] = words[at + 4 : at + 3 + 2 * (words[at + 1] & 0xFFFFFF) : 2]
        return types

    def datasec_types(self, type_id: int) -> Iterable[int]:
        words, at = self.words_of[type_id], self.starts[type_id]
        types: Iterable[int] = words[at + 3 : at + 3 + 3 * (words[at + 1] & 0xFFFFFF) : 3]
        return types

    def enum_names(self, type_id: int) -> list[str]:
        """An ENUM's or ENUM64's enumerator names."""
        words, at = self.words_of[type_id], self.starts[type_id]
        step = 2 if self.kinds[type_id] == ENUM else 3
        end = at + 3 + step * (words[at + 1] & 0xFFFFFF)
        return list(map(self.strings.__getitem__, words[at + 3 : end : step]))

    def enum_members(self, type_id: int) -> tuple[list[str], list[int]]:
        """``enum_names`` and ``enum_numbers`` at once, from one list of the record's
        words (a dump's enums: strided views of the words cost more)."""
        words, at = self.words_of[type_id], self.starts[type_id]
        info = words[at + 1]
        if self.kinds[type_id] != ENUM:
            return self.enum_names(type_id), self.enum_numbers(type_id)
        pairs = words[at + 3 : at + 3 + 2 * (info & 0xFFFFFF)].tolist()
        values = pairs[1::2]
        if info >> 31:  # signed
            values = [value - (1 << 32) if value & 0x80000000 else value for value in values]
        return list(map(self.strings.__getitem__, pairs[::2])), values

    def enum_numbers(self, type_id: int) -> list[int]:
        """An ENUM's or ENUM64's values, signed as its kind_flag says."""
        words, at = self.words_of[type_id], self.starts[type_id]
        info = words[at + 1]
        if self.kinds[type_id] == ENUM:
            values = list(words[at + 4 : at + 3 + 2 * (info & 0xFFFFFF) : 2])
            if info >> 31:  # signed
                return [value - (1 << 32) if value & 0x80000000 else value for value in values]
            return values
        values = []
        for j in range(at + 3, at + 3 + 3 * (info & 0xFFFFFF), 3):
            value = words[j + 1] | (words[j + 2] << 32)
            if info >> 31 and value >> 63:
                value -= 1 << 64
            values.append(value)
        return values

    # ----------------------------------------------------------------- layout

    def resolve(self, type_id: int) -> int | None:
        """Skip typedefs and qualifiers; None for a modifier loop (as Btf.resolve)."""
        kinds, refs = self.kinds, self.refs
        for _ in range(MAX_HOPS + 1):
            if kinds[type_id] not in MODIFIERS:
                return type_id
            type_id = refs[type_id]
        return None

    def size(self, type_id: int) -> int:
        """Size in bytes as Btf.sizeof gives it, 0 where it has none."""
        size = self._sizes.get(type_id)
        if size is None:
            size = self._sizes[type_id] = self._sizeof(type_id) or 0
        return size

    def _sizeof(self, type_id: int) -> int | None:
        target = self.resolve(type_id)
        multiplier = 1
        for _ in range(MAX_HOPS + 1):
            if target is None or self.kinds[target] != ARRAY:
                break
            element, _, count = self.arrays[target]
            multiplier *= count
            target = self.resolve(element)
        else:
            return None
        if target is None:
            return None
        kind = self.kinds[target]
        if kind == PTR:
            return 8 * multiplier
        if kind in SIZED:
            return self.refs[target] * multiplier
        if kind == VAR:
            inner = self._sizeof(self.refs[target])
            return None if inner is None else inner * multiplier
        return None

    def align(self, type_id: int) -> int:
        """Natural alignment as Btf.alignof gives it, 1 where it has none."""
        align = self._aligns.get(type_id)
        if align is None:
            align = self._aligns[type_id] = self.exact_align(type_id) or 1
        return align

    def exact_align(self, type_id: int) -> int | None:
        if type_id not in self.exact_aligns:
            self.exact_aligns[type_id] = self._alignof(type_id)
        return self.exact_aligns[type_id]

    def _alignof(self, type_id: int) -> int | None:
        target = self.resolve(type_id)
        if target is None:
            return None
        if target != type_id:  # (a typedef's or a qualifier's: its target's, memoised)
            return self.exact_align(target)
        kind = self.kinds[target]
        if kind in SCALARS:
            return min(max(self.refs[target], 1), 8)
        if kind == PTR:
            return 8
        if kind == ARRAY:
            return self.exact_align(self.arrays[target][0])
        if kind not in (STRUCT, UNION) or target in self._aligning:
            return None  # no alignment, or a struct containing itself
        self._aligning.add(target)
        try:
            best = 1
            for member_type in self.member_types(target):
                align = self.exact_align(member_type)
                if align is None:
                    return None
                best = max(best, align)
            return best
        finally:
            self._aligning.discard(target)
