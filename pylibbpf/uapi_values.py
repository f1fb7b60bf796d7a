"""The numbers of :mod:`pylibbpf.uapi`'s enums as plain ints, under the same names:
``MapType.HASH`` here is ``1``, there ``<MapType.HASH: 1>``.

What opening and loading an object compare and pass to the kernel. Building the
``IntEnum``/``IntFlag`` classes costs about 60 thousand instructions per member in the
enum machinery, half of what ``import pylibbpf as bpf; bpf.BpfObject`` cost: the load
path uses these numbers, and :mod:`pylibbpf.uapi` (the public enums, imported by the
code that shows names: errors, reprs, the CLI) is built when first asked for.
``tests/test_uapi_values.py`` checks that both say the same.
"""

from __future__ import annotations

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

    # To the type checker these are the enums (what they stand for); at run time, ints.
    from .uapi import AttachType as AttachType
    from .uapi import Cmd as Cmd
    from .uapi import MapFlags as MapFlags
    from .uapi import MapType as MapType
    from .uapi import ProgFlags as ProgFlags
    from .uapi import ProgType as ProgType
    from .uapi import UpdateFlags as UpdateFlags
else:

    class Cmd:
        """``enum bpf_cmd``: the bpf(2) commands."""

        MAP_CREATE = 0
        MAP_LOOKUP_ELEM = 1
        MAP_UPDATE_ELEM = 2
        MAP_DELETE_ELEM = 3
        MAP_GET_NEXT_KEY = 4
        PROG_LOAD = 5
        OBJ_PIN = 6
        OBJ_GET = 7
        PROG_ATTACH = 8
        PROG_DETACH = 9
        PROG_TEST_RUN = 10
        PROG_GET_NEXT_ID = 11
        MAP_GET_NEXT_ID = 12
        PROG_GET_FD_BY_ID = 13
        MAP_GET_FD_BY_ID = 14
        OBJ_GET_INFO_BY_FD = 15
        PROG_QUERY = 16
        RAW_TRACEPOINT_OPEN = 17
        BTF_LOAD = 18
        BTF_GET_FD_BY_ID = 19
        TASK_FD_QUERY = 20
        MAP_LOOKUP_AND_DELETE_ELEM = 21
        MAP_FREEZE = 22
        BTF_GET_NEXT_ID = 23
        MAP_LOOKUP_BATCH = 24
        MAP_LOOKUP_AND_DELETE_BATCH = 25
        MAP_UPDATE_BATCH = 26
        MAP_DELETE_BATCH = 27
        LINK_CREATE = 28
        LINK_UPDATE = 29
        LINK_GET_FD_BY_ID = 30
        LINK_GET_NEXT_ID = 31
        ENABLE_STATS = 32
        ITER_CREATE = 33
        LINK_DETACH = 34
        PROG_BIND_MAP = 35
        TOKEN_CREATE = 36
        PROG_STREAM_READ_BY_FD = 37
        PROG_ASSOC_STRUCT_OPS = 38

    class MapType:
        """``enum bpf_map_type``."""

        UNSPEC = 0
        HASH = 1
        ARRAY = 2
        PROG_ARRAY = 3
        PERF_EVENT_ARRAY = 4
        PERCPU_HASH = 5
        PERCPU_ARRAY = 6
        STACK_TRACE = 7
        CGROUP_ARRAY = 8
        LRU_HASH = 9
        LRU_PERCPU_HASH = 10
        LPM_TRIE = 11
        ARRAY_OF_MAPS = 12
        HASH_OF_MAPS = 13
        DEVMAP = 14
        SOCKMAP = 15
        CPUMAP = 16
        XSKMAP = 17
        SOCKHASH = 18
        CGROUP_STORAGE = 19
        REUSEPORT_SOCKARRAY = 20
        PERCPU_CGROUP_STORAGE = 21
        QUEUE = 22
        STACK = 23
        SK_STORAGE = 24
        DEVMAP_HASH = 25
        STRUCT_OPS = 26
        RINGBUF = 27
        INODE_STORAGE = 28
        TASK_STORAGE = 29
        BLOOM_FILTER = 30
        USER_RINGBUF = 31
        CGRP_STORAGE = 32
        ARENA = 33

    class ProgType:
        """``enum bpf_prog_type``."""

        UNSPEC = 0
        SOCKET_FILTER = 1
        KPROBE = 2
        SCHED_CLS = 3
        SCHED_ACT = 4
        TRACEPOINT = 5
        XDP = 6
        PERF_EVENT = 7
        CGROUP_SKB = 8
        CGROUP_SOCK = 9
        LWT_IN = 10
        LWT_OUT = 11
        LWT_XMIT = 12
        SOCK_OPS = 13
        SK_SKB = 14
        CGROUP_DEVICE = 15
        SK_MSG = 16
        RAW_TRACEPOINT = 17
        CGROUP_SOCK_ADDR = 18
        LWT_SEG6LOCAL = 19
        LIRC_MODE2 = 20
        SK_REUSEPORT = 21
        FLOW_DISSECTOR = 22
        CGROUP_SYSCTL = 23
        RAW_TRACEPOINT_WRITABLE = 24
        CGROUP_SOCKOPT = 25
        TRACING = 26
        STRUCT_OPS = 27
        EXT = 28
        LSM = 29
        SK_LOOKUP = 30
        SYSCALL = 31
        NETFILTER = 32

    class AttachType:
        """``enum bpf_attach_type``."""

        CGROUP_INET_INGRESS = 0
        CGROUP_INET_EGRESS = 1
        CGROUP_INET_SOCK_CREATE = 2
        CGROUP_SOCK_OPS = 3
        SK_SKB_STREAM_PARSER = 4
        SK_SKB_STREAM_VERDICT = 5
        CGROUP_DEVICE = 6
        SK_MSG_VERDICT = 7
        CGROUP_INET4_BIND = 8
        CGROUP_INET6_BIND = 9
        CGROUP_INET4_CONNECT = 10
        CGROUP_INET6_CONNECT = 11
        CGROUP_INET4_POST_BIND = 12
        CGROUP_INET6_POST_BIND = 13
        CGROUP_UDP4_SENDMSG = 14
        CGROUP_UDP6_SENDMSG = 15
        LIRC_MODE2 = 16
        FLOW_DISSECTOR = 17
        CGROUP_SYSCTL = 18
        CGROUP_UDP4_RECVMSG = 19
        CGROUP_UDP6_RECVMSG = 20
        CGROUP_GETSOCKOPT = 21
        CGROUP_SETSOCKOPT = 22
        TRACE_RAW_TP = 23
        TRACE_FENTRY = 24
        TRACE_FEXIT = 25
        MODIFY_RETURN = 26
        LSM_MAC = 27
        TRACE_ITER = 28
        CGROUP_INET4_GETPEERNAME = 29
        CGROUP_INET6_GETPEERNAME = 30
        CGROUP_INET4_GETSOCKNAME = 31
        CGROUP_INET6_GETSOCKNAME = 32
        XDP_DEVMAP = 33
        CGROUP_INET_SOCK_RELEASE = 34
        XDP_CPUMAP = 35
        SK_LOOKUP = 36
        XDP = 37
        SK_SKB_VERDICT = 38
        SK_REUSEPORT_SELECT = 39
        SK_REUSEPORT_SELECT_OR_MIGRATE = 40
        PERF_EVENT = 41
        TRACE_KPROBE_MULTI = 42
        LSM_CGROUP = 43
        STRUCT_OPS = 44
        NETFILTER = 45
        TCX_INGRESS = 46
        TCX_EGRESS = 47
        TRACE_UPROBE_MULTI = 48
        CGROUP_UNIX_CONNECT = 49
        CGROUP_UNIX_SENDMSG = 50
        CGROUP_UNIX_RECVMSG = 51
        CGROUP_UNIX_GETPEERNAME = 52
        CGROUP_UNIX_GETSOCKNAME = 53
        NETKIT_PRIMARY = 54
        NETKIT_PEER = 55
        TRACE_KPROBE_SESSION = 56
        TRACE_UPROBE_SESSION = 57

    class UpdateFlags:
        """``flags`` of MAP_UPDATE_ELEM (and ``elem_flags`` of the batch commands)."""

        ANY = 0
        NOEXIST = 1
        EXIST = 2
        F_LOCK = 4

    class MapFlags:
        """``map_flags`` of MAP_CREATE."""

        NO_PREALLOC = 1 << 0
        NO_COMMON_LRU = 1 << 1
        NUMA_NODE = 1 << 2
        RDONLY = 1 << 3
        WRONLY = 1 << 4
        STACK_BUILD_ID = 1 << 5
        ZERO_SEED = 1 << 6
        RDONLY_PROG = 1 << 7
        WRONLY_PROG = 1 << 8
        CLONE = 1 << 9
        MMAPABLE = 1 << 10
        PRESERVE_ELEMS = 1 << 11
        INNER_MAP = 1 << 12
        LINK = 1 << 13
        PATH_FD = 1 << 14
        VTYPE_BTF_OBJ_FD = 1 << 15
        TOKEN_FD = 1 << 16
        SEGV_ON_FAULT = 1 << 17
        NO_USER_CONV = 1 << 18

    class ProgFlags:
        """``prog_flags`` of PROG_LOAD."""

        STRICT_ALIGNMENT = 1 << 0
        ANY_ALIGNMENT = 1 << 1
        TEST_RND_HI32 = 1 << 2
        TEST_STATE_FREQ = 1 << 3
        SLEEPABLE = 1 << 4
        XDP_HAS_FRAGS = 1 << 5
        XDP_DEV_BOUND_ONLY = 1 << 6
        TEST_REG_INVARIANTS = 1 << 7
        TOKEN_FD = 1 << 16


# Kernel limits that user space has to respect.
OBJ_NAME_LEN = 16
LOG_BUF_SIZE_MAX = (1 << 32) // 4 - 1  # UINT_MAX >> 2 since Linux 5.2
ENOTSUPP = 524  # the kernel-internal errno that BPF leaks to user space

# (Sets of ints: an enum member is found in them too, as it hashes as its value.)
PERCPU_MAP_TYPES: frozenset[int] = frozenset(
    {
        MapType.PERCPU_HASH,
        MapType.PERCPU_ARRAY,
        MapType.LRU_PERCPU_HASH,
        MapType.PERCPU_CGROUP_STORAGE,
    }
)

# Maps whose values user space writes as file descriptors and reads back as object ids.
FD_VALUE_MAP_TYPES: frozenset[int] = frozenset(
    {
        MapType.PROG_ARRAY,
        MapType.PERF_EVENT_ARRAY,
        MapType.CGROUP_ARRAY,
        MapType.ARRAY_OF_MAPS,
        MapType.HASH_OF_MAPS,
        MapType.SOCKMAP,
        MapType.SOCKHASH,
        MapType.REUSEPORT_SOCKARRAY,
        MapType.XSKMAP,
    }
)

# Maps without keys: push/pop/peek through the element commands with a NULL key.
KEYLESS_MAP_TYPES: frozenset[int] = frozenset({MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER})


_NAMES: dict[type, dict[int, str]] = {}


def value_name(numbers: type, value: int) -> str | None:
    """The name of ``value`` in one of the classes above (``value_name(MapType, 1)`` is
    ``"HASH"``), None for a number it does not know: the enum's ``.name`` for messages,
    without building the enum."""
    names = _NAMES.get(numbers)
    if names is None:
        members = [(k, v) for k, v in vars(numbers).items() if k.isupper() and type(v) is int]
        names = _NAMES[numbers] = {v: k for k, v in reversed(members)}  # (first name wins)
    return names.get(value)


def map_type_name(map_type: int) -> str:
    """A map type's name for messages (``"HASH"``; ``"type 99"`` for a number this
    module does not know)."""
    return value_name(MapType, map_type) or f"type {map_type}"


def as_enum(enum_name: str, value: int) -> int:
    """``value`` as a member of the enum ``enum_name`` of :mod:`pylibbpf.uapi` when it is
    one of its numbers, else ``value``: what public attributes (``Program.type``,
    ``Map.type``…) return. Imports the enums, so the load path never calls it."""
    from . import uapi

    enum: Any = getattr(uapi, enum_name)
    try:
        member: int = enum(value)
    except ValueError:
        return value
    return member
