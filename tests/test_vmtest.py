"""The VM runner's pure parts, without booting anything: kernel images and modules, the
initramfs archive, shard planning, guest records, JUnit output, the pytest plugin's
argument handling, and that the plugin does nothing unless asked."""

from __future__ import annotations

import ast
import json
import lzma
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pylibbpf.vmtest import guest, initramfs, kernels, pvh, runner
from pylibbpf.vmtest.matrix import guest_args
from pylibbpf.vmtest.results import CaseResult, KernelResults, Records, kernel_id, write_junit

ROOT = Path(__file__).resolve().parent.parent


def fake_bzimage(path: Path, version: bytes) -> Path:
    """The part of an x86 boot image the runner reads: the setup header's version pointer."""
    data = bytearray(0x800)
    data[0x202:0x206] = b"HdrS"
    data[0x20E:0x210] = (0x600 - 0x200).to_bytes(2, "little")
    data[0x600 : 0x600 + len(version)] = version
    path.write_bytes(bytes(data))
    return path


def test_release_comes_from_the_image_header(tmp_path: Path) -> None:
    image = fake_bzimage(tmp_path / "bzImage", b"6.6.30-custom (me@host) #1 SMP\0")
    assert kernels.image_release(image) == "6.6.30-custom"
    kernel = kernels.resolve(f"mine={image}")
    assert (kernel.label, kernel.release, kernel.modules) == ("mine", "6.6.30-custom", None)


def test_images_that_are_not_kernels_are_refused_by_name(tmp_path: Path) -> None:
    junk = tmp_path / "vmlinuz"
    junk.write_bytes(b"\0" * 4096)
    with pytest.raises(kernels.KernelError, match=r"vmlinuz is not an x86 bzImage"):
        kernels.resolve(str(junk))
    with pytest.raises(kernels.KernelError, match=r"nowhere/vmlinuz does not exist"):
        kernels.resolve(str(tmp_path / "nowhere" / "vmlinuz"))


def test_modules_next_to_an_unpacked_package_are_found(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    image = fake_bzimage(tmp_path / "boot" / "vmlinuz-6.9.1", b"6.9.1 #1\0")
    modules = tmp_path / "lib" / "modules" / "6.9.1"
    modules.mkdir(parents=True)
    (modules / "modules.order").write_text("")
    (modules / "modules.dep").write_text("")
    assert kernels.resolve(str(image)).modules == modules


def elf_with_note(name: bytes, kind: int) -> bytes:
    """A minimal ELF64 whose one program header is a PT_NOTE holding one note."""
    note = struct.pack("<III", len(name) + 1, 4, kind) + name + b"\0" * (4 - len(name) % 4)
    note += b"\0\0\0\x01"
    header = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    program = struct.pack("<IIQQQQQQ", 4, 4, 120, 0, 0, len(note), len(note), 4)
    return header + program + note


def test_pvh_entry_note_is_recognised() -> None:
    assert pvh.has_pvh_entry(elf_with_note(b"Xen", 18))
    assert not pvh.has_pvh_entry(elf_with_note(b"Xen", 17))
    assert not pvh.has_pvh_entry(elf_with_note(b"GNU", 18))
    assert not pvh.has_pvh_entry(b"MZ not an ELF")


def test_bzimage_payload_is_unpacked_and_cached_once(tmp_path: Path) -> None:
    vmlinux = elf_with_note(b"Xen", 18)
    payload = lzma.compress(vmlinux, format=lzma.FORMAT_XZ) + len(vmlinux).to_bytes(4, "little")
    image = bytearray(fake_bzimage(tmp_path / "bzImage", b"6.6.0 #1\0").read_bytes())
    image[0x1F1] = 3  # setup sectors: the protected-mode code starts at (3 + 1) * 512
    image[0x248:0x250] = struct.pack("<II", 0x100, len(payload))
    image += bytes(0x100) + payload
    (tmp_path / "bzImage").write_bytes(bytes(image))
    booted = pvh.bootable(tmp_path / "bzImage", tmp_path / "cache")
    assert booted != tmp_path / "bzImage" and booted.read_bytes() == vmlinux
    assert pvh.bootable(tmp_path / "bzImage", tmp_path / "cache") == booted
    plain = fake_bzimage(tmp_path / "old", b"4.19.0 #1\0")  # no payload: boot it as it is
    assert pvh.bootable(plain, tmp_path / "cache") == plain


def write_modules(root: Path) -> Path:
    modules = root / "lib" / "modules" / "6.1.0-test"
    (modules / "kernel" / "fs").mkdir(parents=True)
    (modules / "modules.dep").write_text(
        "kernel/fs/9p.ko.xz: kernel/net/9pnet.ko.xz kernel/fs/netfs.ko.xz\n"
        "kernel/net/9pnet_virtio.ko.xz: kernel/net/9pnet.ko.xz kernel/virtio_ring.ko.xz\n"
        "kernel/net/9pnet.ko.xz:\nkernel/fs/netfs.ko.xz:\nkernel/virtio_ring.ko.xz:\n"
        "kernel/fs/overlay.ko.xz:\n"
    )
    (modules / "modules.builtin").write_text("kernel/drivers/virtio/virtio_pci.ko\n")
    return modules


def test_boot_modules_load_dependencies_first_and_skip_builtins(tmp_path: Path) -> None:
    modules = write_modules(tmp_path)
    order = [p.name for p in initramfs.module_closure(modules, initramfs.BOOT_MODULES)]
    assert order == [
        "9pnet.ko.xz",
        "virtio_ring.ko.xz",
        "9pnet_virtio.ko.xz",
        "netfs.ko.xz",
        "9p.ko.xz",
        "overlay.ko.xz",
    ]
    with pytest.raises(kernels.KernelError, match="module vsock is neither built in"):
        initramfs.module_closure(modules, ("vsock",))


def test_initramfs_archive_unpacks_with_cpio(tmp_path: Path) -> None:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox is not installed (scripts/test installs busybox-static)")
    archive = initramfs.CpioWriter()
    archive.add("bin", b"", 0o040755)
    archive.add("bin/tool", b"#!/bin/sh\necho hi\n", 0o100755)
    archive.add("odd-size", b"x" * 5, 0o100644)
    (tmp_path / "a.cpio").write_bytes(archive.finish())
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([busybox, "cpio", "-id", "-F", str(tmp_path / "a.cpio")], cwd=out, check=True)
    assert (out / "bin" / "tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (out / "bin" / "tool").stat().st_mode & 0o777 == 0o755
    assert (out / "odd-size").read_bytes() == b"xxxxx"


def test_guest_setup_overlays_each_writable_tree_once(tmp_path: Path) -> None:
    (tmp_path / "project" / "sub").mkdir(parents=True)
    (tmp_path / "home").mkdir()
    kernel = kernels.Kernel("6.1", tmp_path / "vmlinuz", "6.1.0-test", write_modules(tmp_path))
    spec = guest.GuestSpec(
        "6.1",
        kernel,
        tmp_path,
        ["pytest", "-k", "a b"],
        tmp_path / "project",
        env={"HOME": "/root", "ODD": "it's"},
        writable=[tmp_path / "project" / "sub", tmp_path / "home", tmp_path / "project"],
    )
    setup = guest.setup_script(spec)
    assert setup.count("mount -t overlay") == 2
    assert f"lowerdir=/newroot{tmp_path}/project," in setup
    assert "/lib/modules/6.1.0-test" in setup
    script = guest.guest_script(spec)
    assert "export ODD='it'\"'\"'s'" in script
    assert "pytest -k 'a b'" in script


def test_shards_balance_known_durations_and_keep_modules_whole() -> None:
    nodeids = [f"tests/test_{m}.py::test_{i}" for m in "abc" for i in range(4)]
    durations = {f"6.1:{n}": (10.0 if "test_a" in n else 1.0) for n in nodeids}
    kernel = kernels.Kernel("6.1", Path("/vmlinuz"), "6.1.0", None)
    options = runner.Options([kernel], [], Path("/r"), Path("/c"), jobs=2, select=nodeids)
    units = runner.plan(options, durations)
    assert [(u.name, u.estimate) for u in units] == [("6.1.1", 24.0), ("6.1.2", 24.0)]
    for unit in units:
        assert unit.select is not None
        assert unit.select == [n for n in nodeids if n in unit.select]  # collection order
        assert sum("test_a.py" in n for n in unit.select) == 2  # the slow module, cut in two
    first = units[0].select or []
    assert all(("test_b.py" in n) for n in first if "test_a" not in n) or all(
        ("test_c.py" in n) for n in first if "test_a" not in n
    )  # the fast modules stay whole


def test_one_guest_per_kernel_when_the_jobs_cover_the_kernels() -> None:
    kernels_ = [kernels.Kernel(k, Path("/v"), k, None) for k in ("6.1", "6.12")]
    options = runner.Options(kernels_, [], Path("/r"), Path("/c"), jobs=2)
    assert [(u.name, u.select) for u in runner.plan(options)] == [("6.1", None), ("6.12", None)]


def test_records_fold_test_phases_into_one_outcome(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    events = [
        {"event": "collected", "count": 4, "nodeids": ["a", "b", "c", "d"]},
        {"event": "start", "nodeid": "a"},
        {"event": "report", "nodeid": "a", "when": "setup", "outcome": "passed", "duration": 1},
        {
            "event": "report",
            "nodeid": "a",
            "when": "call",
            "outcome": "failed",
            "text": "E   assert 1 == 2",
            "duration": 2,
        },
        {"event": "report", "nodeid": "a", "when": "teardown", "outcome": "passed"},
        {
            "event": "report",
            "nodeid": "b",
            "when": "setup",
            "outcome": "skipped",
            "text": "no BTF on 6.1",
        },
        {"event": "report", "nodeid": "b", "when": "teardown", "outcome": "passed"},
        {"event": "report", "nodeid": "c", "when": "setup", "outcome": "passed"},
        {
            "event": "report",
            "nodeid": "c",
            "when": "call",
            "outcome": "skipped",
            "xfail": "known",
            "text": "",
        },
        {
            "event": "report",
            "nodeid": "c",
            "when": "teardown",
            "outcome": "failed",
            "text": "E   leaked a pin",
        },
        {"event": "start", "nodeid": "d"},
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + '{"event": "rep')
    records = Records(path)
    finished = records.update()
    assert [(r.nodeid, r.outcome) for r in finished] == [
        ("a", "failed"),
        ("b", "skipped"),
        ("c", "error"),
    ]
    assert finished[0].duration == 3 and finished[1].text == "no BTF on 6.1"
    assert records.collected == 4 and records.running == "d"
    with path.open("a") as file:  # the half-written line completes later
        file.write('ort", "nodeid": "d", "when": "teardown", "outcome": "passed"}\n')
    assert [r.nodeid for r in records.update()] == ["d"]


def test_junit_names_every_test_by_kernel(tmp_path: Path) -> None:
    kernel = KernelResults("6.1", elapsed=12.5)
    for result in (
        CaseResult("tests/test_x.py::test_ok", "passed", duration=0.5),
        CaseResult("tests/test_x.py::test_bad[a]", "failed", "E   assert 1 == 2\nmore"),
        CaseResult("tests/test_x.py::TestC::test_skip", "skipped", "needs 6.4"),
    ):
        kernel.results[result.nodeid] = result
    kernel.problems.append("6.1: killed after 900 s (--timeout)")
    write_junit(kernel, tmp_path / "j.xml")
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"test_ok[6.1]", "test_bad[a-6.1]", "test_skip[6.1]", "guest[6.1]"}
    failure = cases["test_bad[a-6.1]"].find("failure")
    assert failure is not None and failure.get("message") == "assert 1 == 2"
    assert cases["test_skip[6.1]"].get("classname") == "tests.test_x.TestC"


def test_kernel_ids_follow_pytest_parameter_ids() -> None:
    assert kernel_id("test_x", "6.1") == "test_x[6.1]"
    assert kernel_id("test_x[a-b]", "6.12") == "test_x[a-b-6.12]"


def test_host_only_options_stay_on_the_host() -> None:
    args = [
        "-x",
        "--bpf-kernels",
        "6.1,6.12",
        "--bpf-jobs=2",
        "--junitxml",
        "out.xml",
        "-k",
        "maps",
        "--lf",
        "tests/test_a.py",
        "-n",
        "4",
    ]
    assert guest_args(args) == ["-x", "-k", "maps", "tests/test_a.py"]


def test_plugin_does_nothing_without_bpf_kernels(tmp_path: Path) -> None:
    """Loaded by every pytest run where pylibbpf is installed: it must not change one."""
    (tmp_path / "test_plain.py").write_text(
        "import sys\n\n"
        "def test_plain():\n"
        "    assert 'pylibbpf.vmtest.matrix' not in sys.modules\n"
        "    assert 'pylibbpf.vmtest.runner' not in sys.modules\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "pylibbpf.vmtest.plugin",
            "-p",
            "no:cacheprovider",
            "-v",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "test_plain.py::test_plain PASSED" in result.stdout


def test_vm_suite_names_test_files_that_exist() -> None:
    """vm-tests/run's list survives merges: every file it names exists, the module tests
    among them, and bpf_testmod is built only for Debian's 6.12 releases."""
    script = ROOT / "vm-tests" / "run"
    if not script.exists():
        pytest.skip("vm-tests/ is not here (the sdist leaves it out)")
    tree = ast.parse(script.read_text())
    values = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    files = ast.literal_eval(values["VM_TESTS"])
    assert "tests/test_testmod.py" in files and len(set(files)) == len(files)
    assert [name for name in files if not (ROOT / name).is_file()] == []
    compiled = values["TESTMOD_RELEASE"]
    assert isinstance(compiled, ast.Call)
    pattern = re.compile(ast.literal_eval(compiled.args[0]))
    assert pattern.fullmatch("6.12.117+deb12-amd64")
    assert not pattern.fullmatch("6.1.0-56-amd64") and not pattern.fullmatch("6.12.0-custom")
