"""ctypes layouts of ``union bpf_attr`` (Linux 6.18) and of the ``bpf_*_info`` structures.

Each command's attr is its own ``Structure``, laid out exactly as its member of the union.
The kernel accepts a shorter attr from older user space and rejects a longer one with a
non-zero tail, so callers pass only the bytes up to the last field they set (see
``bpf._used_size``): the same layouts work on 6.1.
"""

from __future__ import annotations

import ctypes

from ..uapi import OBJ_NAME_LEN

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


class FdAttr(ctypes.Structure):
    """One-fd commands: LINK_DETACH, MAP_FREEZE (map_fd), ENABLE_STATS (type)."""

    _fields_ = [("fd", c_u32)]


class IterCreateAttr(ctypes.Structure):
    """The attr of ITER_CREATE."""

    _fields_ = [("link_fd", c_u32), ("flags", c_u32)]


class ProgBindMapAttr(ctypes.Structure):
    """The attr of PROG_BIND_MAP."""

    _fields_ = [("prog_fd", c_u32), ("map_fd", c_u32), ("flags", c_u32)]


class TokenCreateAttr(ctypes.Structure):
    """The attr of TOKEN_CREATE (6.9): a token from a delegating bpffs's root."""

    _fields_ = [("flags", c_u32), ("bpffs_fd", c_u32)]


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


class LinkInfo(ctypes.Structure):
    """Common head of ``struct bpf_link_info``; ``extra`` is the per-kind union."""

    _fields_ = [("type", c_u32), ("id", c_u32), ("prog_id", c_u32), ("_pad", c_u32)]
    _fields_ += [("extra", c_u8 * 64)]
