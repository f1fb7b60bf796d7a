"""When things go: dropping the last reference to a loaded object detaches its programs
and unregisters its struct_ops at once, by reference counting alone (gc stays disabled):
the object owns its programs, maps and links, and nothing points back strongly."""

from __future__ import annotations

import errno
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


@pytest.mark.root
def test_a_closed_object_says_so(bpf_object: Callable[[str], Path], pin_dir: Path) -> None:
    """Reading a variable of a closed object used to return the pre-load image."""
    obj = bpf.BpfObject.open(bpf_object("attach"), pin_root_path=str(pin_dir))
    obj.programs["on_sys_enter"].autoload = False
    obj.load()
    assert obj.programs["on_getppid"].loaded
    assert obj.variables["tp_count"].value == 0
    obj.close()
    assert obj.closed and not obj.loaded
    with pytest.raises(bpf.BpfError, match="object 'attach' is closed") as closed:
        _ = obj.variables["tp_count"].value
    assert closed.value.errno == errno.EBADF
    with pytest.raises(bpf.BpfError, match="object 'attach' is closed"):
        obj.variables["tp_count"].value = 1
    with pytest.raises(bpf.BpfError, match="object 'attach' is closed"):
        obj.load()
    (pin_dir / "pinned_count").unlink()


def test_a_closed_object_says_so_without_a_kernel(bpf_object: Callable[[str], Path]) -> None:
    """Never loaded, then closed: the image is gone too."""
    obj = bpf.BpfObject.open(bpf_object("rollback"))
    assert obj.variables["answer"].value == 42
    obj.close()
    with pytest.raises(bpf.BpfError, match="object 'rollback' is closed"):
        _ = obj.variables["answer"].value


@pytest.mark.root
def test_a_closed_ring_buffer_says_so(bpf_object: Callable[[str], Path]) -> None:
    with bpf.BpfObject.open(bpf_object("ringbuf")) as obj:
        obj.load()
        ring = bpf.RingBuffer(obj.maps["ring"], lambda view: None)
        assert ring.poll(0) == 0
        ring.close()
        for operation in (lambda: ring.poll(0), ring.consume, ring.fileno):
            with pytest.raises(bpf.BpfError, match="ring buffer of map 'ring' is closed") as e:
                operation()
            assert e.value.errno == errno.EBADF
        producer = bpf.UserRingBuffer(obj.maps["from_user"])
        producer.close()
        with pytest.raises(bpf.BpfError, match="map 'from_user' is closed"):
            producer.write(b"x" * 8)
