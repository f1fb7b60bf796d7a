"""The remaining bpf(2) commands against the kernel: attach/query, raw tracepoints, links,
ids, info, statistics, task fd queries, map binding and BTF loading."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest
from rawprogs import counter, returning

import pylibbpf as bpf
from pylibbpf import features, insn, syscall
from pylibbpf.syscall.fd import OwnedFd

pytestmark = pytest.mark.root


def _cgroup_fd(path: Path) -> OwnedFd:
    return OwnedFd(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), f"cgroup {path}")


def _skb_prog(name: str) -> bpf.Program:
    return bpf.Program.from_insns(
        returning(1),
        bpf.ProgType.CGROUP_SKB,
        name=name,
        expected_attach_type=bpf.AttachType.CGROUP_INET_EGRESS,
    )


def test_prog_attach_query_detach_on_a_cgroup(cgroup_dir: Path) -> None:
    egress = bpf.AttachType.CGROUP_INET_EGRESS
    with _cgroup_fd(cgroup_dir) as cg, _skb_prog("t_cg_attach") as prog:
        syscall.prog_attach(cg.fd, prog.fd, egress, flags=bpf.AttachFlags.ALLOW_MULTI)
        assert syscall.prog_query(cg.fd, egress).prog_ids == [prog.info().id]
        syscall.prog_detach(cg.fd, prog.fd, egress)
        assert syscall.prog_query(cg.fd, egress).prog_ids == []


def test_link_create_update_detach_and_ids(cgroup_dir: Path) -> None:
    egress = bpf.AttachType.CGROUP_INET_EGRESS
    with _cgroup_fd(cgroup_dir) as cg, _skb_prog("t_link_a") as a, _skb_prog("t_link_b") as b:
        link = OwnedFd(syscall.link_create(a.fd, cg.fd, egress), "link")
        info = syscall.obj_get_info_by_fd(link.fd, syscall.LinkInfo())
        assert info.type == bpf.LinkType.CGROUP and info.prog_id == a.info().id
        assert info.id in syscall.iterate_ids(syscall.link_get_next_id)
        with OwnedFd(syscall.link_get_fd_by_id(info.id)) as again:
            assert syscall.obj_get_info_by_fd(again.fd, syscall.LinkInfo()).id == info.id
        syscall.link_update(link.fd, b.fd)
        assert syscall.prog_query(cg.fd, egress).prog_ids == [b.info().id]
        syscall.link_detach(link.fd)
        assert syscall.prog_query(cg.fd, egress).prog_ids == []
        link.close()


def test_raw_tracepoint_counts_this_process_syscalls() -> None:
    with (
        bpf.Map.create(bpf.MapType.ARRAY, 4, 8, 1, value_type=int) as stats,
        bpf.Program.from_insns(
            counter(stats, pid=os.getpid()), bpf.ProgType.RAW_TRACEPOINT, name="t_sys_enter"
        ) as prog,
    ):
        tp = OwnedFd(syscall.raw_tracepoint_open("sys_enter", prog.fd), "raw tp")
        with tp:
            before = stats[0]
            for _ in range(50):
                os.getppid()
            assert stats[0] - before >= 50
            query = syscall.task_fd_query(os.getpid(), tp.fd)
            assert query.prog_id == prog.info().id and query.name == "sys_enter"
        settled = stats[0]
        os.getppid()
        assert stats[0] == settled  # detached when the fd closed


def test_enable_stats_counts_runs() -> None:
    with bpf.Program.from_insns(returning(2), bpf.ProgType.XDP) as prog:
        with OwnedFd(syscall.enable_stats(bpf.uapi.StatsType.RUN_TIME), "stats"):
            prog.test_run(bytes(64), repeat=10)
        info = prog.info()
        assert info.run_cnt == 10 and info.run_time_ns > 0


def test_prog_bind_map_and_id_iteration() -> None:
    with (
        bpf.Map.create(bpf.MapType.ARRAY, 4, 4, 1) as m,
        bpf.Program.from_insns(returning(2), bpf.ProgType.XDP) as prog,
    ):
        prog.bind_map(m)
        assert m.info().id in prog.info().map_ids
        assert prog.info().id in syscall.iterate_ids(syscall.prog_get_next_id)
        assert m.info().id in syscall.iterate_ids(syscall.map_get_next_id)


def test_btf_load_and_lookup_by_id() -> None:
    raw = features._tiny_btf()
    data = ctypes.create_string_buffer(raw, len(raw))
    fd = OwnedFd(
        syscall.btf_load(syscall.BtfLoadAttr(btf=ctypes.addressof(data), btf_size=len(raw)))
    )
    with fd:
        info = syscall.obj_get_info_by_fd(fd.fd, syscall.BtfInfo())
        assert info.btf_size == len(raw) and not info.kernel_btf
        assert info.id in syscall.iterate_ids(syscall.btf_get_next_id)
        copy = ctypes.create_string_buffer(info.btf_size)
        with OwnedFd(syscall.btf_get_fd_by_id(info.id)) as again:
            readback = syscall.BtfInfo(btf=ctypes.addressof(copy), btf_size=info.btf_size)
            syscall.obj_get_info_by_fd(again.fd, readback)
        assert copy.raw == raw  # the kernel hands back the BTF we loaded


def test_btf_rejection_names_the_problem() -> None:
    data = ctypes.create_string_buffer(b"\0" * 32, 32)
    with pytest.raises(bpf.BpfError, match="BTF: BTF_LOAD failed"):
        syscall.btf_load(syscall.BtfLoadAttr(btf=ctypes.addressof(data), btf_size=32))


def test_fd_dup_keeps_object_alive() -> None:
    m = bpf.Map.create(bpf.MapType.ARRAY, 4, 4, 1, name="t_dup", value_type=int)
    m[0] = 3
    copy = bpf.Map.from_fd(m.fd, value_type=int)  # an int fd is duplicated
    m.close()
    assert copy[0] == 3 and copy.name == "t_dup"
    copy.close()


def test_feature_probes_agree_with_real_creation() -> None:
    assert features.has_map_type(bpf.MapType.RINGBUF)
    ring = bpf.Map.create(bpf.MapType.RINGBUF, 0, 0, 4096)
    assert ring.info().type == bpf.MapType.RINGBUF
    ring.close()
    assert features.has_prog_type(bpf.ProgType.XDP)
    assert not features.has_prog_type(999)
    assert features.has_helper(bpf.ProgType.XDP, "map_lookup_elem")
    # bpf_override_return is for kprobes only; socket filters may not call it
    assert not features.has_helper(bpf.ProgType.SOCKET_FILTER, "override_return")


def test_iter_create_lists_this_process() -> None:
    """A task iterator (TRACING/TRACE_ITER, attach target found in kernel BTF) writes each
    task's tgid, then, on its final call, a marker and the reader's own tgid (global
    pids: the tests may run in a pid namespace). The reader must be among the tasks."""
    import struct

    from pylibbpf.btf import Btf, Kind
    from pylibbpf.spec.insn import FP, R0, R1, R2, R3, R6, R7, R8, Alu, Jmp, Size

    btf = Btf.load_vmlinux()
    target = btf.find("bpf_iter_task", Kind.FUNC)
    task = btf.find("task_struct", Kind.STRUCT)
    tgid_offset = btf.member_path(task.id, "tgid")[-1][1].bit_offset // 8
    write = [
        insn.mov64_reg(R1, R8),
        insn.mov64_reg(R2, FP),
        insn.alu64_imm(Alu.ADD, R2, -8),
    ]
    per_task = [
        insn.ldx_mem(Size.W, R3, R7, tgid_offset),
        insn.stx_mem(Size.W, FP, R3, -8),
        *write,
        insn.mov64_imm(R3, 4),
        insn.call("seq_write"),
        *insn.return_imm(0),
    ]
    code = insn.assemble(
        insn.mov64_reg(R6, R1),
        insn.ldx_mem(Size.DW, R7, R6, 8),  # ctx->task (NULL on the final call)
        insn.ldx_mem(Size.DW, R8, R6, 0),  # ctx->meta
        insn.ldx_mem(Size.DW, R8, R8, 0),  # meta->seq
        insn.jmp_imm(Jmp.JEQ, R7, 0, len(per_task)),
        per_task,
        insn.call("get_current_pid_tgid"),
        insn.alu64_imm(Alu.RSH, R0, 32),
        insn.st_mem(Size.W, FP, -8, -1),
        insn.stx_mem(Size.W, FP, R0, -4),
        *write,
        insn.mov64_imm(R3, 8),
        insn.call("seq_write"),
        insn.return_imm(0),
    )
    with (
        bpf.Program.from_insns(
            code,
            bpf.ProgType.TRACING,
            name="t_iter_task",
            expected_attach_type=bpf.AttachType.TRACE_ITER,
            attach_btf_id=target.id,
        ) as prog,
        OwnedFd(syscall.link_create(prog.fd, 0, bpf.AttachType.TRACE_ITER)) as link,
        OwnedFd(syscall.iter_create(link.fd), "iterator") as it,
    ):
        out = b""
        while chunk := os.read(it.fd, 65536):
            out += chunk
    *tgids, marker, reader = struct.unpack(f"<{len(out) // 4}I", out)
    assert marker == 0xFFFFFFFF
    assert reader in tgids and len(tgids) > 1
