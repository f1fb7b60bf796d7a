"""The test harness itself: clang builds tests/bpf/*.bpf.c against the running kernel's
vmlinux.h, and the result runs in the kernel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

import pylibbpf as bpf

pytestmark = pytest.mark.root


def _section(path: Path, name: str) -> bytes:
    with path.open("rb") as f:
        elf = ELFFile(f)
        section = elf.get_section_by_name(name)
        assert section is not None, f"{path} has no section {name}"
        return bytes(section.data())


def test_compiled_program_runs(bpf_object: Callable[[str], Path]) -> None:
    obj = bpf_object("xdp_ethertype")
    assert bpf_object("xdp_ethertype") == obj  # cached by content
    code = _section(obj, "xdp")
    with bpf.Program.from_insns(code, bpf.ProgType.XDP, name="xdp_ethertype") as prog:
        ipv4 = bytes(12) + b"\x08\x00" + bytes(50)
        arp = bytes(12) + b"\x08\x06" + bytes(50)
        assert prog.test_run(ipv4).retval == bpf.XdpAction.PASS
        assert prog.test_run(arp).retval == bpf.XdpAction.DROP
        # the kernel refuses XDP test input shorter than an ethernet header
        with pytest.raises(bpf.BpfError, match="'xdp_ethertype'.*test_run rejected the input"):
            prog.test_run(bytes(10))
