"""BPF streams (Linux 6.17): a program's stdout and stderr read back from Python and by
``pylibbpf prog tracelog``, what the kernel says about reading them, and — without a
kernel — how the reader assembles lines and waits (scripted replies to
PROG_STREAM_READ_BY_FD through the syscall seam)."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pylibbpf import cli, syscall
from pylibbpf.errors import BpfError, NotSupportedError
from pylibbpf.object import BpfObject
from pylibbpf.stream import ProgramStream, stream_id
from pylibbpf.syscall import attrs, features, seam
from pylibbpf.syscall.kernel_btf import load_vmlinux
from pylibbpf.uapi import Cmd, StreamId

ENOMEM_WRITES = (
    "this kernel accepts stream reads but its bpf_stream_vprintk() fails with ENOMEM "
    "(stream memory comes from kmalloc_nolock(), which fails on this host's 6.18 build): "
    "nothing can be written to a BPF stream here"
)

# --------------------------------------------------------------------------- reader (pure)


class ScriptedStreams:
    """Answers PROG_STREAM_READ_BY_FD from a script of chunks (the feature probe's bad fd
    gets EBADF, as from a kernel that has streams). A stand-in for the reader's logic
    only: the kernel's behaviour is tested below, on the kernel."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.streams: list[int] = []

    def __call__(self, cmd: Cmd, attr: ctypes.Structure, size: int) -> int:
        assert cmd == Cmd.PROG_STREAM_READ_BY_FD
        read = attrs.ProgStreamReadAttr.from_buffer_copy(bytes(attr)[: ctypes.sizeof(attr)])
        if read.prog_fd == 0xFFFFFFFF:
            raise OSError(errno.EBADF, "bad fd")
        self.streams.append(read.stream_id)
        chunk = self.chunks.pop(0)[: read.stream_buf_len] if self.chunks else b""
        ctypes.memmove(read.stream_buf, chunk, len(chunk))
        return len(chunk)


@pytest.fixture
def program_fd() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_RDONLY)  # stands for a program fd: only dup'ed
    yield fd
    os.close(fd)


def test_lines_are_assembled_across_reads(program_fd: int) -> None:
    script = ScriptedStreams([b"hel", b"lo 1\nsec", b"ond\nthird"])
    with seam.override_syscall(script), ProgramStream(program_fd, "stderr", what="p") as reader:
        assert reader.readline(timeout=0) == "hello 1"
        assert list(reader.lines(timeout=0)) == ["second"]
        assert reader.read_all() == "third"  # the unterminated rest too
        assert reader.readline(timeout=0.1) is None  # nothing more: waited, then gave up
    assert set(script.streams) == {StreamId.STDERR}


def test_read_all_keeps_queued_lines(program_fd: int) -> None:
    script = ScriptedStreams([b"a\nb\n", b"c"])
    with seam.override_syscall(script), ProgramStream(program_fd, 1, what="p") as reader:
        assert reader.readline(timeout=0) == "a"
        assert reader.read_all() == "b\nc"


def test_async_lines(program_fd: int) -> None:
    script = ScriptedStreams([b"x\n", b"", b"y\n"])

    async def two() -> list[str]:
        got = []
        async for line in reader.lines_async():
            got.append(line)
            if len(got) == 2:
                return got
        return got

    with seam.override_syscall(script), ProgramStream(program_fd, "stdout", what="p") as reader:
        assert asyncio.run(two()) == ["x", "y"]


def test_stream_names() -> None:
    assert stream_id("stdout") == StreamId.STDOUT
    assert stream_id("STDERR") == StreamId.STDERR
    assert stream_id(2) == StreamId.STDERR
    with pytest.raises(ValueError, match="stdout or stderr"):
        stream_id("stdin")


def test_refused_naming_the_kernel_release(program_fd: int) -> None:
    def old_kernel(cmd: Cmd, attr: ctypes.Structure, size: int) -> int:
        raise OSError(errno.EINVAL, "unknown command")  # what 6.16 and older answer

    with seam.override_syscall(old_kernel), pytest.raises(NotSupportedError, match="6.17"):
        ProgramStream(program_fd, "stdout", what="p")


# --------------------------------------------------------------------------- kernel


def _require_streams() -> None:
    if not features.has_prog_streams():
        pytest.skip("this kernel has no BPF streams (PROG_STREAM_READ_BY_FD needs Linux 6.17+)")


@pytest.fixture
def streams(bpf_object: Any) -> Iterator[BpfObject]:
    _require_streams()
    obj = BpfObject.open(bpf_object("streams"))
    # bpf_stream_vprintk_impl (6.18) or bpf_stream_vprintk (6.17): load what exists.
    impl = load_vmlinux().find_id("bpf_stream_vprintk_impl") is not None
    obj.programs["hello" if impl else "hello_617"].autoload = True
    obj.programs["spin_forever"].autoload = True
    obj.variables["cookie"].value = 42
    with obj:
        obj.load()
        yield obj


def _hello(obj: BpfObject) -> Any:
    return next(p for p in obj.programs.values() if p.name.startswith("hello") and p.loaded)


def _writes_or_skip(retval: int) -> None:
    if ctypes.c_int32(retval).value == -errno.ENOMEM:
        pytest.skip(ENOMEM_WRITES)
    assert ctypes.c_int32(retval).value >= 0


@pytest.mark.root
def test_kernel_reads_streams_and_refuses_others(streams: BpfObject) -> None:
    program = _hello(streams)
    with program.stream("stdout") as out:
        assert out.read() == b""  # nothing written yet: the kernel has nothing for us
        assert list(out.lines(timeout=0)) == []
    with pytest.raises(BpfError) as refused:
        syscall.prog_stream_read(program.fd, 3)  # no third stream
    assert refused.value.errno in (errno.ENOENT, errno.EINVAL)


@pytest.mark.root
def test_printk_to_stdout_read_back(streams: BpfObject) -> None:
    program = _hello(streams)
    with program.stream() as out:
        _writes_or_skip(program.test_run().retval)
        assert list(out.lines(timeout=0)) == ["hello 42 from bpf", "second line"]
        assert out.read() == b""  # reading consumed it
    with program.stream("stderr") as errors:
        assert errors.read_all() == ""  # stdout only


@pytest.mark.root
def test_may_goto_timeout_is_reported_on_stderr(streams: BpfObject) -> None:
    hello = _hello(streams)
    _writes_or_skip(hello.test_run().retval)
    spinner = streams.programs["spin_forever"]
    with spinner.stream("stderr") as errors:
        assert spinner.test_run().retval == 0  # may_goto ended the loop
        report = errors.read_all()
    if not report:
        pytest.skip("this kernel reports no may_goto timeouts on program stderr")
    assert "ERROR: Timeout detected for may_goto instruction" in report
    assert "CPU:" in report and f"PID: {os.getpid()}" in report


@pytest.mark.root
def test_cli_prog_tracelog(
    streams: BpfObject, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    program = _hello(streams)
    assert cli.main(["prog", "tracelog", "stdout", "id", str(program.id)]) == 0
    assert capsys.readouterr().out == ""  # nothing written yet
    _writes_or_skip(program.test_run().retval)
    assert cli.main(["prog", "tracelog", "stdout", "id", str(program.id)]) == 0
    assert capsys.readouterr().out == "hello 42 from bpf\nsecond line\n"
    assert cli.main(["prog", "tracelog", "stdin", str(program.id)]) == 1
    assert "stdout|stderr" in capsys.readouterr().err


@pytest.mark.root
def test_kernels_without_streams_refuse_naming_the_release(bpf_object: Any) -> None:
    if features.has_prog_streams():
        pytest.skip("this kernel has BPF streams (the refusal is for kernels before 6.17)")
    with BpfObject.open(bpf_object("token_socket")) as obj:
        obj.load()
        with pytest.raises(NotSupportedError, match=r"Linux 6\.17"):
            obj.programs["count_datagrams"].stream("stderr")
