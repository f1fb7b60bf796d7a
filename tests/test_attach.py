"""Attaching: tracepoints and raw tracepoints counting this process's syscalls, links that
detach on close, pinned links that outlive their process, and bad targets."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import pylibbpf as bpf
from pylibbpf.links import Link
from pylibbpf.loader import BpfObject

pytestmark = pytest.mark.root


def test_tracepoint_and_raw_tracepoint_count_syscalls(
    bpf_object: Callable[[str], Path], pin_dir: Path
) -> None:
    with BpfObject.open(bpf_object("attach"), pin_root_path=str(pin_dir)) as obj:
        obj.load()
        links = obj.attach()
        assert {link.info().type for link in links} == {
            bpf.LinkType.PERF_EVENT,
            bpf.LinkType.RAW_TRACEPOINT,
        }
        tp, raw = obj.variables["tp_count"], obj.variables["raw_count"]
        for _ in range(20):
            os.getppid()
        assert tp.value >= 20 and raw.value >= 20  # other processes can only add
        for link in links:
            link.close()
        before = (tp.value, raw.value)
        for _ in range(20):
            os.getppid()
        assert (tp.value, raw.value) == before  # detached: nothing counts any more
    (pin_dir / "pinned_count").unlink()


def test_pinned_link_outlives_its_process(bpf_object: Callable[[str], Path], pin_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        from pylibbpf.loader import BpfObject
        obj = BpfObject.open({str(bpf_object("attach"))!r}, pin_root_path={str(pin_dir)!r})
        obj.programs["on_sys_enter"].autoload = False
        obj.load()
        obj.programs["on_getppid"].attach().pin({str(pin_dir / "link")!r})
        """
    )
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root)
    counter = bpf.Map.from_pinned(pin_dir / "pinned_count", value_type=int)
    try:
        start = counter[0]
        os.getppid()
        assert counter[0] > start  # the process is gone, its pinned link still counts
        link = Link.from_pinned(pin_dir / "link")
        assert link.info().type == bpf.LinkType.PERF_EVENT
        link.close()
        (pin_dir / "link").unlink()  # the last reference: detaches...
        deadline = time.monotonic() + 5  # ...once the kernel's deferred release has run
        while True:
            settled = counter[0]
            os.getppid()
            if counter[0] == settled:
                break
            assert time.monotonic() < deadline, "still attached after the pin was removed"
            time.sleep(0.05)
    finally:
        counter.close()
        (pin_dir / "pinned_count").unlink()


def test_bad_attach_targets_name_the_target(
    bpf_object: Callable[[str], Path], pin_dir: Path
) -> None:
    with BpfObject.open(bpf_object("attach"), pin_root_path=str(pin_dir)) as obj:
        obj.programs["on_nothing"].autoload = True
        obj.load()
        with pytest.raises(
            bpf.AttachError, match="tracepoint syscalls:pylibbpf_no_such_tracepoint does not exist"
        ):
            obj.programs["on_nothing"].attach()
        with pytest.raises(
            bpf.AttachError, match="on raw tracepoint pylibbpf_nope.*no such tracepoint"
        ):
            obj.programs["on_sys_enter"].attach_raw_tracepoint("pylibbpf_nope")
    (pin_dir / "pinned_count").unlink()
