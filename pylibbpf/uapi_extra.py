"""The constants of ``include/uapi/linux/bpf.h`` that opening and loading an object
never use (links, attach and test-run flags, XDP, streams, stats, file flags): apart from
:mod:`pylibbpf.uapi` so that ``bpf.BpfObject`` does not pay for their enum classes.
:mod:`pylibbpf.uapi` names them too (imported on first use): import them from there."""

from __future__ import annotations

from enum import IntEnum, IntFlag


class LinkType(IntEnum):
    """``enum bpf_link_type``."""

    UNSPEC = 0
    RAW_TRACEPOINT = 1
    TRACING = 2
    CGROUP = 3
    ITER = 4
    NETNS = 5
    XDP = 6
    PERF_EVENT = 7
    KPROBE_MULTI = 8
    STRUCT_OPS = 9
    NETFILTER = 10
    TCX = 11
    UPROBE_MULTI = 12
    NETKIT = 13
    SOCKMAP = 14


class StreamId(IntEnum):
    """A program's text streams (PROG_STREAM_READ_BY_FD, ``bpf_stream_printk``)."""

    STDOUT = 1
    STDERR = 2


class StatsType(IntEnum):
    """``enum bpf_stats_type`` (ENABLE_STATS)."""

    RUN_TIME = 0


class AttachFlags(IntFlag):
    """``attach_flags`` of PROG_ATTACH (cgroup multi-attach and mprog ordering)."""

    ALLOW_OVERRIDE = 1 << 0
    ALLOW_MULTI = 1 << 1
    REPLACE = 1 << 2
    BEFORE = 1 << 3
    AFTER = 1 << 4
    ID = 1 << 5  # the relative program or link is given by id, not fd
    PREORDER = 1 << 6  # cgroup: run before the programs of ancestor cgroups (6.15)
    LINK = 1 << 13  # the relative object is a link (BPF_F_LINK)


class CgroupIterOrder(IntEnum):
    """``enum bpf_cgroup_iter_order``: which cgroups a cgroup iterator visits."""

    UNSPEC = 0
    SELF_ONLY = 1  # just the start cgroup
    DESCENDANTS_PRE = 2  # the start cgroup and its descendants, parents first
    DESCENDANTS_POST = 3  # the start cgroup and its descendants, children first
    ANCESTORS_UP = 4  # the start cgroup and its ancestors, up to the root


class TestRunFlags(IntFlag):
    """BPF_PROG_TEST_RUN flags."""

    RUN_ON_CPU = 1 << 0
    XDP_LIVE_FRAMES = 1 << 1


class FileFlags(IntFlag):
    """``file_flags`` of OBJ_GET and ``open_flags`` of ``*_GET_FD_BY_ID``."""

    RDONLY = 1 << 3
    WRONLY = 1 << 4


class XdpFlags(IntFlag):
    """XDP attach flags (modes)."""

    UPDATE_IF_NOEXIST = 1 << 0
    SKB_MODE = 1 << 1  # generic XDP: any interface
    DRV_MODE = 1 << 2  # native, in the driver
    HW_MODE = 1 << 3  # offloaded to the NIC
    REPLACE = 1 << 4


class XdpAction(IntEnum):
    """XDP program verdicts."""

    ABORTED = 0
    DROP = 1
    PASS = 2
    TX = 3
    REDIRECT = 4
