"""Objects without DWARF (what skeletons embed): smaller, the same object to every reader,
and verifier errors still quote the C source (line info is in .BTF.ext)."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile
from linker_objects import BPFTOOL_15

import pylibbpf as bpf
from pylibbpf.elf import ObjectSpec
from pylibbpf.errors import ObjectError
from pylibbpf.object import BpfObject
from pylibbpf.spec.strip import strip_debug

OBJECTS = ["skeleton", "loader", "ringbuf", "core_sample", "cast_event", "tcp_cc_plain"]
BPFTOOL = BPFTOOL_15


def section_names(data: bytes) -> list[str]:
    return [section.name for section in ELFFile(io.BytesIO(data)).iter_sections()]


def summary(spec: ObjectSpec) -> dict[str, Any]:
    """What an object says, without section numbers (which stripping changes)."""
    programs = {
        name: (
            p.section,
            p.insn_offset,
            p.insns,
            p.is_global,
            p.section_def,
            {
                i: (r.offset, r.symbol.name, r.symbol.section, r.symbol.value, r.type)
                for i, r in p.relocations.items()
            },
        )
        for name, p in [*spec.programs.items(), *((str(k), v) for k, v in spec.subprograms.items())]
    }
    return {
        "programs": programs,
        "maps": spec.maps,
        "datasecs": {n: (d.data, d.readonly, d.btf_id) for n, d in spec.datasecs.items()},
        "externs": spec.externs,
        "struct_ops": spec.struct_ops,
        "btf": bytes(spec.btf.raw_data) if spec.btf else None,
        "symbols": spec.object_symbols,
        "license": spec.license,
        "sections": sorted(
            n for n in spec.sections.values() if not n.startswith((".debug", ".rel.debug"))
        ),
    }


@pytest.mark.parametrize("name", OBJECTS)
def test_stripped_objects_are_smaller_and_say_the_same(
    bpf_object: Callable[[str], Path], name: str
) -> None:
    data = bpf_object(name).read_bytes()
    stripped = strip_debug(data, name)
    assert len(stripped) < len(data)
    assert not [n for n in section_names(stripped) if "debug" in n]
    kept = [n for n in section_names(data) if "debug" not in n]
    assert section_names(stripped) == kept  # .BTF and .BTF.ext among them
    original, again = BpfObject.open(data, name=name), BpfObject.open(stripped, name=name)
    assert summary(again.spec) == summary(original.spec)
    elf = ELFFile(io.BytesIO(stripped))
    assert (
        elf.get_section_by_name(".BTF.ext").data()
        == ELFFile(io.BytesIO(data)).get_section_by_name(".BTF.ext").data()
    )
    assert strip_debug(stripped, name) == stripped  # nothing left to drop


@pytest.mark.parametrize("name", ["cast_event", "tcp_cc_plain"])
def test_other_readers_take_the_stripped_object(
    bpf_object: Callable[[str], Path], tmp_path: Path, name: str
) -> None:
    """binutils' readelf finds nothing wrong, and libbpf (bpftool) opens it."""
    path = tmp_path / f"{name}.bpf.o"
    path.write_bytes(strip_debug(bpf_object(name).read_bytes()))
    if shutil.which("readelf"):
        result = subprocess.run(
            ["readelf", "-S", "-s", "-r", str(path)], capture_output=True, text=True
        )
        assert result.returncode == 0 and "warning" not in result.stderr.lower(), result.stderr
    if not os.access(BPFTOOL, os.X_OK):  # (not there, or not ours to run)
        pytest.skip(f"{BPFTOOL} is not built (libbpf 1.5's bpftool: tools/build_reference.sh)")
    result = subprocess.run(
        [str(BPFTOOL), "gen", "skeleton", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "bpf_object__open_skeleton" in result.stdout


@pytest.mark.root
def test_verifier_errors_from_the_stripped_object_quote_the_source(
    bpf_object: Callable[[str], Path],
) -> None:
    stripped = strip_debug(bpf_object("verifier_fail").read_bytes())
    assert not [n for n in section_names(stripped) if "debug" in n]
    with BpfObject.open(stripped, name="verifier_fail") as obj, pytest.raises(bpf.LoadError) as exc:
        obj.load()
    message = str(exc.value)
    assert "verifier_fail.bpf.c" in message and "return *value == 42" in message


def test_what_cannot_be_rewritten_is_a_clear_error(bpf_object: Callable[[str], Path]) -> None:
    data = bpf_object("loader").read_bytes()
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    cases = {
        "not an ELF file": b"nonsense" * 10,
        "only 64-bit": data[:4] + b"\x01" + data[5:],
        "runs past the end": data[: shoff + 100],
        "program headers": data[:0x38] + b"\x01\x00" + data[0x3A:],
    }
    for why, bad in cases.items():
        with pytest.raises(ObjectError, match=why):
            strip_debug(bad, "loader")
    assert strip_debug(strip_debug(data)) == strip_debug(data)
