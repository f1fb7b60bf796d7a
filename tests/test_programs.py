"""Programs against the running kernel: loading, verifier logs, test runs, sockets, pins."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Any

import pytest
from rawprogs import counter, long_failing_program, returning

import pylibbpf as bpf
from pylibbpf import insn

pytestmark = pytest.mark.root


def test_xdp_drop_verdict_from_test_run() -> None:
    with bpf.Program.from_insns(returning(bpf.XdpAction.DROP), bpf.ProgType.XDP) as prog:
        result = prog.test_run(bytes(64))
        assert result.retval == bpf.XdpAction.DROP
        assert result.data == bytes(64)  # XDP hands the (unchanged) packet back


def test_program_updates_a_map_on_every_run() -> None:
    with (
        bpf.Map.create(bpf.MapType.ARRAY, 4, 8, 1, value_type=int) as stats,
        bpf.Program.from_insns(counter(stats, ret=2), bpf.ProgType.XDP) as prog,
    ):
        result = prog.test_run(bytes(64), repeat=25)
        assert result.retval == 2
        assert stats[0] == 25
        assert stats.info().id in prog.info().map_ids


def test_socket_filter_sees_real_datagrams() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with (
        bpf.Map.create(bpf.MapType.ARRAY, 4, 8, 1, value_type=int) as stats,
        bpf.Program.from_insns(counter(stats, ret=-1), bpf.ProgType.SOCKET_FILTER) as prog,
        rx,
        tx,
    ):
        rx.bind(("127.0.0.1", 0))
        prog.attach_socket(rx)
        for _ in range(7):
            tx.sendto(b"ping", rx.getsockname())
            assert rx.recv(16) == b"ping"
        assert stats[0] == 7
        prog.detach_socket(rx)
        tx.sendto(b"ping", rx.getsockname())
        rx.recv(16)
        assert stats[0] == 7


def test_verifier_rejection_carries_the_log() -> None:
    code = insn.assemble(insn.mov64_reg(insn.R0, insn.R2), insn.exit_())
    with pytest.raises(bpf.LoadError) as exc:
        bpf.Program.from_insns(code, bpf.ProgType.XDP, name="t_uninit")
    error = exc.value
    assert error.program == "t_uninit"
    assert "R2 !read_ok" in error.log
    assert "program 't_uninit' (XDP)" in str(error) and "R2 !read_ok" in str(error)
    assert error.errno == errno.EACCES


def test_log_that_needs_growing_is_complete() -> None:
    code = long_failing_program(600)
    with pytest.raises(bpf.LoadError) as big:
        bpf.Program("t_long", bpf.ProgType.XDP, code).load(log_size=1 << 20)
    with pytest.raises(bpf.LoadError) as small:
        bpf.Program("t_long", bpf.ProgType.XDP, code).load(log_size=256)
    assert len(small.value.log) > 10_000
    assert small.value.log == big.value.log  # grown to fit, nothing lost at either end
    assert small.value.log.startswith("func#0") or small.value.log.startswith("0: ")
    assert "R2 !read_ok" in small.value.log


def test_successful_load_keeps_log_when_asked() -> None:
    prog = bpf.Program("t_logged", bpf.ProgType.XDP, returning(2))
    prog.load(log_level=2, log_size=64)  # level 2 output is far larger than 64 bytes
    assert "processed 2 insns" in prog.verifier_log
    assert prog.test_run(bytes(64)).retval == 2
    prog.close()


def test_bad_instruction_bytes() -> None:
    with pytest.raises(bpf.LoadError, match="program 't_odd': 12 bytes of instructions"):
        bpf.Program.from_insns(b"\0" * 12, bpf.ProgType.XDP, name="t_odd")


def test_unsupported_program_type_is_explained() -> None:
    with pytest.raises(bpf.LoadError, match="does not support type 999 programs"):
        bpf.Program.from_insns(returning(0), 999, name="t_unknown")


def test_info_returns_translated_instructions() -> None:
    with bpf.Program.from_insns(returning(1), bpf.ProgType.XDP, name="t_info") as prog:
        info = prog.info(xlated=True)
        assert info.name == "t_info" and info.type == bpf.ProgType.XDP
        assert insn.decode(info.xlated_insns) == insn.decode(returning(1))
        assert bpf.Program.from_id(info.id).info().tag == info.tag


def test_loads_of_new_lengths_make_no_ctypes_array_types() -> None:
    """The kernel gets instructions, licence and BTF through ``kernel_buffer``: a length
    never seen before makes no ctypes array type (~75 k instructions each, as
    ``create_string_buffer`` did), and the kernel holds what was sent."""
    import ctypes
    import gc

    from pylibbpf.btf import Kind, Type
    from pylibbpf.btf.encode import encode
    from pylibbpf.syscall.kernel_btf import load_btf

    array_type = type(ctypes.c_char * 1)

    def array_types() -> dict[int, Any]:  # (held: none is freed and its id reused)
        return {id(o): o for o in gc.get_objects() if isinstance(o, array_type)}

    with bpf.Program.from_insns(returning(1), bpf.ProgType.XDP) as warm:  # (first-use costs)
        warm.test_run(bytes(64))
    before = array_types()
    for length in (301, 302, 303):  # (lengths nothing else in this suite loads)
        padding = [insn.mov64_imm(1, i) for i in range(length)]
        code = insn.assemble(padding, insn.return_imm(length))
        with bpf.Program.from_insns(code, bpf.ProgType.XDP, name="t_lengths") as prog:
            assert prog.test_run(bytes(64)).retval == length  # (the kernel ran all of it)
    with load_btf(encode([Type(1, Kind.INT, "i" * 301, size=4, bits=32)]), name="t") as btf:
        assert btf.fd > 0
    assert [t for key, t in array_types().items() if key not in before] == []


def test_pin_and_from_pinned(pin_dir: Path) -> None:
    path = pin_dir / "prog"
    with bpf.Program.from_insns(returning(1), bpf.ProgType.XDP, name="t_pinned") as prog:
        prog.pin(path)
        with bpf.Program.from_pinned(path) as again:
            assert again.info().id == prog.info().id
            assert again.test_run(bytes(64)).retval == 1
        prog.unpin()
        assert not path.exists()


def test_program_state_errors() -> None:
    prog = bpf.Program("t_state", bpf.ProgType.XDP, returning(1))
    with pytest.raises(bpf.BpfError, match="program 't_state' is not loaded"):
        prog.test_run(bytes(64))
    prog.load()
    with pytest.raises(bpf.BpfError, match="already loaded"):
        prog.load()
    prog.close()
    with pytest.raises(bpf.BpfError, match="program 't_state' is closed"):
        prog.test_run(bytes(64))
