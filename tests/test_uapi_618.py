"""What Linux 6.18 added to the UAPI for signed loaders, seen through pylibbpf: the
program digest the kernel computes (its tag's source), maps only one program may use
(``excl_prog_hash``), and the content hash of a frozen map the kernel reports; plus the
new attrs staying sized for older kernels."""

from __future__ import annotations

import ctypes
import errno
import hashlib

import pytest

from pylibbpf import syscall
from pylibbpf.errors import BpfError, LoadError
from pylibbpf.maps import Map
from pylibbpf.program import Program
from pylibbpf.spec.insn import assemble, ld_map_value, program_digest, return_imm
from pylibbpf.syscall import attrs, features
from pylibbpf.syscall.bpf import _used_size
from pylibbpf.syscall.fd import OwnedFd
from pylibbpf.uapi import MapType, ProgType


def test_new_fields_leave_old_attrs_short() -> None:
    """An attr that sets none of 6.18's fields is sent at its old size (6.1 accepts it)."""
    create = attrs.MapCreateAttr(map_type=MapType.ARRAY, key_size=4, value_size=4, max_entries=1)
    assert _used_size(create) == 16
    load = attrs.ProgLoadAttr(prog_type=1, insn_cnt=2)
    assert _used_size(load) == 8
    load.keyring_id = 1
    assert _used_size(load) == ctypes.sizeof(attrs.ProgLoadAttr)
    assert attrs.ProgLoadAttr.keyring_id.offset == 164  # after signature, signature_size
    assert attrs.MapCreateAttr.excl_prog_hash.offset == 80
    assert attrs.MapInfo.hash.offset == 88


def test_digest_ignores_map_fds() -> None:
    assert program_digest(assemble(ld_map_value(1, 3, 8), return_imm(0))) == program_digest(
        assemble(ld_map_value(1, 42, 0), return_imm(0))
    )
    assert program_digest(assemble(return_imm(0))) != program_digest(assemble(return_imm(1)))


def _require_618() -> None:
    if not features.has_exclusive_maps():
        pytest.skip("this kernel has no exclusive maps or map hashes (Linux 6.18+)")


@pytest.mark.root
def test_exclusive_map_admits_only_its_program() -> None:
    _require_618()
    code = assemble(ld_map_value(1, 0, 4), return_imm(0))
    digest = program_digest(code)
    fd = syscall.map_create(MapType.ARRAY, 4, 8, 1, name="excl", excl_prog_hash=digest)
    with Map.from_fd(OwnedFd(fd, "map 'excl'")) as exclusive:
        with Program.from_insns(
            assemble(ld_map_value(1, exclusive.fd, 4), return_imm(0)), ProgType.SOCKET_FILTER
        ) as admitted:
            assert admitted.info().tag == digest[:8].hex()  # the kernel's digest, ours
        with pytest.raises(LoadError) as refused:
            Program.from_insns(
                assemble(ld_map_value(1, exclusive.fd, 4), return_imm(1)), ProgType.SOCKET_FILTER
            )
    assert refused.value.errno == errno.EACCES
    assert "excl_prog_hash" in refused.value.log


@pytest.mark.root
def test_frozen_map_content_hash() -> None:
    _require_618()
    with Map.create(MapType.ARRAY, 4, 12, 2, name="hashed") as hashed:
        hashed[0], hashed[1] = b"a" * 12, b"b" * 12
        with pytest.raises(BpfError, match="frozen") as unfrozen:
            hashed.info(with_hash=True)
        assert unfrozen.value.errno == errno.EPERM
        hashed.freeze()
        values = b"a" * 12 + bytes(4) + b"b" * 12 + bytes(4)  # each value 8-byte aligned
        assert hashed.info(with_hash=True).hash == hashlib.sha256(values).digest()
        assert hashed.info().hash == b""
