"""Histograms that BPF programs fill, printed the way bcc prints them.

A BPF program counts into buckets (``slot = log2(value)`` or ``value / step``) held in a
map or a global array; these functions read whatever form that takes and print bcc's
tables, with one section per key for per-disk or per-process histograms:

    print_log2_hist(obj.maps["hists"], "usecs", section_header="disk",
                    section_print_fn=disk_name)

Sources: a list of counts (``counts[slot]``), a ``{slot: count}`` mapping, a map with
integer keys (slots) and integer values, a map or mapping whose keys are (section, slot)
pairs or ctypes structs with a slot member (bcc's layout), or one whose values are arrays
of counts, such as libbpf-tools' ``struct hist { __u32 slots[N]; }`` per key. Per-CPU
counts are summed.

Slots follow libbpf-tools' ``log2l()``: slot ``n`` holds values in ``[2^n, 2^(n+1))``
and slot 0 holds 0 and 1. ``bcc_slots=True`` reads bcc's ``bpf_log2l()`` numbering
instead (slot ``n`` holds ``[2^(n-1), 2^n)``, slot 0 only zeros, which are not printed).
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

STARS = 40
SLOT_NAMES = ("slot", "slots", "bucket", "buckets")

Counts = list[int]


# --------------------------------------------------------------------------- values


def _count(value: Any) -> int:
    """An int from an int, a ctypes integer, or per-CPU values (summed)."""
    if isinstance(value, int):
        return value
    if isinstance(value, list | tuple):
        return sum(_count(v) for v in value)
    if isinstance(value, ctypes._SimpleCData):
        return int(value.value)
    raise TypeError(f"a histogram count should be an integer, not {type(value).__name__}")


def _bucket_array(value: Any) -> Counts | None:
    """The counts of a value that is itself a histogram, or None if it is one count."""
    if isinstance(value, ctypes.Array):
        return [_count(v) for v in value]
    if isinstance(value, ctypes.Structure):
        arrays = [
            name
            for name, kind, *_ in value._fields_
            if issubclass(kind, ctypes.Array) and getattr(kind, "_type_", None) is not ctypes.c_char
        ]
        named = [name for name in arrays if name in SLOT_NAMES]
        chosen = named or arrays
        if len(chosen) != 1:
            raise TypeError(
                f"{type(value).__name__}: cannot tell which member holds the buckets "
                f"(array members: {', '.join(arrays) or 'none'}; name it 'slots')"
            )
        return [_count(v) for v in getattr(value, chosen[0])]
    if isinstance(value, list | tuple) and value and _bucket_array(value[0]) is not None:
        # per-CPU arrays of buckets: add them up slot by slot
        columns = [_bucket_array(v) or [] for v in value]
        return [sum(c[i] for c in columns if i < len(c)) for i in range(max(map(len, columns)))]
    return None


def _split_key(key: Any, slot_field: str | None) -> tuple[Any, int]:
    """(section, slot) from a pair or a struct (slot: the named member, else the last)."""
    if isinstance(key, tuple):
        if len(key) < 2:
            raise TypeError(f"a histogram key tuple needs (section..., slot), got {key!r}")
        return (key[0] if len(key) == 2 else key[:-1]), int(key[-1])
    if isinstance(key, ctypes.Structure):
        names = [name for name, *_ in key._fields_]
        slot = slot_field or next((n for n in names if n in SLOT_NAMES), names[-1])
        if slot not in names:
            raise TypeError(f"{type(key).__name__} has no member {slot!r}")
        rest = [_plain(getattr(key, n)) for n in names if n != slot]
        return (rest[0] if len(rest) == 1 else tuple(rest)), int(getattr(key, slot))
    raise TypeError(f"cannot split histogram key {key!r} into (section, slot)")


def _plain(value: Any) -> Any:
    """Struct members as plain Python values (char arrays as bytes, like bcc)."""
    if isinstance(value, ctypes.Array):
        if issubclass(value._type_, ctypes.c_char):
            return bytes(value).rstrip(b"\0")
        return tuple(_plain(v) for v in value)
    return value


def _items(source: Any) -> list[tuple[Any, Any]] | None:
    if isinstance(source, Mapping):
        return list(source.items())
    items = getattr(source, "items", None)  # a pylibbpf Map
    if callable(items):
        return list(items())
    return None


def sections(source: Any, *, slot_field: str | None = None) -> dict[Any, Counts]:
    """The histograms in ``source``: ``{section: counts}``, with the single section
    ``None`` when the source is one histogram."""
    if isinstance(source, Histogram):
        return {None: list(source.counts)}
    array = _bucket_array(source)
    if array is not None:
        return {None: array}
    items = _items(source)
    if items is None:
        if isinstance(source, Iterable):
            return {None: [_count(v) for v in source]}
        raise TypeError(f"cannot read a histogram from {type(source).__name__}")
    result: dict[Any, Counts] = {}
    slots: dict[Any, dict[int, int]] = {}
    for key, value in items:
        buckets = _bucket_array(value)
        if buckets is not None:
            result[_plain(key)] = buckets
            continue
        if isinstance(key, int):
            section, slot = None, key
        else:
            section, slot = _split_key(key, slot_field)
        per_section = slots.setdefault(section, {})
        per_section[slot] = per_section.get(slot, 0) + _count(value)
    for section, counts in slots.items():
        dense = [0] * (max(counts) + 1 if counts else 0)
        for slot, count in counts.items():
            if slot >= 0:
                dense[slot] += count
        result[section] = dense
    return result


# --------------------------------------------------------------------------- formats


def _stars(value: int, peak: int, width: int) -> str:
    """bcc's bar: ``width * value / peak`` stars (rounded down), ``+`` marking a value
    above ``peak``."""
    if peak <= 0:
        return ""
    count = min(width, int(width * value / peak))
    stars = "*" * count
    if value > peak:
        stars = stars[:-1] + "+"
    return stars


def log2_range(slot: int, *, bcc_slots: bool = False) -> tuple[int, int]:
    """The values slot ``slot`` counts, both ends included, as the tables print them."""
    index = slot if bcc_slots else slot + 1
    low, high = (1 << index) >> 1, (1 << index) - 1
    return (low - 1 if low == high else low), high


def format_log2_hist(
    counts: Sequence[int],
    val_type: str = "value",
    *,
    strip_leading_zero: bool = False,
    bcc_slots: bool = False,
) -> str:
    """One log2 table, bcc's layout (wider columns past slot 32)."""
    last = max((i for i, c in enumerate(counts) if c > 0), default=-1)
    if last < 0:
        return ""
    peak = max(counts)
    if last <= 32:
        header, low_w, width = f"     {val_type:<19} : count     distribution", 10, STARS
    else:
        header, low_w, width = (
            f"               {val_type:<29} : count     distribution",
            20,
            STARS // 2,
        )
    rows = [header]
    for slot in range(1 if bcc_slots else 0, last + 1):
        value = counts[slot]
        if strip_leading_zero and not value and len(rows) == 1:
            continue
        low, high = log2_range(slot, bcc_slots=bcc_slots)
        bar = _stars(value, peak, width)
        rows.append(f"{low:>{low_w}} -> {high:<{low_w}} : {value:<8} |{bar:<{width}}|")
    return "\n".join(rows)


def format_linear_hist(
    counts: Sequence[int],
    val_type: str = "value",
    *,
    base: int = 0,
    step: int = 1,
    strip_leading_zero: bool = True,
) -> str:
    """One linear table: bucket ``i`` is ``base + i * step``; from the first to the last
    non-empty bucket, as bcc prints them (``strip_leading_zero=False`` starts at 0)."""
    used = [i for i, c in enumerate(counts) if c > 0]
    if not used:
        return ""
    peak = max(counts)
    rows = [f"     {val_type:<13} : count     distribution"]
    for index in range(used[0] if strip_leading_zero else 0, used[-1] + 1):
        value = counts[index]
        bar = _stars(value, peak, STARS)
        rows.append(f"        {base + index * step:<10} : {value:<8} |{bar:<{STARS}}|")
    return "\n".join(rows)


def _print_sections(
    tables: dict[Any, Counts],
    render: Callable[[Counts], str],
    section_header: str,
    section_print_fn: Callable[[Any], str] | None,
    bucket_fn: Callable[[Any], Any] | None,
    bucket_sort_fn: Callable[[list[Any]], list[Any]] | None,
    out: IO[str],
) -> None:
    if list(tables) == [None]:
        text = render(tables[None])
        if text:
            print(text, file=out)
        return
    if bucket_fn is not None:  # bcc: merge the sections that map to the same bucket
        merged: dict[Any, Counts] = {}
        for section, counts in tables.items():
            into = merged.setdefault(bucket_fn(section), [])
            into.extend([0] * (len(counts) - len(into)))
            for i, c in enumerate(counts):
                into[i] += c
        tables = merged
    order = list(tables)
    order = bucket_sort_fn(order) if bucket_sort_fn else sorted(order, key=_sort_key)
    for section in order:
        name = section_print_fn(section) if section_print_fn else repr(section)
        print(f"\n{section_header} = {name}", file=out)
        text = render(tables[section])
        if text:
            print(text, file=out)


def _sort_key(section: Any) -> tuple[int, Any]:
    return (0, section) if isinstance(section, int | float) else (1, repr(section))


def print_log2_hist(
    source: Any,
    val_type: str = "value",
    *,
    section_header: str = "Bucket ptr",
    section_print_fn: Callable[[Any], str] | None = None,
    bucket_fn: Callable[[Any], Any] | None = None,
    bucket_sort_fn: Callable[[list[Any]], list[Any]] | None = None,
    strip_leading_zero: bool = False,
    bcc_slots: bool = False,
    slot_field: str | None = None,
    file: IO[str] | None = None,
) -> None:
    """bcc's ``print_log2_hist``: one table, or one per section (``section_header =
    section_print_fn(section)`` above each) for sources keyed by section."""
    _print_sections(
        sections(source, slot_field=slot_field),
        lambda counts: format_log2_hist(
            counts, val_type, strip_leading_zero=strip_leading_zero, bcc_slots=bcc_slots
        ),
        section_header,
        section_print_fn,
        bucket_fn,
        bucket_sort_fn,
        file or sys.stdout,
    )


def print_linear_hist(
    source: Any,
    val_type: str = "value",
    *,
    section_header: str = "Bucket ptr",
    section_print_fn: Callable[[Any], str] | None = None,
    bucket_fn: Callable[[Any], Any] | None = None,
    bucket_sort_fn: Callable[[list[Any]], list[Any]] | None = None,
    base: int = 0,
    step: int = 1,
    slot_field: str | None = None,
    file: IO[str] | None = None,
) -> None:
    """bcc's ``print_linear_hist``, with libbpf-tools' ``base`` and ``step``."""
    _print_sections(
        sections(source, slot_field=slot_field),
        lambda counts: format_linear_hist(counts, val_type, base=base, step=step),
        section_header,
        section_print_fn,
        bucket_fn,
        bucket_sort_fn,
        file or sys.stdout,
    )


# --------------------------------------------------------------------------- Histogram


@dataclass
class Histogram:
    """Counts per bucket, read from a BPF-side array, with the questions one asks of
    them: totals, percentiles, the change since the last read, a printed table.

    ``kind`` is ``"log2"`` (slots as in ``log2_range``) or ``"linear"`` (bucket ``i`` is
    ``[base + i*step, base + (i+1)*step)``).
    """

    counts: Counts = field(default_factory=list)
    kind: str = "log2"
    base: int = 0
    step: int = 1
    bcc_slots: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("log2", "linear"):
            raise ValueError(f"histogram kind must be 'log2' or 'linear', not {self.kind!r}")
        if self.step <= 0:
            raise ValueError(f"histogram step must be positive, not {self.step}")

    @classmethod
    def read(cls, source: Any, **options: Any) -> Histogram:
        """One histogram from ``source``: an array variable's value, a list, an array map
        (slot -> count) or a struct holding a ``slots`` array."""
        tables = sections(source)
        if list(tables) != [None]:
            raise TypeError("this source holds one histogram per key: use Histogram.per_key")
        return cls(tables[None], **options)

    @classmethod
    def per_key(
        cls, source: Any, *, slot_field: str | None = None, **options: Any
    ) -> dict[Any, Histogram]:
        """``{key: Histogram}`` from a map keyed by section (see ``sections``)."""
        return {k: cls(c, **options) for k, c in sections(source, slot_field=slot_field).items()}

    def bucket(self, index: int) -> tuple[int, int]:
        """The values bucket ``index`` counts (both ends included)."""
        if self.kind == "linear":
            low = self.base + index * self.step
            return low, low + self.step - 1
        return log2_range(index, bcc_slots=self.bcc_slots)

    @property
    def total(self) -> int:
        """Every count, summed."""
        return sum(self.counts)

    def percentile(self, fraction: float) -> int | None:
        """The upper end of the bucket holding the ``fraction`` quantile (0.99: p99);
        None if empty. The resolution is the bucket's."""
        total = self.total
        if not total:
            return None
        if not 0 <= fraction <= 1:
            raise ValueError(f"percentile wants a fraction in [0, 1], not {fraction}")
        rank, seen = fraction * total, 0
        for index, count in enumerate(self.counts):
            seen += count
            if count and seen >= rank:
                return self.bucket(index)[1]
        return self.bucket(len(self.counts) - 1)[1]

    def _combine(self, other: Histogram, sign: int) -> Histogram:
        size = max(len(self.counts), len(other.counts))
        mine = self.counts + [0] * (size - len(self.counts))
        theirs = other.counts + [0] * (size - len(other.counts))
        counts = [a + sign * b for a, b in zip(mine, theirs, strict=True)]
        return Histogram(counts, self.kind, self.base, self.step, self.bcc_slots)

    def __add__(self, other: Histogram) -> Histogram:
        """Both together: per-disk histograms summed into one (``sum(hs, Histogram())``)."""
        return self._combine(other, 1)

    def __sub__(self, earlier: Histogram) -> Histogram:
        """What was counted between two reads of the same array."""
        return self._combine(earlier, -1)

    def format(self, val_type: str = "value") -> str:
        """The histogram as bcc prints it (``print_log2_hist``/``print_linear_hist``)."""
        if self.kind == "linear":
            return format_linear_hist(self.counts, val_type, base=self.base, step=self.step)
        return format_log2_hist(self.counts, val_type, bcc_slots=self.bcc_slots)

    def print(self, val_type: str = "value", *, file: IO[str] | None = None) -> None:
        """``format()`` to ``file`` (stdout); nothing for an empty histogram."""
        text = self.format(val_type)
        if text:
            print(text, file=file or sys.stdout)
