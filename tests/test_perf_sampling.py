"""``open_sampling_event``: the sampling perf event a ``perf_event`` program hangs on
(examples/profile.py runs it for real with stacks; tests/test_examples_bcc.py)."""

from __future__ import annotations

import errno
import os
import struct
import time

import pytest

import pylibbpf as bpf


@pytest.mark.parametrize(
    ("cpu", "options", "says"),
    [
        (0, {}, "give either frequency or period"),
        (0, {"frequency": 49, "period": 1000}, "give either frequency or period"),
        (0, {"frequency": 0}, "frequency must be a positive int, not 0"),
        (0, {"period": -5}, "period must be a positive int, not -5"),
        (-1, {"frequency": 49}, "cpu -1, pid -1: one of them must name a CPU or a process"),
        (-2, {"frequency": 49, "pid": 1}, "cpu -2, pid 1"),
    ],
)
def test_arguments_the_kernel_would_refuse_are_refused_first(
    cpu: int, options: dict[str, int], says: str
) -> None:
    with pytest.raises(bpf.ObjectError, match=says) as info:
        bpf.open_sampling_event(cpu, **options)
    assert info.value.errno == errno.EINVAL


def busy(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


@pytest.mark.root
def test_a_process_sampling_event_counts_that_process_cpu_time() -> None:
    """cpu-clock for this process on any CPU, sampled every 1 ms: the kernel's count is
    the nanoseconds this process spent on a CPU since the event opened, so it grows while
    the process computes."""
    with bpf.open_sampling_event(-1, period=1_000_000, pid=os.getpid()) as event:
        busy(0.02)
        (first,) = struct.unpack("=Q", os.read(event.fd, 8))
        busy(0.02)
        (second,) = struct.unpack("=Q", os.read(event.fd, 8))
    assert 0 < first < second


@pytest.mark.root
def test_a_frequency_is_given_to_the_kernel_as_one() -> None:
    """The kernel checks a frequency (attr.freq set) against perf_event_max_sample_rate,
    never a period: the same number is refused as a frequency and taken as a period."""
    with open("/proc/sys/kernel/perf_event_max_sample_rate") as knob:
        limit = int(knob.read())
    with bpf.open_sampling_event(0, frequency=min(49, limit)) as event:
        assert event.fd >= 0
    with pytest.raises(bpf.BpfError) as info:
        bpf.open_sampling_event(0, frequency=limit + 1)
    assert info.value.errno == errno.EINVAL
    with bpf.open_sampling_event(0, period=limit + 1) as event:
        assert event.fd >= 0
