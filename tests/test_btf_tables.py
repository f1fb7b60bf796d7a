"""Tables a C dump derives from the kernel's BTF (the check's verdict, the definition order,
the C names, which struct bodies are plain, the forward declarations' order, the named
types declared, the records' kinds and third words, the string offsets, the strings that
name types) are kept beside the on-disk index, signed, and reused by later processes: the
header stays byte for byte the one computed from scratch, and a table edited or put in
another's place is ignored. Only the running kernel's own BTF gets a store."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pylibbpf.btf import Btf
from pylibbpf.btf.tables import STORE
from pylibbpf.syscall import btf_index
from pylibbpf.syscall.kernel_btf import load_vmlinux

VMLINUX = Path("/sys/kernel/btf/vmlinux")
pytestmark = pytest.mark.skipif(not VMLINUX.exists(), reason="kernel has no BTF")
ROOT = Path(__file__).resolve().parent.parent
TABLES = (
    "checked_1",
    "c_order_1",
    "c_names_1",
    "c_layout_1",
    "c_forward_1",
    "c_named_2",
    "records_1",
    "string_offsets_1",
    "type_strings_2",
)


def dump_in_fresh_process(cache: Path) -> str:
    """``pylibbpf btf dump file /sys/kernel/btf/vmlinux format c`` with its own cache."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pylibbpf", "btf", "dump", "file", str(VMLINUX)]
    return subprocess.run(
        [*command, "format", "c"], env=env, capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout


def table_files(cache: Path) -> dict[str, Path]:
    found = {}
    for path in (cache / "pylibbpf").glob("btf-vmlinux-*.tbl"):
        (table,) = [name for name in TABLES if path.name.endswith(f"-{name}.tbl")]
        found[table] = path
    return found


def test_kept_tables_give_the_header_computed_from_scratch(tmp_path: Path) -> None:
    from_scratch = Btf.from_file(VMLINUX).dump_c()  # a file's BTF: no store, all derived
    first = dump_in_fresh_process(tmp_path)
    kept = table_files(tmp_path)
    assert sorted(kept) == sorted(TABLES)
    for path in kept.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stamps = {name: path.stat().st_mtime_ns for name, path in kept.items()}
    second = dump_in_fresh_process(tmp_path)  # from the tables
    assert {name: path.stat().st_mtime_ns for name, path in table_files(tmp_path).items()} == (
        stamps
    )
    assert first == second == from_scratch
    assert "struct task_struct {" in first


def test_an_edited_table_is_ignored_and_derived_again(tmp_path: Path) -> None:
    expected = dump_in_fresh_process(tmp_path)
    order = table_files(tmp_path)["c_order_1"]
    data = bytearray(order.read_bytes())
    data[100] ^= 1  # another definition there, the MAC as it was
    order.write_bytes(bytes(data))
    assert dump_in_fresh_process(tmp_path) == expected
    assert order.read_bytes() != bytes(data)  # written again, signed


def test_signed_tables_name_their_table_and_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    directory = btf_index.private_dir(create=True)
    assert directory is not None
    key = btf_index._key(directory)
    assert key is not None
    store = btf_index.SignedTables(directory, key, "vmlinux", 1000, 0x1234)
    store.put("first", b"\x01\x02\x03")
    store.put("second", b"\x04")
    assert store.get("first") == b"\x01\x02\x03" and store.get("second") == b"\x04"
    assert store.get("third") is None
    files = {path.name.rsplit("-", 1)[1]: path for path in Path(directory).glob("*.tbl")}
    shutil.copyfile(files["first.tbl"], files["second.tbl"])  # one table for another
    assert store.get("second") is None
    other_content = btf_index.SignedTables(directory, key, "vmlinux", 1000, 0x1235)
    assert other_content.get("first") is None
    other_key = btf_index.SignedTables(directory, bytes(32), "vmlinux", 1000, 0x1234)
    assert other_key.get("first") is None


def test_only_the_running_kernels_btf_has_a_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    copy = tmp_path / "vmlinux"
    shutil.copyfile(VMLINUX, copy)  # same bytes, but anyone could have written them
    assert STORE not in load_vmlinux(copy).memo
    assert STORE not in Btf.from_file(VMLINUX).memo
