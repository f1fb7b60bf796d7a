"""The on-disk index of the kernel's BTF is trusted only as a whole: private files in a
private directory, bound to the BTF it indexes, and signed; anything else is rebuilt.
Each case runs a fresh process with its own cache directory (no privileges needed,
except to hand a directory to another user)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path

import pytest

from pylibbpf.btf import Btf
from pylibbpf.btf.parse import read_btf_file
from pylibbpf.syscall import btf_index

VMLINUX = Path("/sys/kernel/btf/vmlinux")
pytestmark = pytest.mark.skipif(not VMLINUX.exists(), reason="kernel has no BTF")
ROOT = Path(__file__).resolve().parent.parent

_LOAD = (
    "import pylibbpf.btf as B\n"
    "b = B.Btf.load_vmlinux()\n"
    "print(b.find('task_struct', B.Kind.STRUCT).id, len(b.raw_offsets))\n"
)


def load_in_fresh_process(cache: Path) -> str:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.run(
        [sys.executable, "-c", _LOAD],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout


def the_index(cache: Path) -> Path:
    (index,) = (cache / "pylibbpf").glob("btf-vmlinux-*.idx")
    return index


def test_index_files_are_private(tmp_path: Path) -> None:
    load_in_fresh_process(tmp_path)
    directory = tmp_path / "pylibbpf"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in (the_index(tmp_path), directory / "index-key"):
        assert stat.S_IMODE(name.stat().st_mode) == 0o600


def test_an_index_right_where_spot_checks_look_but_wrong_elsewhere_is_rebuilt(
    tmp_path: Path,
) -> None:
    """The attack of issue #15: an index edited between the offsets a sampling check
    reads. It passes that check, but not the MAC over the whole index."""
    first = load_in_fresh_process(tmp_path)
    index = the_index(tmp_path)
    good = index.read_bytes()
    header = btf_index._HEADER
    magic, length, crc, count = header.unpack_from(good)
    offsets = array("I")
    offsets.frombytes(good[header.size : header.size + 4 * count])
    stride = max(1, count // btf_index._CHECKS)
    assert stride > 4, "vmlinux BTF is too small to hide an edit between spot checks"
    forged = array("I", offsets)
    for sample in range(0, count - 1 - stride, stride):
        forged[sample + stride // 2] += 1  # between two checked records: never read
    # The forger recomputes everything that is not secret (the MAC needs the key).
    payload = forged.tobytes()
    tampered = header.pack(magic, length, crc, count) + payload + good[-32:]
    index.write_bytes(tampered)
    data = read_btf_file(VMLINUX)
    assert btf_index._index_consistent(Btf(data, offsets=forged))  # the old defence passes
    assert load_in_fresh_process(tmp_path) == first  # the right types, from a fresh walk
    assert index.read_bytes() == good  # and the index was rebuilt


@pytest.mark.parametrize(
    "cut", [lambda good: good[:-1], lambda good: good + b"\0" * 4, lambda good: good[:40]]
)
def test_a_truncated_or_extended_index_is_rebuilt(
    tmp_path: Path, cut: Callable[[bytes], bytes]
) -> None:
    """The index is read straight into its arrays: one a byte short, four bytes long, or
    cut inside its offsets is refused as a whole (no partial arrays), and written again."""
    first = load_in_fresh_process(tmp_path)
    index = the_index(tmp_path)
    good = index.read_bytes()
    index.write_bytes(cut(good))
    assert load_in_fresh_process(tmp_path) == first
    assert index.read_bytes() == good


def test_a_cache_directory_owned_by_someone_else_is_not_used(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the directory to another user")
    directory = tmp_path / "pylibbpf"
    directory.mkdir(mode=0o777)
    os.chown(directory, 65534, 65534)  # nobody's: they could swap the index under us
    first = load_in_fresh_process(tmp_path)
    assert first.split()[0].isdigit()  # BTF still loads, by walking it
    assert list(directory.iterdir()) == []  # and nothing was written there


def test_a_wide_open_cache_directory_of_ours_is_made_private(tmp_path: Path) -> None:
    directory = tmp_path / "pylibbpf"
    directory.mkdir()
    os.chmod(directory, 0o777)
    load_in_fresh_process(tmp_path)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert the_index(tmp_path).exists()


def test_an_index_file_others_can_write_is_ignored(tmp_path: Path) -> None:
    first = load_in_fresh_process(tmp_path)
    index = the_index(tmp_path)
    good = index.read_bytes()
    index.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # a bad MAC
    os.chmod(index, 0o666)
    assert load_in_fresh_process(tmp_path) == first
    assert index.read_bytes() == good and stat.S_IMODE(index.stat().st_mode) == 0o600


def test_a_signed_boot_note_spares_the_crc_and_a_forged_one_is_ignored(tmp_path: Path) -> None:
    """The running kernel's BTF is the same until the next boot: a note of this boot (its
    id, the BTF's length and CRC32), signed like the index, lets the next process find the
    index without a CRC32 over megabytes. A note the key did not sign is ignored."""
    first = load_in_fresh_process(tmp_path)
    (note,) = (tmp_path / "pylibbpf").glob("btf-vmlinux-boot-*.note")
    no_crc = (
        "import zlib\n"
        "def refuse(*a):\n"
        "    raise AssertionError('crc32 computed')\n"
        "zlib.crc32 = refuse\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    run = [sys.executable, "-c", no_crc + _LOAD]
    assert subprocess.run(run, env=env, capture_output=True, text=True, cwd=ROOT).stdout == first
    good = note.read_bytes()
    magic, boot, length, crc, *identity = btf_index._NOTE.unpack_from(good)
    forged = btf_index._NOTE.pack(magic, boot, length, crc ^ 1, *identity)
    note.write_bytes(forged + good[btf_index._NOTE.size :])
    assert subprocess.run(run, env=env, capture_output=True, text=True, cwd=ROOT).returncode
    assert load_in_fresh_process(tmp_path) == first  # recomputed, and the note rewritten
    assert btf_index._NOTE.unpack_from(note.read_bytes())[:4] == (magic, boot, length, crc)


# A fresh process whose index is vouched for as soon as it is written (the margin that
# lets any later write stamp a new ctime is shortened: the test waits for it below), and
# that reports the largest payload it checked a MAC over.
_SETTLE = (
    "import time\n"
    "import pylibbpf.syscall.btf_index as X\n"
    "X._SETTLED_NS = 50_000_000\n"
    "checked = [0]\n"
    "signed = X._signed\n"
    "def counting(key, header, *payload):\n"
    "    checked[0] = max(checked[0], sum(memoryview(p).nbytes for p in payload))\n"
    "    return signed(key, header, *payload)\n"
    "X._signed = counting\n"
)


def load_counting_macs(cache: Path) -> tuple[str, int]:
    """(what the load printed, the largest payload a MAC was computed over)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", _SETTLE + _LOAD + "print(checked[0])\n"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.splitlines()
    return out[0], int(out[1])


def test_the_boot_note_vouches_for_the_index_file_it_checked_and_an_edit_voids_that(
    tmp_path: Path,
) -> None:
    """Once a process has checked the whole index's MAC, the signed note names that file
    (device, inode, size, times), and the next processes of the boot skip the MAC over
    the megabyte. An edit in place stamps a new ctime: the MAC is checked, and the forged
    index rebuilt."""
    first = load_in_fresh_process(tmp_path)
    index = the_index(tmp_path)
    size = index.stat().st_size
    time.sleep(0.1)  # past the (shortened) settling margin
    assert load_counting_macs(tmp_path) == (first.split("\n")[0], size - 56)  # checked
    (note,) = (tmp_path / "pylibbpf").glob("btf-vmlinux-boot-*.note")
    identity = btf_index._NOTE.unpack_from(note.read_bytes())[4:]
    stamp = index.stat()
    assert identity == (stamp.st_dev, stamp.st_ino, size, stamp.st_mtime_ns, stamp.st_ctime_ns)
    assert load_counting_macs(tmp_path)[1] == 0  # vouched for: no MAC over the index
    good = index.read_bytes()
    header = btf_index._HEADER
    offsets = array("I")
    offsets.frombytes(good[header.size : header.size + 4 * header.unpack_from(good)[3]])
    stride = max(1, len(offsets) // btf_index._CHECKS)
    offsets[stride * 10 + stride // 2] += 1  # between two spot checks: only the MAC sees it
    assert btf_index._index_consistent(Btf(read_btf_file(VMLINUX), offsets=offsets))
    with index.open("r+b") as f:  # in place: the same inode, size and (restored) mtime
        f.write(good[: header.size] + offsets.tobytes())
    os.utime(index, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert index.stat().st_ctime_ns != stamp.st_ctime_ns
    printed, checked = load_counting_macs(tmp_path)
    assert (printed, checked) == (first.split("\n")[0], size - 56)  # refused by the MAC
    assert index.read_bytes() == good  # and rebuilt
