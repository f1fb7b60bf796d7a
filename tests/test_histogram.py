"""Histogram printers: bcc's table layout, per-key sections, every source shape (lists,
mappings, (section, slot) keys, ctypes structs, bucket arrays, per-CPU values), the
Histogram helper's arithmetic, and tables of what a BPF program counted in real maps."""

from __future__ import annotations

import ctypes
import io
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pylibbpf.histogram import (
    Histogram,
    format_linear_hist,
    format_log2_hist,
    log2_range,
    print_linear_hist,
    print_log2_hist,
    sections,
)
from pylibbpf.object import BpfObject


def printed(printer: Callable[..., None], *args: Any, **kwargs: Any) -> str:
    out = io.StringIO()
    printer(*args, file=out, **kwargs)
    return out.getvalue()


def test_log2_table_is_bccs() -> None:
    assert format_log2_hist([0, 3, 10, 25, 4, 0, 1], "usecs").splitlines() == [
        "     usecs               : count     distribution",
        "         0 -> 1          : 0        |                                        |",
        "         2 -> 3          : 3        |****                                    |",
        "         4 -> 7          : 10       |****************                        |",
        "         8 -> 15         : 25       |****************************************|",
        "        16 -> 31         : 4        |******                                  |",
        "        32 -> 63         : 0        |                                        |",
        "        64 -> 127        : 1        |*                                       |",
    ]
    # bcc's own bpf_log2l() numbering: slot 0 (zeros) is not printed, slot 1 is 0 -> 1;
    # as in bcc, the zeros still set the scale of the bars.
    assert format_log2_hist([9, 2, 0, 4], "x", bcc_slots=True).splitlines()[1:] == [
        "         0 -> 1          : 2        |********                                |",
        "         2 -> 3          : 0        |                                        |",
        "         4 -> 7          : 4        |*****************                       |",
    ]
    stripped = format_log2_hist([0, 0, 5, 0, 5], "ns", strip_leading_zero=True).splitlines()
    assert [row.split(":")[0].split() for row in stripped[1:]] == [
        ["4", "->", "7"],
        ["8", "->", "15"],
        ["16", "->", "31"],
    ]
    assert format_log2_hist([0, 0, 0]) == ""


def test_log2_table_widens_past_slot_32() -> None:
    counts = [0] * 40
    counts[39], counts[1] = 8, 2
    rows = format_log2_hist(counts, "bytes").splitlines()
    assert rows[0] == "               bytes                         : count     distribution"
    assert rows[-1] == (f"{1 << 39:>20} -> {(1 << 40) - 1:<20} : 8        |{'*' * 20}|")
    assert rows[2] == f"{2:>20} -> {3:<20} : 2        |{'*' * 5:<20}|"


def test_log2_ranges() -> None:
    assert [log2_range(s) for s in range(4)] == [(0, 1), (2, 3), (4, 7), (8, 15)]
    assert [log2_range(s, bcc_slots=True) for s in range(1, 4)] == [(0, 1), (2, 3), (4, 7)]


def test_linear_table_is_bccs() -> None:
    assert format_linear_hist([0, 0, 4, 0, 9], "ms").splitlines() == [
        "     ms            : count     distribution",
        "        2          : 4        |*****************                       |",
        "        3          : 0        |                                        |",
        "        4          : 9        |****************************************|",
    ]
    rows = format_linear_hist([1, 2], "kb", base=100, step=50).splitlines()
    assert [row.split(":")[0].strip() for row in rows[1:]] == ["100", "150"]
    assert format_linear_hist([]) == ""


class Key(ctypes.Structure):
    _fields_ = [("disk", ctypes.c_char * 8), ("slot", ctypes.c_uint32)]


class Hist(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 4), ("slots", ctypes.c_uint32 * 4)]


class Pairs:
    """What a map's items() gives when its keys are ctypes structs (which do not hash)."""

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        self.pairs = pairs

    def items(self) -> list[tuple[Any, Any]]:
        return self.pairs


def test_sources_of_every_shape() -> None:
    assert sections([1, 2, 3]) == {None: [1, 2, 3]}
    assert sections({2: 5, 0: 1}) == {None: [1, 0, 5]}
    assert sections((ctypes.c_uint64 * 3)(4, 5, 6)) == {None: [4, 5, 6]}
    assert sections({0: [1, 2], 1: [3, 0]}) == {None: [3, 3]}  # per-CPU counts summed
    assert sections({("sda", 1): 3, ("sda", 0): 1, ("vda", 2): 7}) == {
        "sda": [1, 3],
        "vda": [0, 0, 7],
    }
    assert sections({(1, "x", 2): 4}) == {(1, "x"): [0, 0, 4]}
    keyed = Pairs([(Key(b"sda", 1), ctypes.c_uint64(2)), (Key(b"sdb", 0), ctypes.c_uint64(5))])
    assert sections(keyed) == {b"sda": [0, 2], b"sdb": [5]}
    hist = Hist(b"x", (ctypes.c_uint32 * 4)(1, 0, 2, 0))
    assert sections({8: hist}) == {8: [1, 0, 2, 0]}
    assert sections({8: [hist, hist]}) == {8: [2, 0, 4, 0]}  # per-CPU arrays of buckets
    with pytest.raises(TypeError, match="split histogram key"):
        sections({"just-a-name": 3})
    with pytest.raises(TypeError, match="integer"):
        sections([1.5])


def test_sections_print_as_bcc_does() -> None:
    source = {("vda", 1): 3, ("sda", 3): 5}
    text = printed(print_log2_hist, source, "usecs", section_header="disk")
    assert re.findall(r"^disk = (.*)$", text, re.MULTILINE) == ["'sda'", "'vda'"]
    assert text.startswith("\ndisk = 'sda'\n     usecs ")
    named = printed(
        print_log2_hist,
        source,
        "usecs",
        section_header="disk",
        section_print_fn=str.upper,
        bucket_sort_fn=lambda keys: sorted(keys)[::-1],
    )
    assert re.findall(r"^disk = (.*)$", named, re.MULTILINE) == ["VDA", "SDA"]
    merged = printed(
        print_linear_hist,
        {("a1", 0): 1, ("a2", 0): 2},
        "n",
        section_header="group",
        bucket_fn=lambda s: s[0],
    )
    assert re.findall(r"^group = (.*)$|: (\d+) ", merged, re.MULTILINE) == [("'a'", ""), ("", "3")]
    assert printed(print_log2_hist, [0, 4], "v") == format_log2_hist([0, 4], "v") + "\n"
    assert printed(print_log2_hist, [], "v") == ""


def test_histogram_helper() -> None:
    h = Histogram([0, 3, 10, 25, 4, 0, 1])
    assert h.total == 43
    assert (h.percentile(0), h.percentile(0.5), h.percentile(0.99), h.percentile(1)) == (
        3,
        15,
        127,
        127,
    )
    assert Histogram().percentile(0.5) is None
    with pytest.raises(ValueError, match="fraction"):
        h.percentile(2)
    later = Histogram([0, 3, 12, 25, 4, 0, 1, 1])
    assert (later - h).counts == [0, 0, 2, 0, 0, 0, 0, 1]
    assert sum([h, later], Histogram()).counts == [0, 6, 22, 50, 8, 0, 2, 1]
    linear = Histogram([1, 2, 3], kind="linear", base=10, step=5)
    assert [linear.bucket(i) for i in range(3)] == [(10, 14), (15, 19), (20, 24)]
    assert linear.percentile(0.5) == 19
    assert linear.format("ms") == format_linear_hist([1, 2, 3], "ms", base=10, step=5)
    with pytest.raises(ValueError, match="kind"):
        Histogram(kind="cubic")
    with pytest.raises(TypeError, match="per_key"):
        Histogram.read({("a", 1): 2})
    per_key = Histogram.per_key({("a", 1): 2, ("b", 0): 1})
    assert {k: v.counts for k, v in per_key.items()} == {"a": [0, 2], "b": [1]}


@pytest.mark.root
def test_tables_of_what_a_bpf_program_counted(bpf_object: Callable[[str], Path]) -> None:
    with BpfObject.open(bpf_object("hist")) as obj:
        obj.variables["target_tgid"].value = os.getpid()
        obj.load()
        obj.attach()
        for value, calls in ((5, 3), (1000, 2), (0, 1)):
            obj.variables["value"].value = value
            for _ in range(calls):
                os.getppid()
        expected = [1, 0, 3] + [0] * 6 + [2]  # slots 0 (value 0), 2 (4..7), 9 (512..1023)
        for name in ("by_slot", "by_slot_percpu"):
            assert Histogram.read(obj.maps[name]).counts[:10] == expected
            assert sum(Histogram.read(obj.maps[name]).counts[10:]) == 0
        by_pid_slot = Histogram.per_key(obj.maps["by_pid_slot"])
        assert {k: v.counts for k, v in by_pid_slot.items()} == {os.getpid(): expected}
        by_pid = Histogram.per_key(obj.maps["by_pid"])
        assert list(by_pid) == [os.getpid()] and by_pid[os.getpid()].counts[:10] == expected
        text = printed(print_log2_hist, obj.maps["by_pid"], "value", section_header="pid")
        table = printed(print_log2_hist, obj.maps["by_slot"], "value")
    assert text.startswith(f"\npid = {os.getpid()}\n")
    rows = re.findall(r"^\s+(\d+) -> (\d+)\s+: (\d+) ", text, re.MULTILINE)
    assert [(int(lo), int(hi), int(n)) for lo, hi, n in rows if n != "0"] == [
        (0, 1, 1),
        (4, 7, 3),
        (512, 1023, 2),
    ]
    assert table == text.split("\n", 2)[2]  # the same table, without the section line
