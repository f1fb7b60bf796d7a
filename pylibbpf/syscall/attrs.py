"""ctypes layouts of ``union bpf_attr`` (Linux 6.18) for the commands that open and load
an object (maps, programs, BTF, pins, ids, tokens) and of the ``bpf_*_info`` structures;
those of attaching, links, queries and test runs are in :mod:`.link_attrs`.

Each command's attr is its own ``Structure``, laid out exactly as its member of the union.
The kernel accepts a shorter attr from older user space and rejects a longer one with a
non-zero tail, so callers pass only the bytes up to the last field they set (see
``bpf._used_size``): the same layouts work on 6.1.
"""

from __future__ import annotations

import ctypes

from ..uapi_values import OBJ_NAME_LEN

c_u8 = ctypes.c_uint8
c_u32 = ctypes.c_uint32
c_s32 = ctypes.c_int32
c_u64 = ctypes.c_uint64


class MapCreateAttr(ctypes.Structure):
    """The attr of MAP_CREATE."""

    _fields_ = [
        ("map_type", c_u32),
        ("key_size", c_u32),
        ("value_size", c_u32),
        ("max_entries", c_u32),
        ("map_flags", c_u32),
        ("inner_map_fd", c_u32),
        ("numa_node", c_u32),
        ("map_name", ctypes.c_char * OBJ_NAME_LEN),
        ("map_ifindex", c_u32),
        ("btf_fd", c_u32),
        ("btf_key_type_id", c_u32),
        ("btf_value_type_id", c_u32),
        ("btf_vmlinux_value_type_id", c_u32),
        ("map_extra", c_u64),
        ("value_type_btf_obj_fd", c_s32),
        ("map_token_fd", c_s32),
        ("excl_prog_hash", c_u64),  # 6.18: only the program with this SHA-256 may use it
        ("excl_prog_hash_size", c_u32),
    ]


class MapElemAttr(ctypes.Structure):
    """The attr of the single-element map commands."""

    _fields_ = [
        ("map_fd", c_u32),
        ("_pad", c_u32),
        ("key", c_u64),
        ("value", c_u64),  # also next_key for MAP_GET_NEXT_KEY
        ("flags", c_u64),
    ]


class MapBatchAttr(ctypes.Structure):
    """The attr of the MAP_*_BATCH commands."""

    _fields_ = [
        ("in_batch", c_u64),
        ("out_batch", c_u64),
        ("keys", c_u64),
        ("values", c_u64),
        ("count", c_u32),
        ("map_fd", c_u32),
        ("elem_flags", c_u64),
        ("flags", c_u64),
    ]


class ProgLoadAttr(ctypes.Structure):
    """The attr of PROG_LOAD."""

    _fields_ = [
        ("prog_type", c_u32),
        ("insn_cnt", c_u32),
        ("insns", c_u64),
        ("license", c_u64),
        ("log_level", c_u32),
        ("log_size", c_u32),
        ("log_buf", c_u64),
        ("kern_version", c_u32),
        ("prog_flags", c_u32),
        ("prog_name", ctypes.c_char * OBJ_NAME_LEN),
        ("prog_ifindex", c_u32),
        ("expected_attach_type", c_u32),
        ("prog_btf_fd", c_u32),
        ("func_info_rec_size", c_u32),
        ("func_info", c_u64),
        ("func_info_cnt", c_u32),
        ("line_info_rec_size", c_u32),
        ("line_info", c_u64),
        ("line_info_cnt", c_u32),
        ("attach_btf_id", c_u32),
        ("attach_prog_fd", c_u32),  # union with attach_btf_obj_fd
        ("core_relo_cnt", c_u32),
        ("fd_array", c_u64),
        ("core_relos", c_u64),
        ("core_relo_rec_size", c_u32),
        ("log_true_size", c_u32),
        ("prog_token_fd", c_s32),
        ("fd_array_cnt", c_u32),
        ("signature", c_u64),  # 6.18: signed programs, checked against a kernel keyring
        ("signature_size", c_u32),
        ("keyring_id", c_s32),
    ]


class ObjAttr(ctypes.Structure):
    """The attr of OBJ_PIN and OBJ_GET."""

    _fields_ = [
        ("pathname", c_u64),
        ("bpf_fd", c_u32),
        ("file_flags", c_u32),
        ("path_fd", c_s32),
    ]


class GetIdAttr(ctypes.Structure):
    """The attr of the *_GET_NEXT_ID and *_GET_FD_BY_ID commands."""

    _fields_ = [
        ("start_id", c_u32),  # union with prog_id / map_id / btf_id / link_id
        ("next_id", c_u32),
        ("open_flags", c_u32),
        ("fd_by_id_token_fd", c_s32),
    ]


class InfoAttr(ctypes.Structure):
    """The attr of OBJ_GET_INFO_BY_FD."""

    _fields_ = [("bpf_fd", c_u32), ("info_len", c_u32), ("info", c_u64)]


class BtfLoadAttr(ctypes.Structure):
    """The attr of BTF_LOAD."""

    _fields_ = [
        ("btf", c_u64),
        ("btf_log_buf", c_u64),
        ("btf_size", c_u32),
        ("btf_log_size", c_u32),
        ("btf_log_level", c_u32),
        ("btf_log_true_size", c_u32),
        ("btf_flags", c_u32),
        ("btf_token_fd", c_s32),
    ]


class FdAttr(ctypes.Structure):
    """One-fd commands: LINK_DETACH, MAP_FREEZE (map_fd), ENABLE_STATS (type)."""

    _fields_ = [("fd", c_u32)]


class ProgBindMapAttr(ctypes.Structure):
    """The attr of PROG_BIND_MAP."""

    _fields_ = [("prog_fd", c_u32), ("map_fd", c_u32), ("flags", c_u32)]


class TokenCreateAttr(ctypes.Structure):
    """The attr of TOKEN_CREATE (6.9): a token from a delegating bpffs's root."""

    _fields_ = [("flags", c_u32), ("bpffs_fd", c_u32)]


# Info structures returned by OBJ_GET_INFO_BY_FD.


class MapInfo(ctypes.Structure):
    """``struct bpf_map_info``."""

    _fields_ = [
        ("type", c_u32),
        ("id", c_u32),
        ("key_size", c_u32),
        ("value_size", c_u32),
        ("max_entries", c_u32),
        ("map_flags", c_u32),
        ("name", ctypes.c_char * OBJ_NAME_LEN),
        ("ifindex", c_u32),
        ("btf_vmlinux_value_type_id", c_u32),
        ("netns_dev", c_u64),
        ("netns_ino", c_u64),
        ("btf_id", c_u32),
        ("btf_key_type_id", c_u32),
        ("btf_value_type_id", c_u32),
        ("btf_vmlinux_id", c_u32),
        ("map_extra", c_u64),
        ("hash", c_u64),  # 6.18: where the kernel writes the map's SHA-256
        ("hash_size", c_u32),
    ]


class ProgInfo(ctypes.Structure):
    """``struct bpf_prog_info``."""

    _fields_ = [
        ("type", c_u32),
        ("id", c_u32),
        ("tag", c_u8 * 8),
        ("jited_prog_len", c_u32),
        ("xlated_prog_len", c_u32),
        ("jited_prog_insns", c_u64),
        ("xlated_prog_insns", c_u64),
        ("load_time", c_u64),
        ("created_by_uid", c_u32),
        ("nr_map_ids", c_u32),
        ("map_ids", c_u64),
        ("name", ctypes.c_char * OBJ_NAME_LEN),
        ("ifindex", c_u32),
        ("gpl_compatible", c_u32),  # bit 0
        ("netns_dev", c_u64),
        ("netns_ino", c_u64),
        ("nr_jited_ksyms", c_u32),
        ("nr_jited_func_lens", c_u32),
        ("jited_ksyms", c_u64),
        ("jited_func_lens", c_u64),
        ("btf_id", c_u32),
        ("func_info_rec_size", c_u32),
        ("func_info", c_u64),
        ("nr_func_info", c_u32),
        ("nr_line_info", c_u32),
        ("line_info", c_u64),
        ("jited_line_info", c_u64),
        ("nr_jited_line_info", c_u32),
        ("line_info_rec_size", c_u32),
        ("jited_line_info_rec_size", c_u32),
        ("nr_prog_tags", c_u32),
        ("prog_tags", c_u64),
        ("run_time_ns", c_u64),
        ("run_cnt", c_u64),
        ("recursion_misses", c_u64),
        ("verified_insns", c_u32),
        ("attach_btf_obj_id", c_u32),
        ("attach_btf_id", c_u32),
    ]


class BtfInfo(ctypes.Structure):
    """``struct bpf_btf_info``."""

    _fields_ = [
        ("btf", c_u64),
        ("btf_size", c_u32),
        ("id", c_u32),
        ("name", c_u64),
        ("name_len", c_u32),
        ("kernel_btf", c_u32),
    ]


class TokenInfo(ctypes.Structure):
    """``struct bpf_token_info``: what a token allows, one bit per enum value."""

    _fields_ = [
        ("allowed_cmds", c_u64),
        ("allowed_maps", c_u64),
        ("allowed_progs", c_u64),
        ("allowed_attachs", c_u64),
    ]


TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from .link_attrs import LINK_CREATE_TAIL_SIZE as LINK_CREATE_TAIL_SIZE
    from .link_attrs import CgroupLinkOpts as CgroupLinkOpts
    from .link_attrs import IterCreateAttr as IterCreateAttr
    from .link_attrs import IterLinkInfo as IterLinkInfo
    from .link_attrs import IterLinkOpts as IterLinkOpts
    from .link_attrs import KprobeMultiLinkOpts as KprobeMultiLinkOpts
    from .link_attrs import LinkCreateAttr as LinkCreateAttr
    from .link_attrs import LinkInfo as LinkInfo
    from .link_attrs import LinkUpdateAttr as LinkUpdateAttr
    from .link_attrs import MprogLinkOpts as MprogLinkOpts
    from .link_attrs import NetfilterLinkOpts as NetfilterLinkOpts
    from .link_attrs import NetkitLinkOpts as NetkitLinkOpts
    from .link_attrs import PerfEventLinkOpts as PerfEventLinkOpts
    from .link_attrs import ProgAssocStructOpsAttr as ProgAssocStructOpsAttr
    from .link_attrs import ProgAttachAttr as ProgAttachAttr
    from .link_attrs import ProgQueryAttr as ProgQueryAttr
    from .link_attrs import ProgStreamReadAttr as ProgStreamReadAttr
    from .link_attrs import RawTracepointAttr as RawTracepointAttr
    from .link_attrs import TaskFdQueryAttr as TaskFdQueryAttr
    from .link_attrs import TcxLinkOpts as TcxLinkOpts
    from .link_attrs import TestRunAttr as TestRunAttr
    from .link_attrs import TracingLinkOpts as TracingLinkOpts
    from .link_attrs import UprobeMultiLinkOpts as UprobeMultiLinkOpts

# The layouts of :mod:`pylibbpf.syscall.link_attrs`, named here too (see there).
LINK_ATTR_NAMES = frozenset(
    {
        "CgroupLinkOpts",
        "IterCreateAttr",
        "IterLinkInfo",
        "IterLinkOpts",
        "KprobeMultiLinkOpts",
        "LINK_CREATE_TAIL_SIZE",
        "LinkCreateAttr",
        "LinkInfo",
        "LinkUpdateAttr",
        "MprogLinkOpts",
        "NetfilterLinkOpts",
        "NetkitLinkOpts",
        "PerfEventLinkOpts",
        "ProgAssocStructOpsAttr",
        "ProgAttachAttr",
        "ProgQueryAttr",
        "ProgStreamReadAttr",
        "RawTracepointAttr",
        "TaskFdQueryAttr",
        "TcxLinkOpts",
        "TestRunAttr",
        "TracingLinkOpts",
        "UprobeMultiLinkOpts",
    }
)


def __getattr__(name: str) -> object:
    """The layouts of :mod:`pylibbpf.syscall.link_attrs` on first use."""
    if name in LINK_ATTR_NAMES:
        from . import link_attrs

        value = getattr(link_attrs, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
