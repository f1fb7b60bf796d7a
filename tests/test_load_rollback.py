"""A load that fails half-way undoes what it did, in the kernel: no pins it made are
left under the pin root, and the maps it created are gone."""

from __future__ import annotations

import ctypes
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import pylibbpf as bpf
from pylibbpf import syscall
from pylibbpf.syscall.seam import call_kernel, override_syscall
from pylibbpf.uapi import Cmd

BPFFS = Path("/sys/fs/bpf")


def map_id(fd: int) -> int:
    fdinfo = Path(f"/proc/self/fdinfo/{fd}").read_text()
    return int(fdinfo.split("map_id:")[1].split()[0])


@pytest.mark.root
def test_failed_load_leaves_no_pins_and_no_maps(bpf_object: Callable[[str], Path]) -> None:
    if not BPFFS.is_dir():
        pytest.skip("bpffs is not mounted at /sys/fs/bpf")
    root = BPFFS / f"pylibbpf-rollback-{uuid.uuid4().hex[:8]}"  # made by the load itself
    created: list[int] = []

    def watch(cmd: Cmd, attr: ctypes.Structure, size: int) -> int:
        result = call_kernel(cmd, attr, size)  # the real kernel, watched
        if cmd == Cmd.MAP_CREATE:
            created.append(map_id(result))
        return result

    obj = bpf.BpfObject.open(bpf_object("rollback"), pin_root_path=str(root))
    try:
        with override_syscall(watch), pytest.raises(bpf.LoadError) as failure:
            obj.load()
        assert failure.value.program == "bad"  # the verifier's refusal…
        assert not obj.programs["good"].loaded  # 'good' loaded, then was unloaded
        assert len(created) >= 4  # kept, scratch, .rodata, .bss (and probes)
        assert not root.exists()  # …left nothing under the pin root, not even the root
        # The maps go when the last reference does ('good' was loaded and held some; the
        # kernel frees a program after an RCU grace period).
        deadline = time.monotonic() + 5
        while set(syscall.iterate_ids(syscall.map_get_next_id)) & set(created):
            assert time.monotonic() < deadline, "maps of the failed load still exist"
            time.sleep(0.05)
    finally:
        obj.close()
        if root.exists():
            for child in root.iterdir():
                child.unlink()
            root.rmdir()


@pytest.mark.root
def test_failed_attach_detaches_what_it_attached(
    bpf_object: Callable[[str], Path], pin_dir: Path
) -> None:
    """obj.attach() is all or nothing: 'on_nothing' (a tracepoint that does not exist)
    fails after 'on_getppid' and 'on_sys_enter' attached; those are detached again."""
    with bpf.BpfObject.open(bpf_object("attach"), pin_root_path=str(pin_dir)) as obj:
        obj.programs["on_nothing"].autoload = True
        obj.load()
        with pytest.raises(bpf.AttachError, match="pylibbpf_no_such_tracepoint"):
            obj.attach()
        assert obj.links == []
        raw_count = obj.variables["raw_count"]
        before = raw_count.value
        Path("/proc/self/stat").read_bytes()  # system calls a raw_tp/sys_enter would count
        assert raw_count.value == before
    (pin_dir / "pinned_count").unlink()
