"""The flat import paths of before the layered package keep working (generated skeletons,
README examples and user code import them), and a skeleton generated before the change
still loads and runs."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import pylibbpf as bpf

SKELETONS = Path(__file__).parent / "skeletons"

OLD_PATHS = {
    "pylibbpf.object": ("BpfObject", "pylibbpf.loader.object"),
    "pylibbpf.link": ("Link", "pylibbpf.links.base"),
    "pylibbpf.insn": ("assemble", "pylibbpf.spec.insn"),
    "pylibbpf.disasm": ("disassemble", "pylibbpf.spec.disasm"),
    "pylibbpf.helpers": ("helper_id", "pylibbpf.spec.helpers"),
    "pylibbpf.features": ("has_btf", "pylibbpf.syscall.features"),
    "pylibbpf.fd": ("OwnedFd", "pylibbpf.syscall.fd"),
    "pylibbpf.sysinfo": ("num_possible_cpus", "pylibbpf.syscall.system"),
    "pylibbpf.perf": ("perf_event_open", "pylibbpf.syscall.perf"),
    "pylibbpf.elf": ("parse_object", "pylibbpf.spec.elf"),
    "pylibbpf.sections": ("find_section_def", "pylibbpf.spec.sections"),
    "pylibbpf.core": ("CoreResolver", "pylibbpf.spec.core"),
    "pylibbpf.codec": ("codec_for", "pylibbpf.spec.codec"),
    "pylibbpf.uprobe": ("parse_target", "pylibbpf.spec.elfsym"),
    "pylibbpf.usdt": ("read_notes", "pylibbpf.spec.usdt"),
    "pylibbpf.ringbuf": ("PerfBuffer", "pylibbpf.perfbuf"),
    "pylibbpf.btf.load": ("load_vmlinux", "pylibbpf.syscall.kernel_btf"),
    "pylibbpf.btf.upload": ("fetch_btf", "pylibbpf.syscall.kernel_btf"),
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_paths_re_export_the_same_objects(old: str) -> None:
    name, new = OLD_PATHS[old]
    module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    assert all(hasattr(module, exported) for exported in module.__all__)


def test_the_instruction_builder_keeps_every_name() -> None:
    """README and examples import registers and builders from pylibbpf.insn."""
    from pylibbpf.insn import FP, R0, R10, assemble, mov64_imm, return_imm

    assert FP == R10 and R0 == 0
    assert assemble(mov64_imm(R0, 1), return_imm(1))


def test_top_level_exports_the_public_classes() -> None:
    from pylibbpf.btf import Btf
    from pylibbpf.links.base import Link
    from pylibbpf.loader.object import BpfObject
    from pylibbpf.perfbuf import PerfBuffer
    from pylibbpf.ringbuf import RingBuffer, UserRingBuffer
    from pylibbpf.skeleton import Skeleton

    assert (bpf.BpfObject, bpf.Link, bpf.RingBuffer) == (BpfObject, Link, RingBuffer)
    assert (bpf.PerfBuffer, bpf.UserRingBuffer) == (PerfBuffer, UserRingBuffer)
    assert (bpf.Btf, bpf.Skeleton) == (Btf, Skeleton)
    assert set(bpf.__all__) <= set(dir(bpf))
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = bpf.NoSuchThing  # type: ignore[attr-defined]


@pytest.mark.root
def test_a_skeleton_generated_before_the_layering_still_works(
    bpf_object: Callable[[str], Path], tmp_path: Path, pin_dir: Path
) -> None:
    """tests/skeletons/attach_skel_before_layering.py was written by `gen skeleton
    --reference` before the package was layered: it imports pylibbpf.link and friends."""
    shutil.copy(SKELETONS / "attach_skel_before_layering.py", tmp_path / "attach_skel.py")
    shutil.copy(bpf_object("attach"), tmp_path / "attach.bpf.o")
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("attach_skel")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("attach_skel", None)
    with module.AttachSkel.open(pin_root_path=str(pin_dir)) as skel:
        skel.load()
        skel.attach()
        assert skel.links.on_getppid is not None and skel.links.on_nothing is None
        before = skel.bss.tp_count
        for _ in range(3):
            os.getppid()
        assert skel.bss.tp_count >= before + 3  # counted by the kernel program
        assert skel.maps.pinned_count[0] >= 3
    (pin_dir / "pinned_count").unlink()
