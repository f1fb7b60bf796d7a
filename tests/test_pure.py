"""Privilege-free tests: instruction encoding, codecs, CPU lists, errno descriptions."""

from __future__ import annotations

import ctypes
import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pylibbpf import insn
from pylibbpf.errors import (
    BpfError,
    BpfPermissionError,
    MapFullError,
    NotSupportedError,
)
from pylibbpf.spec.codec import Codec, IntCodec, codec_for
from pylibbpf.spec.helpers import helper_id, helper_name
from pylibbpf.syscall.bpf import kernel_error as error_from_errno
from pylibbpf.syscall.system import parse_cpu_list
from pylibbpf.uapi import ENOTSUPP, Cmd


def test_insn_encoding_matches_kernel_layout() -> None:
    # r0 = 1; exit  — bytes as the kernel's struct bpf_insn lays them out on little endian
    assert insn.assemble(insn.return_imm(1)) == bytes.fromhex("b700000001000000 9500000000000000")
    # r1 = r10 puts src in the high nibble of the register byte
    assert insn.mov64_reg(insn.R1, insn.R10).encode()[1] == 0xA1


@given(
    code=st.integers(0, 255),
    dst=st.integers(0, 15),
    src=st.integers(0, 15),
    off=st.integers(-(2**15), 2**15 - 1),
    imm=st.integers(-(2**31), 2**31 - 1),
)
def test_insn_roundtrip(code: int, dst: int, src: int, off: int, imm: int) -> None:
    one = insn.Insn(code, dst, src, off, imm)
    assert insn.decode(one.encode()) == [one]


def test_ld_imm64_splits_value() -> None:
    first, second = insn.ld_imm64(insn.R1, 0x1122334455667788)
    assert first.is_ld_imm64() and first.imm == 0x55667788 and second.imm == 0x11223344


def test_decode_rejects_partial_instruction() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        insn.decode(b"\0" * 12)


def test_helper_names() -> None:
    assert helper_id("map_lookup_elem") == 1
    assert helper_id("bpf_ringbuf_output") == helper_id("ringbuf_output") == 130
    assert helper_name(1) == "bpf_map_lookup_elem"
    assert helper_name(100000) == "helper#100000"
    with pytest.raises(ValueError, match="unknown BPF helper"):
        helper_id("no_such_helper")


@given(st.integers(0, 2**64 - 1))
def test_int_codec_roundtrip(value: int) -> None:
    codec = IntCodec(8, "map 'x'")
    assert codec.decode(codec.encode(value)) == value


@given(st.lists(st.integers(0, 2**32 - 1), max_size=50))
def test_int_codec_many(values: list[int]) -> None:
    codec = IntCodec(4, "map 'x'")
    assert codec.decode_many(codec.encode_many(values), len(values)) == values


@pytest.mark.parametrize("size", [1, 2, 4, 8])
@pytest.mark.parametrize("signed", [False, True])
def test_int_codec_lists_encode_as_tuples_and_one_by_one(size: int, signed: bool) -> None:
    """A list takes ``array.fromlist``, a tuple ``array(fmt, ...)``, and input either
    refuses (negative for unsigned, out of range, bools among ints, fds) the per-element
    path: all three give the same bytes."""
    codec = IntCodec(size, "map 'x'", signed=signed)
    low, high = (
        (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (0, (1 << 8 * size) - 1)
    )
    inputs: list[list[object]] = [
        [low, high, 0, 1, high // 3],
        [True, 2, False],
        [-1, 5] if not signed else [low, -1],
        [],
    ]
    for values in inputs:
        one_by_one = b"".join(codec.encode(v) for v in values)
        assert bytes(codec.encode_many(values)) == one_by_one
        assert bytes(codec.encode_many(tuple(values))) == one_by_one
        assert codec.encode_strided(values, 8) in (
            None,
            b"".join(codec.encode(v).ljust(8, b"\0") for v in values),
        )
    with pytest.raises(BpfError):
        codec.encode_many([1, 1 << (8 * size + 1)])
    with pytest.raises(BpfError):
        codec.encode_many([1, "two"])


def test_codec_accepts_bytes_ints_ctypes_and_fds() -> None:
    class Point(ctypes.Structure):
        _fields_ = [("x", ctypes.c_uint32), ("y", ctypes.c_uint32)]

    codec = codec_for(Point, 8, "map 'pts'")
    assert codec.decode(codec.encode(Point(1, 2))).y == 2
    assert codec.encode(b"12345678") == b"12345678"
    assert codec.encode(-1) == b"\xff" * 8

    class HasFd:
        def fileno(self) -> int:
            return 7

    assert Codec(4).encode(HasFd()) == b"\x07\0\0\0"


def test_codec_errors_name_the_map() -> None:
    codec = Codec(4, "map 'counts'")
    with pytest.raises(BpfError, match="map .counts.: value must be 4 bytes, got 3 bytes"):
        codec.encode(b"abc")
    with pytest.raises(BpfError, match="map 'counts': 4294967296 does not fit in 4 bytes"):
        codec.encode(2**32)
    with pytest.raises(BpfError, match="cannot use float"):
        codec.encode(1.5)
    with pytest.raises(BpfError, match="is 2 bytes, the map uses 4"):
        codec_for(ctypes.c_uint16, 4, "map 'counts'")


def test_parse_cpu_list() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpu_list("0") == [0]


def test_errno_meanings_depend_on_command() -> None:
    full = error_from_errno(errno.E2BIG, Cmd.MAP_UPDATE_ELEM, "map 'm'")
    assert isinstance(full, MapFullError) and "map is full" in str(full)
    assert "map 'm'" in str(full) and full.errno == errno.E2BIG
    big = error_from_errno(errno.E2BIG, Cmd.PROG_LOAD, "program 'p'")
    assert not isinstance(big, MapFullError) and "too large" in str(big)
    assert isinstance(error_from_errno(ENOTSUPP, Cmd.LINK_CREATE, "x"), NotSupportedError)
    denied = error_from_errno(errno.EPERM, Cmd.MAP_CREATE, "map 'm'")
    assert isinstance(denied, BpfPermissionError) and isinstance(denied, PermissionError)
    assert "CAP_BPF" in str(denied)
    frozen = error_from_errno(errno.EPERM, Cmd.MAP_UPDATE_ELEM, "map 'm'")
    assert "frozen" in str(frozen) and not isinstance(frozen, PermissionError)
