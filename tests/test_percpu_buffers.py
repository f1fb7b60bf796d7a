"""Per-CPU int values through an element buffer set: the fast setter writes the bytes the
codec writes, and the getter reads what the codec reads (issue #18).

Privilege-free: the buffers are made for a chosen number of possible CPUs (not this
machine's) and compared byte for byte with ``encode_value``/``decode_percpu``; no
syscall is made. What the kernel then holds is checked in tests/test_fast_paths.py.
"""

from __future__ import annotations

import errno
import functools
import random
from typing import Any

import pytest

from pylibbpf.errors import BpfError
from pylibbpf.map_elem import decode_percpu, encode_value
from pylibbpf.spec.codec import IntCodec
from pylibbpf.syscall.elem import FAST_MISS, INVALID_FD, MapElemOps, MapElems

WHAT = "map 't_pcbuf'"
CPU_COUNTS = [1, 2, 3, 8, 64, 256]
INT_KINDS = [(size, signed) for size in (1, 2, 4, 8) for signed in (False, True)]


class _Buffers:
    """One buffer set of a per-CPU map of ``ncpus`` CPUs, counting the codec's writes."""

    def __init__(self, ncpus: int, size: int, signed: bool) -> None:
        self.ncpus, self.size, self.signed = ncpus, size, signed
        self.slot = (size + 7) & ~7
        self.codec = IntCodec(size, WHAT, "value", signed=signed)
        self.encoded: list[Any] = []
        self.elems = MapElems(
            INVALID_FD,
            4,
            self.slot * ncpus,
            WHAT,
            IntCodec(4, WHAT, "key"),
            self.codec,
            self._encode,
            functools.partial(decode_percpu, self.codec, self.slot, ncpus),
            self.slot,
        )
        self.ops: MapElemOps = self.elems.make_ops()

    def _encode(self, value: Any) -> bytes:
        self.encoded.append(value)
        return encode_value(self.codec, True, self.slot, self.ncpus, WHAT, value)

    def write(self, value: Any) -> bytes:
        """What ``Map.__setitem__`` does to the value buffer; the bytes it leaves there."""
        ops = self.ops
        ops.vbuf.raw = b"\xa5" * len(ops.vbuf)  # stale bytes (padding too) from a lookup
        try:
            ops.value_dst[ops.value_at] = value
        except FAST_MISS:
            ops.put_value(value)
        return bytes(ops.vbuf.raw)

    def by_hand(self, values: list[int]) -> bytes:
        """The per-CPU bytes, built without pylibbpf: one little-endian int per slot."""
        return b"".join(
            (v & ((1 << (8 * self.size)) - 1)).to_bytes(self.size, "little").ljust(self.slot, b"\0")
            for v in values
        )

    def edge_values(self) -> list[int]:
        bits = 8 * self.size
        low = -(1 << (bits - 1)) if self.signed else 0
        high = (1 << (bits - 1 if self.signed else bits)) - 1
        return [0, 1, low, high, random.Random(bits).randint(low, high)]


@pytest.mark.parametrize("ncpus", CPU_COUNTS)
@pytest.mark.parametrize(("size", "signed"), INT_KINDS)
def test_an_int_for_every_cpu_is_the_codecs_bytes(ncpus: int, size: int, signed: bool) -> None:
    buffers = _Buffers(ncpus, size, signed)
    for value in buffers.edge_values():
        written = buffers.write(value)
        assert written == buffers.by_hand([value] * ncpus)
        assert written == encode_value(buffers.codec, True, buffers.slot, ncpus, WHAT, value)
        assert buffers.ops.get_value() == [value] * ncpus
    assert buffers.encoded == []  # every one of them took the fast path


@pytest.mark.parametrize("ncpus", CPU_COUNTS)
@pytest.mark.parametrize(("size", "signed"), INT_KINDS)
def test_one_int_per_cpu_is_the_codecs_bytes(ncpus: int, size: int, signed: bool) -> None:
    buffers = _Buffers(ncpus, size, signed)
    edges = buffers.edge_values()
    values = [edges[cpu % len(edges)] for cpu in range(ncpus)]
    for each in (values, tuple(values)):
        written = buffers.write(each)
        assert written == buffers.by_hand(values)
        assert written == encode_value(buffers.codec, True, buffers.slot, ncpus, WHAT, values)
        assert buffers.ops.get_value() == values
    # One CPU, 8 bytes: the typed view takes ints only, and a list goes through the codec.
    assert len(buffers.encoded) == (2 if ncpus == 1 and size == 8 else 0)


@pytest.mark.parametrize("ncpus", CPU_COUNTS)
@pytest.mark.parametrize(("size", "signed"), INT_KINDS)
def test_the_codec_takes_what_the_fast_path_refuses(ncpus: int, size: int, signed: bool) -> None:
    """Ints out of the format's range (negative for unsigned: two's complement; above the
    signed maximum) and ints that are not exactly ``int`` still get the codec's bytes."""
    buffers = _Buffers(ncpus, size, signed)
    bits = 8 * size
    wrapping = (1 << (bits - 1)) + 5 if signed else -3
    for value in (wrapping, True):
        expect = encode_value(buffers.codec, True, buffers.slot, ncpus, WHAT, value)
        assert buffers.write(value) == expect == buffers.by_hand([int(value)] * ncpus)
        assert buffers.write([value] * ncpus) == expect


@pytest.mark.parametrize("ncpus", CPU_COUNTS)
@pytest.mark.parametrize(("size", "signed"), INT_KINDS)
def test_bad_values_get_the_codecs_error_naming_the_map(
    ncpus: int, size: int, signed: bool
) -> None:
    buffers = _Buffers(ncpus, size, signed)
    too_big = 1 << (8 * size + 1)
    bad: list[Any] = [[1] * (ncpus + 1), (1,) * (ncpus + 1), [], too_big, [too_big] * ncpus]
    bad += ["seven", 1.5, [1.5] * ncpus, None]
    for value in bad:
        with pytest.raises(BpfError) as refused:
            buffers.write(value)
        assert refused.value.errno in (errno.EINVAL, errno.ERANGE), value
        assert "t_pcbuf" in str(refused.value), value


@pytest.mark.parametrize("ncpus", CPU_COUNTS)
@pytest.mark.parametrize(("size", "signed"), INT_KINDS)
def test_reads_match_the_codec(ncpus: int, size: int, signed: bool) -> None:
    """The getter reads each slot's int, whatever its padding holds."""
    buffers = _Buffers(ncpus, size, signed)
    rng = random.Random(ncpus * 100 + size)
    for _ in range(5):
        raw = bytes(rng.randrange(256) for _ in range(buffers.slot * ncpus))
        buffers.ops.vbuf.raw = raw
        assert buffers.ops.get_value() == decode_percpu(buffers.codec, buffers.slot, ncpus, raw)
