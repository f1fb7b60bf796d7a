"""When things go: dropping the last reference to a loaded object detaches its programs
and unregisters its struct_ops at once, by reference counting alone (gc stays disabled):
the object owns its programs, maps and links, and nothing points back strongly."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pylibbpf as bpf

AVAILABLE = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _attached_counter(path: Path, pin_dir: Path) -> None:
    """Load and attach ``on_getppid`` (it counts getppid calls into the pinned map), and
    return without keeping any reference: the object dies with this frame."""
    obj = bpf.BpfObject.open(path, pin_root_path=str(pin_dir))
    for program in obj.programs.values():
        program.autoload = program.name == "on_getppid"
    obj.load()
    obj.attach()


@pytest.mark.root
def test_dropping_a_loaded_object_detaches_its_programs(
    bpf_object: Callable[[str], Path], pin_dir: Path, no_gc: None
) -> None:
    _attached_counter(bpf_object("attach"), pin_dir)
    with bpf.Map.from_pinned(pin_dir / "pinned_count", value_type=int) as counter:
        # Nothing references the object now; had it survived (a reference cycle waiting
        # for the collector), its tracepoint program would still count.
        before = counter[0]
        for _ in range(5):
            os.getppid()
        assert counter[0] == before
    (pin_dir / "pinned_count").unlink()


@pytest.mark.root
def test_counter_counts_while_the_object_lives(
    bpf_object: Callable[[str], Path], pin_dir: Path, no_gc: None
) -> None:
    """The control for the test above: the same program counts while it is attached."""
    obj = bpf.BpfObject.open(bpf_object("attach"), pin_root_path=str(pin_dir))
    for program in obj.programs.values():
        program.autoload = program.name == "on_getppid"
    obj.load()
    obj.attach()
    with bpf.Map.from_pinned(pin_dir / "pinned_count", value_type=int) as counter:
        before = counter[0]
        for _ in range(5):
            os.getppid()
        assert counter[0] >= before + 5
        del obj
        after = counter[0]
        os.getppid()
        assert counter[0] == after
    (pin_dir / "pinned_count").unlink()


@pytest.mark.root
def test_dropping_a_loaded_object_unregisters_its_struct_ops(
    bpf_object: Callable[[str], Path], no_gc: None
) -> None:
    obj = bpf.BpfObject.open(bpf_object("tcp_cc_plain"))
    obj.load()
    obj.attach()
    assert "pylibbpf_plain" in AVAILABLE.read_text().split()
    del obj
    assert "pylibbpf_plain" not in AVAILABLE.read_text().split()
