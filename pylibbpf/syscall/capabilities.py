"""Which capability the kernel wants for what, so that a refusal names the one missing.

The rules are the kernel's own checks, restated as data:

- ``bpf_prog_load`` (kernel/bpf/syscall.c): CAP_BPF for every program type but socket
  filters and cgroup skb programs (which unprivileged users may load when
  ``kernel.unprivileged_bpf_disabled`` is 0); CAP_NET_ADMIN besides for the networking
  types (``is_net_admin_prog_type``) and CAP_PERFMON for the tracing types
  (``is_perfmon_prog_type``); freplace (EXT) programs need both.
- ``map_create``: CAP_BPF for most map types, CAP_NET_ADMIN for sockmap, sockhash, devmap
  and xskmap; CAP_BPF for any map while ``unprivileged_bpf_disabled`` is set.
- attaching cgroup skb programs (``bpf_prog_attach_check_attach_type``): CAP_NET_ADMIN;
- the id-walking and by-id commands, task_fd_query and enable_stats: CAP_SYS_ADMIN;
  prog_query: CAP_NET_ADMIN; BTF_LOAD: CAP_BPF.
- ``perf_event_open`` (kernel/events/core.c): CAP_PERFMON for the kprobe and uprobe PMUs,
  and for any event while ``kernel.perf_event_paranoid`` forbids it (kernel profiling
  above 1, CPU-wide events above 0, tracepoint samples above -1).

CAP_SYS_ADMIN stands in for any of them (``bpf_ns_capable``, ``perfmon_capable``). A BPF
token (6.9) grants them inside the user namespace it was made for, instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from ..uapi import AttachType, Cmd, MapType, ProgType
from .system import effective_capabilities, in_initial_user_namespace, permission_hint

CAP_SYS_ADMIN = "CAP_SYS_ADMIN"

_UNPRIVILEGED_PROG_TYPES = frozenset({ProgType.SOCKET_FILTER, ProgType.CGROUP_SKB})
_NET_ADMIN_PROG_TYPES = frozenset(
    {
        ProgType.SCHED_CLS,
        ProgType.SCHED_ACT,
        ProgType.XDP,
        ProgType.LWT_IN,
        ProgType.LWT_OUT,
        ProgType.LWT_XMIT,
        ProgType.LWT_SEG6LOCAL,
        ProgType.SK_SKB,
        ProgType.SK_MSG,
        ProgType.FLOW_DISSECTOR,
        ProgType.CGROUP_DEVICE,
        ProgType.CGROUP_SOCK,
        ProgType.CGROUP_SOCK_ADDR,
        ProgType.CGROUP_SOCKOPT,
        ProgType.CGROUP_SYSCTL,
        ProgType.SOCK_OPS,
        ProgType.EXT,
        ProgType.NETFILTER,
    }
)
_PERFMON_PROG_TYPES = frozenset(
    {
        ProgType.KPROBE,
        ProgType.TRACEPOINT,
        ProgType.PERF_EVENT,
        ProgType.RAW_TRACEPOINT,
        ProgType.RAW_TRACEPOINT_WRITABLE,
        ProgType.TRACING,
        ProgType.LSM,
        ProgType.STRUCT_OPS,
        ProgType.EXT,
    }
)
_NET_ADMIN_MAP_TYPES = frozenset(
    {MapType.SOCKMAP, MapType.SOCKHASH, MapType.DEVMAP, MapType.DEVMAP_HASH, MapType.XSKMAP}
)
# Checked at attach time (cgroup skb programs load with CAP_BPF alone).
_NET_ADMIN_ATTACH_TYPES = frozenset({AttachType.CGROUP_INET_INGRESS, AttachType.CGROUP_INET_EGRESS})
_COMMANDS: dict[Cmd, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            Cmd.PROG_GET_NEXT_ID,
            Cmd.MAP_GET_NEXT_ID,
            Cmd.BTF_GET_NEXT_ID,
            Cmd.LINK_GET_NEXT_ID,
            Cmd.PROG_GET_FD_BY_ID,
            Cmd.MAP_GET_FD_BY_ID,
            Cmd.BTF_GET_FD_BY_ID,
            Cmd.LINK_GET_FD_BY_ID,
            Cmd.TASK_FD_QUERY,
            Cmd.ENABLE_STATS,
        ),
        (CAP_SYS_ADMIN,),
    ),
    Cmd.PROG_QUERY: ("CAP_NET_ADMIN",),
    Cmd.BTF_LOAD: ("CAP_BPF",),
}


def _sysctl(name: str) -> int | None:
    with contextlib.suppress(OSError, ValueError), open(f"/proc/sys/kernel/{name}") as knob:
        return int(knob.read())
    return None


def prog_load_needs(prog_type: int) -> tuple[str, ...]:
    """The capabilities PROG_LOAD checks for a program of ``prog_type``."""
    needed: list[str] = []
    if prog_type not in _UNPRIVILEGED_PROG_TYPES or _sysctl("unprivileged_bpf_disabled"):
        needed.append("CAP_BPF")
    if prog_type in _NET_ADMIN_PROG_TYPES:
        needed.append("CAP_NET_ADMIN")
    if prog_type in _PERFMON_PROG_TYPES:
        needed.append("CAP_PERFMON")
    return tuple(needed)


def map_create_needs(map_type: int) -> tuple[str, ...]:
    """The capabilities MAP_CREATE checks for a map of ``map_type``."""
    if map_type not in _NET_ADMIN_MAP_TYPES:
        return ("CAP_BPF",)
    if _sysctl("unprivileged_bpf_disabled"):
        return ("CAP_BPF", "CAP_NET_ADMIN")
    return ("CAP_NET_ADMIN",)


def missing(needed: Sequence[str], held: set[str]) -> list[str]:
    """Which of ``needed`` the holder of ``held`` lacks (CAP_SYS_ADMIN covers them all)."""
    if CAP_SYS_ADMIN in held:
        return []
    return [cap for cap in needed if cap not in held]


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def refusal_hint(
    subject: str, needed: Sequence[str], *, verb: str = "need", token: bool = False
) -> str:
    """``subject`` (``"KPROBE programs"``) needs ``needed``: name the capabilities this
    process lacks, or, holding them all, say that something else refused. ``token``: the
    command carried a BPF token, so the kernel checked them in the token's namespace."""
    held = effective_capabilities()
    wanted = f"{subject} {verb} {_and(needed)}"
    if tuple(needed) != (CAP_SYS_ADMIN,):
        wanted += " (or CAP_SYS_ADMIN)"
    if token:
        wanted += " in the BPF token's user namespace"
    elif not in_initial_user_namespace():
        return (
            f"{wanted}, and this process is in a user namespace, where its capabilities do "
            "not count for bpf(2): it needs a BPF token from a bpffs delegated to its "
            "namespace that allows this (Linux 6.9+)"
        )
    lacking = missing(needed, held)
    if not lacking:
        return (
            f"{wanted}, which this process holds: the refusal comes from a security policy "
            "(an LSM, kernel lockdown or seccomp) or a BPF token's limits"
        )
    relevant = sorted(cap for cap in held if cap in {*needed, CAP_SYS_ADMIN})
    hint = f"{wanted}; this process lacks {_and(lacking)}"
    if relevant:
        hint += f" (it holds {_and(relevant)})"
    disabled = _sysctl("unprivileged_bpf_disabled")
    if "CAP_BPF" in lacking and disabled:
        hint += f"; kernel.unprivileged_bpf_disabled={disabled}"
    return hint


def _name(enum: type[ProgType] | type[MapType], value: int) -> str:
    try:
        return enum(value).name
    except ValueError:
        return f"type {value}"


_TOKEN_FIELDS = ("prog_token_fd", "map_token_fd", "btf_token_fd")


def hint_for(cmd: Cmd | int | None, attr: object = None) -> str:
    """Why ``cmd`` (with ``attr``, when it says which program or map type) was refused:
    what it needs and which of that this process lacks. (The load path passes plain ints.)"""
    if cmd is not None:
        try:
            cmd = Cmd(cmd)
        except ValueError:
            return permission_hint()
    token = any(getattr(attr, name, 0) > 0 for name in _TOKEN_FIELDS)
    if cmd == Cmd.PROG_LOAD and attr is not None:
        prog_type = int(getattr(attr, "prog_type", 0))
        subject = f"{_name(ProgType, prog_type)} programs"
        return refusal_hint(subject, prog_load_needs(prog_type), token=token)
    if cmd == Cmd.MAP_CREATE and attr is not None:
        map_type = int(getattr(attr, "map_type", 0))
        subject = f"{_name(MapType, map_type)} maps"
        return refusal_hint(subject, map_create_needs(map_type), token=token)
    if cmd in (Cmd.LINK_CREATE, Cmd.PROG_ATTACH) and attr is not None:
        attach_type = getattr(attr, "attach_type", None)
        if attach_type in _NET_ADMIN_ATTACH_TYPES:
            name = AttachType(attach_type).name
            return refusal_hint(f"{name} attachments (cgroup skb)", ("CAP_NET_ADMIN",))
    needed = _COMMANDS.get(cmd) if cmd is not None else None
    if needed is not None and cmd is not None:
        return refusal_hint(cmd.name, needed, verb="needs", token=token)
    return permission_hint()


def perf_event_hint(pmu: str | None = None) -> str:
    """Why perf_event_open was refused: CAP_PERFMON, or what perf_event_paranoid allows."""
    if pmu is not None:
        needed = f"{pmu} events need CAP_PERFMON (or CAP_SYS_ADMIN)"
    else:
        paranoid = _sysctl("perf_event_paranoid")
        needed = (
            "perf events need CAP_PERFMON (or CAP_SYS_ADMIN) unless "
            f"kernel.perf_event_paranoid allows them (it is {paranoid}; CPU-wide events "
            "need it at most 0, events that count the kernel at most 1)"
        )
    if missing(("CAP_PERFMON",), effective_capabilities()):
        return f"{needed}; this process lacks CAP_PERFMON"
    return (
        f"{needed}, which this process holds: the refusal comes from a security policy "
        "(an LSM or kernel lockdown) or, for an event on another process, ptrace access to it"
    )
