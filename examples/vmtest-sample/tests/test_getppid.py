"""The project's BPF programs on whatever kernel runs the tests: each test loads a program,
attaches it to the getppid() tracepoint, makes the syscall and reads the map."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pylibbpf.object import BpfObject


def test_getppid_calls_are_counted(bpf_object: Callable[[str], Path]) -> None:
    with BpfObject.open(bpf_object("getppid_count")) as obj:
        obj.variables["target_tgid"].value = os.getpid()
        obj.load()
        obj.attach()
        for _ in range(3):
            os.getppid()
        assert obj.maps["calls"][0] == 3


def test_open_coded_iterator_sums_one_to_ten(bpf_object: Callable[[str], Path]) -> None:
    """Needs the bpf_iter_num kfuncs (kernel 6.4+): fails on 6.1, passes on 6.12."""
    with BpfObject.open(bpf_object("iter_sum")) as obj:
        obj.variables["target_tgid"].value = os.getpid()
        obj.load()
        obj.attach()
        os.getppid()
        assert obj.maps["sums"][0] == 55
