"""Auto-attach: what a section name says about where a program attaches, as a table.

``spec.sections`` gives each SEC() prefix an attach kind; this table maps the kind to a
function taking the program, its section (without a leading ``?``) and the section's
target (what follows the first ``/``). A function returns None when the section names no
target (``SEC("kprobe")``: attach explicitly, as in libbpf).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from ..errors import AttachError
from ..spec.elfsym import parse_target
from ..spec.sections import find_section_def
from ..uapi import AttachType
from . import cgroup, kprobe, netkit, tc, tracing, uprobe, usdt
from .base import Attachable, Link

AutoAttach = Callable[..., Link | None]


def _tracepoint(program: Attachable, section: str, target: str) -> Link:
    category, _, name = target.partition("/")
    if not name:
        raise AttachError(
            f"program {program.name!r}: section {section!r} should be tp/<category>/<name>",
            errno.EINVAL,
        )
    return tracing.attach_tracepoint(program, category, name)


def _raw_tracepoint(program: Attachable, section: str, target: str) -> Link:
    if not target:
        raise AttachError(
            f"program {program.name!r}: section {section!r} should be raw_tp/<name>",
            errno.EINVAL,
        )
    return tracing.attach_raw_tracepoint(program, target)


def _trace(program: Attachable, section: str, target: str) -> Link:
    return tracing.attach_trace(program)


def _iter(program: Attachable, section: str, target: str, **options: Any) -> Link:
    return tracing.attach_iter(program, **options)


def _kprobe(program: Attachable, section: str, target: str) -> Link | None:
    if not target:
        return None
    function, _, offset = target.partition("+")
    retprobe = section.split("/")[0].startswith("kretprobe")
    return kprobe.attach_kprobe(program, function, retprobe=retprobe, offset=int(offset or "0", 0))


def _kprobe_multi(program: Attachable, section: str, target: str) -> Link | None:
    if not target:
        return None
    return kprobe.attach_kprobe_multi(program, target, retprobe=section.startswith("kretprobe"))


def _ksyscall(program: Attachable, section: str, target: str) -> Link | None:
    if not target:
        return None
    return kprobe.attach_ksyscall(program, target, retprobe=section.startswith("kretsyscall"))


def _uprobe(program: Attachable, section: str, target: str) -> Link | None:
    if not target:
        return None
    binary, symbol, file_offset = parse_target(target)
    retprobe = section.startswith("uretprobe")
    return uprobe.attach_uprobe(program, binary, symbol, offset=file_offset, retprobe=retprobe)


def _uprobe_multi(program: Attachable, section: str, target: str) -> Link | None:
    if not target:
        return None
    binary, _, pattern = target.rpartition(":")
    retprobe = section.startswith("uretprobe")
    return uprobe.attach_uprobe_multi(program, binary, pattern, retprobe=retprobe)


def _usdt(program: Attachable, section: str, target: str) -> Link | None:
    if not target:
        return None
    parts = target.rsplit(":", 2)
    if len(parts) != 3 or not all(parts):
        raise AttachError(
            f"program {program.name!r}: section {section!r} should be "
            "usdt/<path>:<provider>:<name>",
            errno.EINVAL,
        )
    return usdt.attach_usdt(program, parts[0], parts[1], parts[2])


def _needs_target(program: Attachable, section: str, target: str) -> None:
    """The hook (a cgroup, an interface, a namespace) is not in the section name."""
    return None


def _tcx(program: Attachable, section: str, target: str, **options: Any) -> Link | None:
    """``attach(interface=..., anchor=..., expected_revision=...)``; the direction is
    the section's."""
    if "interface" not in options:
        return None
    direction = "egress" if program.expected_attach_type == AttachType.TCX_EGRESS else "ingress"
    return tc.attach_tc(program, options.pop("interface"), direction, **options)


def _netkit(program: Attachable, section: str, target: str, **options: Any) -> Link | None:
    """``attach(interface=..., anchor=..., expected_revision=...)``; the side is the
    section's."""
    if "interface" not in options:
        return None
    return netkit.attach_netkit(program, options.pop("interface"), **options)


def _cgroup(program: Attachable, section: str, target: str, **options: Any) -> Link | None:
    """``attach(cgroup=..., anchor=..., expected_revision=...)``."""
    if "cgroup" not in options:
        return None
    return cgroup.attach_cgroup(program, options.pop("cgroup"), **options)


AUTO_ATTACH: dict[str, AutoAttach] = {
    "tracepoint": _tracepoint,
    "raw_tp": _raw_tracepoint,
    "trace": _trace,
    "lsm": _trace,
    "iter": _iter,
    "kprobe": _kprobe,
    "kprobe_multi": _kprobe_multi,
    "ksyscall": _ksyscall,
    "uprobe": _uprobe,
    "uprobe_multi": _uprobe_multi,
    "usdt": _usdt,
    "cgroup": _cgroup,
    "netns": _needs_target,
    "tcx": _tcx,
    "netkit": _netkit,
    "xdp": _needs_target,
}

# The kinds whose attach functions take keyword options through ``attach(**options)``.
_TAKE_OPTIONS = frozenset({"iter", "cgroup", "tcx", "netkit"})


def attach_from_section(program: Attachable, **options: Any) -> Link | None:
    """Auto-attach from the section name, in libbpf's formats; None if it cannot.
    ``options`` go to the kind's attach function: an iterator's parameters, the
    interface of a tcx or netkit program, the cgroup of a cgroup program, anchors."""
    definition = find_section_def(program.section)
    if definition is None or not definition.attach:
        if options:
            raise AttachError(
                f"program {program.name!r}: section {program.section!r} does not "
                f"auto-attach, so it takes no options ({', '.join(options)})",
                errno.EINVAL,
            )
        return None
    section = program.section.lstrip("?")
    target = section.split("/", 1)[1] if "/" in section else ""
    attach = AUTO_ATTACH.get(definition.attach)
    if attach is None:
        raise AttachError(
            f"program {program.name!r}: automatic attachment of {definition.attach!r} "
            f"programs (section {section!r}) is not implemented yet",
            errno.EOPNOTSUPP,
        )
    if definition.attach not in _TAKE_OPTIONS:
        if options:
            raise AttachError(
                f"program {program.name!r}: {definition.attach} programs (section "
                f"{section!r}) take no attach options ({', '.join(options)})",
                errno.EINVAL,
            )
        return attach(program, section, target)
    try:
        return attach(program, section, target, **options)
    except TypeError as error:
        if "keyword argument" not in str(error):
            raise
        raise AttachError(  # an option the kind's attach function does not take
            f"program {program.name!r} (section {section!r}): {error}", errno.EINVAL
        ) from error
