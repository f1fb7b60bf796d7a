"""libbpf's SEC() table: what a section name says about a program, as data.

Each entry gives the program type, expected attach type, flags (sleepable, XDP frags,
needs a BTF attach target, …) and how the program auto-attaches. Matching follows libbpf:
an entry ``"kprobe+"`` matches ``kprobe`` and ``kprobe/<anything>``; ``"xdp"`` (no ``+``)
matches exactly. The first match in table order wins.
"""

from __future__ import annotations

from ..records import dataclass
from ..uapi_values import AttachType as A
from ..uapi_values import ProgType as P

SLEEPABLE = 1
FRAGS = 2
ATTACH_BTF = 4  # the attach target is a BTF id looked up from the section suffix
USDT = 8


@dataclass(frozen=True)
class SectionDef:
    """What one SEC() prefix says: program type, attach type, flags, auto-attach kind."""

    prefix: str  # without the trailing "+"
    prog_type: P
    attach_type: A | None
    flags: int = 0
    attach: str = ""  # auto-attach kind, "" if the program cannot auto-attach
    allow_suffix: bool = False  # "+" entries: "name" or "name/..."

    def matches(self, section: str) -> bool:
        """Whether ``section`` is this entry's (exactly, or ``prefix/...`` for ``+`` entries)."""
        if section == self.prefix:
            return True
        return self.allow_suffix and section.startswith(self.prefix + "/")


# One row per entry: SectionDef's fields in order. The table is kept as rows and an
# entry made when a section first matches it (opening an object makes a handful; making
# all of them cost more than the rest of this module).
_Row = tuple[str, P, "A | None", int, str, bool]


def _d(
    spec: str, prog_type: P, attach_type: A | None = None, flags: int = 0, attach: str = ""
) -> _Row:
    return (spec.rstrip("+"), prog_type, attach_type, flags, attach, spec.endswith("+"))


_ROWS: tuple[_Row, ...] = (
    _d("socket", P.SOCKET_FILTER),
    _d("sk_reuseport/migrate", P.SK_REUSEPORT, A.SK_REUSEPORT_SELECT_OR_MIGRATE),
    _d("sk_reuseport", P.SK_REUSEPORT, A.SK_REUSEPORT_SELECT),
    _d("kprobe+", P.KPROBE, None, 0, "kprobe"),
    _d("uprobe+", P.KPROBE, None, 0, "uprobe"),
    _d("uprobe.s+", P.KPROBE, None, SLEEPABLE, "uprobe"),
    _d("kretprobe+", P.KPROBE, None, 0, "kprobe"),
    _d("uretprobe+", P.KPROBE, None, 0, "uprobe"),
    _d("uretprobe.s+", P.KPROBE, None, SLEEPABLE, "uprobe"),
    _d("kprobe.multi+", P.KPROBE, A.TRACE_KPROBE_MULTI, 0, "kprobe_multi"),
    _d("kretprobe.multi+", P.KPROBE, A.TRACE_KPROBE_MULTI, 0, "kprobe_multi"),
    _d("kprobe.session+", P.KPROBE, A.TRACE_KPROBE_SESSION, 0, "kprobe_multi"),
    _d("uprobe.multi+", P.KPROBE, A.TRACE_UPROBE_MULTI, 0, "uprobe_multi"),
    _d("uretprobe.multi+", P.KPROBE, A.TRACE_UPROBE_MULTI, 0, "uprobe_multi"),
    _d("uprobe.multi.s+", P.KPROBE, A.TRACE_UPROBE_MULTI, SLEEPABLE, "uprobe_multi"),
    _d("uretprobe.multi.s+", P.KPROBE, A.TRACE_UPROBE_MULTI, SLEEPABLE, "uprobe_multi"),
    _d("uprobe.session+", P.KPROBE, A.TRACE_UPROBE_SESSION, 0, "uprobe_multi"),
    _d("uprobe.session.s+", P.KPROBE, A.TRACE_UPROBE_SESSION, SLEEPABLE, "uprobe_multi"),
    _d("ksyscall+", P.KPROBE, None, 0, "ksyscall"),
    _d("kretsyscall+", P.KPROBE, None, 0, "ksyscall"),
    _d("usdt+", P.KPROBE, None, USDT, "usdt"),
    _d("usdt.s+", P.KPROBE, None, USDT | SLEEPABLE, "usdt"),
    _d("tc/ingress", P.SCHED_CLS, A.TCX_INGRESS, 0, "tcx"),
    _d("tc/egress", P.SCHED_CLS, A.TCX_EGRESS, 0, "tcx"),
    _d("tcx/ingress", P.SCHED_CLS, A.TCX_INGRESS, 0, "tcx"),
    _d("tcx/egress", P.SCHED_CLS, A.TCX_EGRESS, 0, "tcx"),
    _d("tc+", P.SCHED_CLS),
    _d("classifier+", P.SCHED_CLS),
    _d("action+", P.SCHED_ACT),
    _d("netkit/primary", P.SCHED_CLS, A.NETKIT_PRIMARY, 0, "netkit"),
    _d("netkit/peer", P.SCHED_CLS, A.NETKIT_PEER, 0, "netkit"),
    _d("tracepoint+", P.TRACEPOINT, None, 0, "tracepoint"),
    _d("tp+", P.TRACEPOINT, None, 0, "tracepoint"),
    _d("raw_tracepoint+", P.RAW_TRACEPOINT, None, 0, "raw_tp"),
    _d("raw_tp+", P.RAW_TRACEPOINT, None, 0, "raw_tp"),
    _d("raw_tracepoint.w+", P.RAW_TRACEPOINT_WRITABLE, None, 0, "raw_tp"),
    _d("raw_tp.w+", P.RAW_TRACEPOINT_WRITABLE, None, 0, "raw_tp"),
    _d("tp_btf+", P.TRACING, A.TRACE_RAW_TP, ATTACH_BTF, "trace"),
    _d("fentry+", P.TRACING, A.TRACE_FENTRY, ATTACH_BTF, "trace"),
    _d("fmod_ret+", P.TRACING, A.MODIFY_RETURN, ATTACH_BTF, "trace"),
    _d("fexit+", P.TRACING, A.TRACE_FEXIT, ATTACH_BTF, "trace"),
    _d("fentry.s+", P.TRACING, A.TRACE_FENTRY, ATTACH_BTF | SLEEPABLE, "trace"),
    _d("fmod_ret.s+", P.TRACING, A.MODIFY_RETURN, ATTACH_BTF | SLEEPABLE, "trace"),
    _d("fexit.s+", P.TRACING, A.TRACE_FEXIT, ATTACH_BTF | SLEEPABLE, "trace"),
    _d("freplace+", P.EXT, None, ATTACH_BTF, "trace"),
    _d("lsm+", P.LSM, A.LSM_MAC, ATTACH_BTF, "lsm"),
    _d("lsm.s+", P.LSM, A.LSM_MAC, ATTACH_BTF | SLEEPABLE, "lsm"),
    _d("lsm_cgroup+", P.LSM, A.LSM_CGROUP, ATTACH_BTF),
    _d("iter+", P.TRACING, A.TRACE_ITER, ATTACH_BTF, "iter"),
    _d("iter.s+", P.TRACING, A.TRACE_ITER, ATTACH_BTF | SLEEPABLE, "iter"),
    _d("syscall", P.SYSCALL, None, SLEEPABLE),
    _d("xdp.frags/devmap", P.XDP, A.XDP_DEVMAP, FRAGS),
    _d("xdp/devmap", P.XDP, A.XDP_DEVMAP),
    _d("xdp.frags/cpumap", P.XDP, A.XDP_CPUMAP, FRAGS),
    _d("xdp/cpumap", P.XDP, A.XDP_CPUMAP),
    _d("xdp.frags", P.XDP, A.XDP, FRAGS),
    _d("xdp+", P.XDP, A.XDP),
    _d("perf_event", P.PERF_EVENT),
    _d("lwt_in", P.LWT_IN),
    _d("lwt_out", P.LWT_OUT),
    _d("lwt_xmit", P.LWT_XMIT),
    _d("lwt_seg6local", P.LWT_SEG6LOCAL),
    _d("sockops", P.SOCK_OPS, A.CGROUP_SOCK_OPS, 0, "cgroup"),
    _d("sk_skb/stream_parser", P.SK_SKB, A.SK_SKB_STREAM_PARSER),
    _d("sk_skb/stream_verdict", P.SK_SKB, A.SK_SKB_STREAM_VERDICT),
    _d("sk_skb/verdict", P.SK_SKB, A.SK_SKB_VERDICT),
    _d("sk_skb+", P.SK_SKB),
    _d("sk_msg", P.SK_MSG, A.SK_MSG_VERDICT),
    _d("lirc_mode2", P.LIRC_MODE2, A.LIRC_MODE2),
    _d("flow_dissector", P.FLOW_DISSECTOR, A.FLOW_DISSECTOR, 0, "netns"),
    _d("cgroup_skb/ingress", P.CGROUP_SKB, A.CGROUP_INET_INGRESS, 0, "cgroup"),
    _d("cgroup_skb/egress", P.CGROUP_SKB, A.CGROUP_INET_EGRESS, 0, "cgroup"),
    _d("cgroup/skb", P.CGROUP_SKB),
    _d("cgroup/sock_create", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE, 0, "cgroup"),
    _d("cgroup/sock_release", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_RELEASE, 0, "cgroup"),
    _d("cgroup/sock", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE, 0, "cgroup"),
    _d("cgroup/post_bind4", P.CGROUP_SOCK, A.CGROUP_INET4_POST_BIND, 0, "cgroup"),
    _d("cgroup/post_bind6", P.CGROUP_SOCK, A.CGROUP_INET6_POST_BIND, 0, "cgroup"),
    _d("cgroup/bind4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_BIND, 0, "cgroup"),
    _d("cgroup/bind6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_BIND, 0, "cgroup"),
    _d("cgroup/connect4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_CONNECT, 0, "cgroup"),
    _d("cgroup/connect6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_CONNECT, 0, "cgroup"),
    _d("cgroup/connect_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_CONNECT, 0, "cgroup"),
    _d("cgroup/sendmsg4", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP4_SENDMSG, 0, "cgroup"),
    _d("cgroup/sendmsg6", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_SENDMSG, 0, "cgroup"),
    _d("cgroup/sendmsg_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_SENDMSG, 0, "cgroup"),
    _d("cgroup/recvmsg4", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP4_RECVMSG, 0, "cgroup"),
    _d("cgroup/recvmsg6", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_RECVMSG, 0, "cgroup"),
    _d("cgroup/recvmsg_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_RECVMSG, 0, "cgroup"),
    _d("cgroup/getpeername4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_GETPEERNAME, 0, "cgroup"),
    _d("cgroup/getpeername6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_GETPEERNAME, 0, "cgroup"),
    _d("cgroup/getpeername_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_GETPEERNAME, 0, "cgroup"),
    _d("cgroup/getsockname4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_GETSOCKNAME, 0, "cgroup"),
    _d("cgroup/getsockname6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_GETSOCKNAME, 0, "cgroup"),
    _d("cgroup/getsockname_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_GETSOCKNAME, 0, "cgroup"),
    _d("cgroup/sysctl", P.CGROUP_SYSCTL, A.CGROUP_SYSCTL, 0, "cgroup"),
    _d("cgroup/getsockopt", P.CGROUP_SOCKOPT, A.CGROUP_GETSOCKOPT, 0, "cgroup"),
    _d("cgroup/setsockopt", P.CGROUP_SOCKOPT, A.CGROUP_SETSOCKOPT, 0, "cgroup"),
    _d("cgroup/dev", P.CGROUP_DEVICE, A.CGROUP_DEVICE, 0, "cgroup"),
    _d("struct_ops+", P.STRUCT_OPS),
    _d("struct_ops.s+", P.STRUCT_OPS, None, SLEEPABLE),
    _d("sk_lookup", P.SK_LOOKUP, A.SK_LOOKUP, 0, "netns"),
    _d("netfilter", P.NETFILTER, A.NETFILTER),
)


def find_section_def(section: str) -> SectionDef | None:
    """The SEC() table entry for ``section`` (a leading ``?`` — no autoload — is ignored)."""
    name = section.removeprefix("?")
    for index, (prefix, _, _, _, _, allow_suffix) in enumerate(_ROWS):
        if name == prefix or (allow_suffix and name.startswith(prefix + "/")):
            return _entry(index)
    return None


_MADE: dict[int, SectionDef] = {}
# A record compiles its __init__ when first used: here, with the module, as every open
# makes entries (not in the first open's time).
SectionDef.__init__  # noqa: B018


def _entry(index: int) -> SectionDef:
    """Row ``index`` as a ``SectionDef``, one object per row (``SECTION_DEFS`` has it too)."""
    made = _MADE.get(index)
    if made is None:
        made = _MADE[index] = SectionDef(*_ROWS[index])
    return made


TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    SECTION_DEFS: tuple[SectionDef, ...]  # every entry, in table order


def __getattr__(name: str) -> object:
    """``SECTION_DEFS``: every entry, made on first use."""
    if name == "SECTION_DEFS":
        value = tuple(_entry(index) for index in range(len(_ROWS)))
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
