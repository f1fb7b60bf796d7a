"""ctypes layouts of the ``union bpf_attr`` members for what is done with loaded objects:
attaching (PROG_ATTACH, LINK_CREATE with its per-kind tails, LINK_UPDATE, iterators),
queries, test runs, stream reads, ``task_fd_query``, and ``struct bpf_link_info``.

Apart from :mod:`pylibbpf.syscall.attrs` (the commands that open and load an object)
because opening and loading never use them: ``bpf.BpfObject`` does not pay for their
classes. :mod:`pylibbpf.syscall.attrs` and :mod:`pylibbpf.syscall` still name them
(imported on first use). The same rule holds as there: callers pass only the bytes up to
the last field they set.
"""

from __future__ import annotations

import ctypes

c_u8 = ctypes.c_uint8
c_u32 = ctypes.c_uint32
c_s32 = ctypes.c_int32
c_u64 = ctypes.c_uint64


class ProgAttachAttr(ctypes.Structure):
    """The attr of PROG_ATTACH and PROG_DETACH."""

    _fields_ = [
        ("target_fd", c_u32),  # union with target_ifindex
        ("attach_bpf_fd", c_u32),
        ("attach_type", c_u32),
        ("attach_flags", c_u32),
        ("replace_bpf_fd", c_u32),
        ("relative_fd", c_u32),  # union with relative_id
        ("expected_revision", c_u64),
    ]


class TestRunAttr(ctypes.Structure):
    """The attr of PROG_TEST_RUN."""

    _fields_ = [
        ("prog_fd", c_u32),
        ("retval", c_u32),
        ("data_size_in", c_u32),
        ("data_size_out", c_u32),
        ("data_in", c_u64),
        ("data_out", c_u64),
        ("repeat", c_u32),
        ("duration", c_u32),
        ("ctx_size_in", c_u32),
        ("ctx_size_out", c_u32),
        ("ctx_in", c_u64),
        ("ctx_out", c_u64),
        ("flags", c_u32),
        ("cpu", c_u32),
        ("batch_size", c_u32),
    ]


class ProgQueryAttr(ctypes.Structure):
    """The attr of PROG_QUERY."""

    _fields_ = [
        ("target_fd", c_u32),
        ("attach_type", c_u32),
        ("query_flags", c_u32),
        ("attach_flags", c_u32),
        ("prog_ids", c_u64),
        ("prog_cnt", c_u32),
        ("_pad", c_u32),
        ("prog_attach_flags", c_u64),
        ("link_ids", c_u64),
        ("link_attach_flags", c_u64),
        ("revision", c_u64),
    ]


class RawTracepointAttr(ctypes.Structure):
    """The attr of RAW_TRACEPOINT_OPEN."""

    _fields_ = [("name", c_u64), ("prog_fd", c_u32), ("_pad", c_u32), ("cookie", c_u64)]


class TaskFdQueryAttr(ctypes.Structure):
    """The attr of TASK_FD_QUERY."""

    _fields_ = [
        ("pid", c_u32),
        ("fd", c_u32),
        ("flags", c_u32),
        ("buf_len", c_u32),
        ("buf", c_u64),
        ("prog_id", c_u32),
        ("fd_type", c_u32),
        ("probe_offset", c_u64),
        ("probe_addr", c_u64),
    ]


LINK_CREATE_TAIL_SIZE = 48  # the largest member of the per-kind union (uprobe_multi)


class LinkCreateAttr(ctypes.Structure):
    """LINK_CREATE; the per-link-kind union is a raw tail filled from a kind structure."""

    _fields_ = [
        ("prog_fd", c_u32),  # union with map_fd
        ("target_fd", c_u32),  # union with target_ifindex
        ("attach_type", c_u32),
        ("flags", c_u32),
        ("tail", c_u8 * LINK_CREATE_TAIL_SIZE),
    ]


class LinkUpdateAttr(ctypes.Structure):
    """The attr of LINK_UPDATE."""

    _fields_ = [
        ("link_fd", c_u32),
        ("new_prog_fd", c_u32),  # union with new_map_fd
        ("flags", c_u32),
        ("old_prog_fd", c_u32),  # union with old_map_fd
    ]


class IterCreateAttr(ctypes.Structure):
    """The attr of ITER_CREATE."""

    _fields_ = [("link_fd", c_u32), ("flags", c_u32)]


class ProgStreamReadAttr(ctypes.Structure):
    """The attr of PROG_STREAM_READ_BY_FD (6.17)."""

    _fields_ = [
        ("stream_buf", c_u64),
        ("stream_buf_len", c_u32),
        ("stream_id", c_u32),
        ("prog_fd", c_u32),
    ]


class ProgAssocStructOpsAttr(ctypes.Structure):
    """The attr of PROG_ASSOC_STRUCT_OPS (Linux 6.19)."""

    _fields_ = [("map_fd", c_u32), ("prog_fd", c_u32), ("flags", c_u32)]


# Per-kind tails of LINK_CREATE (copied into LinkCreateAttr.tail).


class TracingLinkOpts(ctypes.Structure):
    """LINK_CREATE's tail for tracing links (fentry/fexit…)."""

    _fields_ = [("target_btf_id", c_u32), ("_pad", c_u32), ("cookie", c_u64)]


class IterLinkOpts(ctypes.Structure):
    """LINK_CREATE's tail for iterators."""

    _fields_ = [("iter_info", c_u64), ("iter_info_len", c_u32)]


class _IterMapInfo(ctypes.Structure):
    _fields_ = [("map_fd", c_u32)]


class _IterTaskInfo(ctypes.Structure):
    _fields_ = [("tid", c_u32), ("pid", c_u32), ("pid_fd", c_u32)]


class _IterCgroupInfo(ctypes.Structure):
    _fields_ = [("order", c_u32), ("cgroup_fd", c_u32), ("cgroup_id", c_u64)]


class IterLinkInfo(ctypes.Union):
    """``union bpf_iter_link_info``, what ``IterLinkOpts.iter_info`` points to: the map
    of a map-element iterator, the task (tid, pid or pidfd) of task iterators, the start
    cgroup and walk order of cgroup iterators."""

    _fields_ = [("map", _IterMapInfo), ("task", _IterTaskInfo), ("cgroup", _IterCgroupInfo)]


class PerfEventLinkOpts(ctypes.Structure):
    """LINK_CREATE's tail for perf_event links (the BPF cookie)."""

    _fields_ = [("bpf_cookie", c_u64)]


class KprobeMultiLinkOpts(ctypes.Structure):
    """LINK_CREATE's tail for kprobe.multi links."""

    _fields_ = [
        ("flags", c_u32),
        ("cnt", c_u32),
        ("syms", c_u64),
        ("addrs", c_u64),
        ("cookies", c_u64),
    ]


class NetfilterLinkOpts(ctypes.Structure):
    """LINK_CREATE's tail for netfilter links."""

    _fields_ = [("pf", c_u32), ("hooknum", c_u32), ("priority", c_s32), ("flags", c_u32)]


class MprogLinkOpts(ctypes.Structure):
    """LINK_CREATE's tail for the multi-program hooks (tcx, netkit, cgroup since 6.15):
    where the new link goes relative to another program or link, and the hook revision
    the caller expects (0: any)."""

    _fields_ = [("relative_fd", c_u32), ("_pad", c_u32), ("expected_revision", c_u64)]


TcxLinkOpts = MprogLinkOpts
NetkitLinkOpts = MprogLinkOpts
CgroupLinkOpts = MprogLinkOpts


class UprobeMultiLinkOpts(ctypes.Structure):
    """LINK_CREATE's tail for uprobe.multi links."""

    _fields_ = [
        ("path", c_u64),
        ("offsets", c_u64),
        ("ref_ctr_offsets", c_u64),
        ("cookies", c_u64),
        ("cnt", c_u32),
        ("flags", c_u32),
        ("pid", c_u32),
    ]


class LinkInfo(ctypes.Structure):
    """Common head of ``struct bpf_link_info``; ``extra`` is the per-kind union."""

    _fields_ = [("type", c_u32), ("id", c_u32), ("prog_id", c_u32), ("_pad", c_u32)]
    _fields_ += [("extra", c_u8 * 64)]
