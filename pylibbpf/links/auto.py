"""Auto-attach: what a section name says about where a program attaches, as a table.

``spec.sections`` gives each SEC() prefix an attach kind; this table maps the kind to a
function taking the program, its section (without a leading ``?``) and the section's
target (what follows the first ``/``). A function returns None when the section names no
target (``SEC("kprobe")``: attach explicitly, as in libbpf).
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from ..errors import AttachError
from ..spec.elfsym import parse_target
from ..spec.sections import find_section_def
from . import kprobe, tracing, uprobe, usdt
from .base import Attachable, Link

AutoAttach = Callable[[Attachable, str, str], Link | None]


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


def _iter(program: Attachable, section: str, target: str) -> Link:
    return tracing.attach_iter(program)


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
    "cgroup": _needs_target,
    "netns": _needs_target,
    "tcx": _needs_target,
    "xdp": _needs_target,
}


def attach_from_section(program: Attachable) -> Link | None:
    """Auto-attach from the section name, in libbpf's formats; None if it cannot."""
    definition = find_section_def(program.section)
    if definition is None or not definition.attach:
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
    return attach(program, section, target)
