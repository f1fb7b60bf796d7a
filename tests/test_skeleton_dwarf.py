"""``gen skeleton --type`` for a record only DWARF describes (libbpf-bootstrap's case: a
ring buffer record used through the pointer ``bpf_ringbuf_reserve`` returns), with the
layout the C compiler gives it, decoding what the kernel program sends."""

from __future__ import annotations

import ctypes
import importlib.util
import io
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

from pylibbpf import cli
from pylibbpf.btf.dwarf import named_ctype, type_from_dwarf
from pylibbpf.errors import ObjectError
from pylibbpf.object import BpfObject
from pylibbpf.ringbuf import RingBuffer
from pylibbpf.skelgen import skeleton_for_file
from pylibbpf.spec.strip import strip_debug

TESTS = Path(__file__).resolve().parent
TOOLS = Path(sys.executable).parent


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"dwarf_{id(path)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def module(bpf_object: Callable[[str], Path], tmp_path: Path) -> ModuleType:
    out = tmp_path / "cast_event_skel.py"
    assert cli.main(["gen", "skeleton", str(bpf_object("cast_event")), "-o", str(out),
                     "--type", "event"]) == 0  # fmt: skip
    return import_file(out)


def compiler_layout(tmp_path: Path) -> dict[str, Any]:
    """What gcc says about struct event: sizeof, (offset, size) per member, and the bytes
    of a record filled as the BPF program fills it."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (scripts/setup installs it)")
    binary = tmp_path / "layout"
    source = TESTS / "programs" / "cast_event_layout.c"
    subprocess.run([gcc, "-O2", "-o", str(binary), str(source)], check=True)
    out = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    layout: dict[str, Any] = {}
    for line in out.splitlines():
        key, *values = line.split()
        layout[key] = values[0] if key == "image" else tuple(int(v) for v in values)
    return layout


def test_the_premise_the_record_is_not_in_btf(bpf_object: Callable[[str], Path]) -> None:
    obj = BpfObject.open(bpf_object("cast_event"))
    assert obj.spec.btf is not None and not obj.spec.btf.find_all("event")


def test_a_record_from_dwarf_has_the_compilers_layout(module: ModuleType, tmp_path: Path) -> None:
    layout = compiler_layout(tmp_path)
    event: Any = module.Event
    assert ctypes.sizeof(event) == layout["sizeof"][0]
    members = {k: v for k, v in layout.items() if k not in ("sizeof", "image")}
    assert len(members) == 14
    for member, (offset, size) in members.items():
        field = getattr(event, member)  # u_int/u_chars: promoted from the anonymous union
        assert (field.offset, field.size) == (offset, size), member
    record = filled(event)
    assert record.kind == module.EventKind.EVENT_WIDE
    assert bytes(record).hex() == layout["image"]  # bitfields, union and padding included
    assert record.u_chars == b"ABC"


@pytest.mark.parametrize("version", [2, 3, 4, 5])
def test_every_dwarf_version_gives_the_same_bytes(tmp_path: Path, version: int) -> None:
    """DWARF 2/3 place bitfields from the storage unit's top bit (DW_AT_bit_offset) and
    may give member offsets as expressions; 4/5 use DW_AT_data_bit_offset."""
    from conftest import vmlinux_h_dir

    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None:
        pytest.skip("clang is not installed (scripts/setup installs clang-19)")
    path = tmp_path / "cast_event.bpf.o"
    source = TESTS / "bpf" / "cast_event.bpf.c"
    flags = ["-O2", "-g", f"-gdwarf-{version}", "-target", "bpf", "-D__TARGET_ARCH_x86"]
    includes = ["-I", str(vmlinux_h_dir()), "-I", str(TESTS / "bpf")]
    subprocess.run([clang, *flags, *includes, "-c", str(source), "-o", str(path)], check=True)
    data = path.read_bytes()
    event = named_ctype(data, BpfObject.open(data).spec.btf, "event", "cast_event")
    assert bytes(filled(event)).hex() == compiler_layout(tmp_path)["image"]


def filled(event: Any) -> Any:
    """A record with the values cast_event.h's EVENT_FILL and the layout program use."""
    record = event(pid=100, ppid=1, comm=b"python3", exit_code=3, duration_ns=0x0102030405060708)
    record.filename = b"fn"
    record.exit_event = True
    record.inner[1].a = -2
    record.inner[1].b[2] = 9
    record.f_lo, record.f_mid, record.f_neg = 5, 300, -7
    record.u_int = 0x00434241
    record.kind = -1  # EVENT_WIDE
    record.grid[1][2] = 12
    record.tail = 0x1122334455667788
    return record


def test_decoding_by_type_name_falls_back_to_dwarf(
    bpf_object: Callable[[str], Path], tmp_path: Path
) -> None:
    """``named_ctype``: what a loader or the CLI calls to decode records by type name."""
    data = bpf_object("cast_event").read_bytes()
    btf = BpfObject.open(data, name="cast_event").spec.btf
    event = named_ctype(data, btf, "event", "cast_event")
    assert ctypes.sizeof(event) == compiler_layout(tmp_path)["sizeof"][0]
    assert event.from_buffer_copy(bytes(range(ctypes.sizeof(event)))).pid == 0x03020100
    with pytest.raises(ObjectError, match="unused_missing __attribute__"):
        named_ctype(data, btf, "missing", "cast_event")


def test_corrupt_dwarf_is_an_object_error(bpf_object: Callable[[str], Path]) -> None:
    """pyelftools raises all sorts on damaged DWARF: each one becomes an ObjectError."""
    data = bpf_object("cast_event").read_bytes()
    debug_info = ELFFile(io.BytesIO(data)).get_section_by_name(".debug_info")
    start, size = debug_info["sh_offset"], debug_info["sh_size"]
    rng = random.Random(5)
    for _ in range(10):
        damaged = bytearray(data)
        for _ in range(20):
            damaged[start + rng.randrange(size)] = rng.randrange(256)
        try:
            found = type_from_dwarf(bytes(damaged), "event", "cast_event")
            if found is not None:
                found[0].ctype(found[1])
        except ObjectError as error:
            assert "cast_event" in str(error)


def test_the_generated_module_is_clean(module: ModuleType, tmp_path: Path) -> None:
    if shutil.which("ruff", path=str(TOOLS)) is None or not (TOOLS / "mypy").exists():
        pytest.skip("ruff/mypy are not installed (scripts/setup installs them)")
    path = Path(module.__file__ or "")
    env = {**os.environ, "MYPYPATH": str(TESTS.parent)}
    for argv in (
        [TOOLS / "ruff", "check", "--isolated", "--select", "E,F,W,I,B,UP,SIM,RUF,N", path.name],
        [TOOLS / "ruff", "format", "--isolated", "--check", path.name],
        [TOOLS / "mypy", "--strict", "--no-incremental", path.name],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, cwd=path.parent, env=env)
        assert result.returncode == 0, f"{argv[1:]}:\n{result.stdout}{result.stderr}"


def test_without_dwarf_the_error_says_how_to_keep_the_type(
    bpf_object: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "cast_event.bpf.o"
    path.write_bytes(strip_debug(bpf_object("cast_event").read_bytes()))
    with pytest.raises(ObjectError) as error:
        skeleton_for_file(str(path), types=("event",))
    message = str(error.value)
    assert "no struct, union, enum or typedef named 'event'" in message
    assert "no DWARF" in message
    assert "struct event *unused_event __attribute__((unused));" in message


@pytest.mark.root
def test_records_the_kernel_sends_decode_through_the_dwarf_type(module: ModuleType) -> None:
    records: list[Any] = []
    with module.CastEventSkel.open() as skel:
        skel.rodata.target_pid = os.getpid()
        skel.load()
        skel.attach()
        os.getppid()
        with RingBuffer(
            skel.maps.rb, lambda v: records.append(module.Event.from_buffer_copy(v))
        ) as ring:
            assert ring.consume() == 1
    (record,) = records
    comm = Path("/proc/self/comm").read_text().strip()[:15]
    expected = {
        "pid": os.getpid(),
        "ppid": os.getppid(),  # read through CO-RE from task_struct
        "exit_code": 3,
        "duration_ns": 0x0102030405060708,
        "comm": comm,
        "filename": "fn",
        "exit_event": True,
        "inner": [{"a": 0, "b": [0, 0, 0]}, {"a": -2, "b": [0, 0, 9]}],
        "f_lo": 5,
        "f_mid": 300,
        "f_neg": -7,
        "u_int": 0x00434241,
        "u_chars": "ABC",
        "kind": -1,
        "ptr": 0,
        "grid": [[0, 0, 0], [0, 0, 12]],
        "tail": 0x1122334455667788,
    }
    assert record.asdict() == expected
    assert json.loads(json.dumps(record.asdict())) == expected
    assert repr(record).startswith(f"Event(pid={os.getpid()}, ppid={os.getppid()}, ")
    assert f"comm={comm!r}" in repr(record)
