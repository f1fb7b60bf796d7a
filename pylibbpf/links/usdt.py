"""USDT links: a program using libbpf's ``usdt.bpf.h`` at every location of a probe, with
each location's argument spec in the object's ``__bpf_usdt_specs`` map (``spec.usdt`` reads
the notes and builds the specs)."""

from __future__ import annotations

import ctypes
import errno
import functools
import weakref

from .. import syscall
from ..btf import Btf
from ..errors import AttachError, NotSupportedError
from ..maps import Map
from ..spec.elfsym import find_binary, read_image
from ..spec.usdt import SPECS_MAP, arg_types, read_notes, spec_record
from ..syscall import system
from ..uapi import AttachType
from .base import Attachable, Link, create_link
from .uprobe import attach_uprobe

# Spec slots in use, per specs map (freed when the link of a location closes).
_spec_ids: weakref.WeakKeyDictionary[Map, set[int]] = weakref.WeakKeyDictionary()


def _specs_map(program: Attachable) -> tuple[Map, Btf | None]:
    """The object's specs map and BTF (which says what its usdt.bpf.h supports)."""
    obj = program.obj
    if obj is None or SPECS_MAP not in obj.maps:
        raise AttachError(
            f"program {program.name!r}: USDT needs a program from a BpfObject that includes "
            f"libbpf's usdt.bpf.h (its {SPECS_MAP} map holds the argument specs)",
            errno.EINVAL,
        )
    return obj.maps[SPECS_MAP], obj.spec.btf


def attach_usdt(
    program: Attachable, binary: str, provider: str, name: str, *, pid: int = -1, cookie: int = 0
) -> Link:
    """Attach ``program`` at every location of ``provider:name`` in ``binary``; one link
    (closing it detaches all locations and frees their spec slots). A program loaded as
    uprobe.multi (where the kernel has those links, as libbpf loads usdt programs) gets
    one uprobe.multi link for every location; otherwise one uprobe per location."""
    if system.machine() != "x86_64":
        raise NotSupportedError("USDT argument specs are only decoded for x86-64", errno.EOPNOTSUPP)
    if system.kernel_version() < (5 << 16 | 15 << 8):
        raise NotSupportedError(
            "USDT needs BPF cookies on uprobe links (Linux 5.15+)", errno.EOPNOTSUPP
        )
    path = find_binary(binary)
    what = f"program {program.name!r} on USDT {path}:{provider}:{name}"
    notes = [n for n in read_notes(path) if (n.provider, n.name) == (provider, name)]
    if not notes:
        known = sorted({f"{n.provider}:{n.name}" for n in read_notes(path)})
        hint = f"; it has {', '.join(known[:8])}" if known else "; it has no USDT notes"
        raise AttachError(f"{what}: no such probe{hint}", errno.ENOENT)
    specs, btf = _specs_map(program)
    types = arg_types(btf)
    used = _spec_ids.setdefault(specs, set())
    image = read_image(path)
    # (spec id, file offset, semaphore offset) per location
    locations: list[tuple[int, int, int]] = []
    try:
        for note in notes:
            spec_id = next((i for i in range(specs.max_entries) if i not in used), None)
            if spec_id is None:
                raise AttachError(f"{what}: {SPECS_MAP} is full", errno.ENOSPC)
            record = spec_record(specs.value_type, note, cookie, types, what)
            specs.update(spec_id, bytes(record))
            used.add(spec_id)
            offset = image.file_offset(note.address, what)
            semaphore = image.file_offset(note.semaphore, what) if note.semaphore else 0
            locations.append((spec_id, offset, semaphore))
        if program.expected_attach_type == AttachType.TRACE_UPROBE_MULTI:
            link = _attach_multi(program, path, locations, pid, what)
        else:
            link = _attach_each(program, path, locations, pid)
    except BaseException:
        for spec_id, _, _ in locations:
            used.discard(spec_id)
        raise
    for spec_id, _, _ in locations:
        link.on_close(functools.partial(used.discard, spec_id))
    link.description = f"{what} ({len(notes)} location{'s' if len(notes) > 1 else ''})"
    return link


def _attach_multi(
    program: Attachable, path: str, locations: list[tuple[int, int, int]], pid: int, what: str
) -> Link:
    """One uprobe.multi link on every location, each with its spec id as the cookie."""
    count = len(locations)
    path_buffer = ctypes.create_string_buffer(path.encode())
    offsets = (ctypes.c_uint64 * count)(*(offset for _, offset, _ in locations))
    semaphores = (ctypes.c_uint64 * count)(*(semaphore for _, _, semaphore in locations))
    cookies = (ctypes.c_uint64 * count)(*(spec_id for spec_id, _, _ in locations))
    opts = syscall.UprobeMultiLinkOpts(
        path=ctypes.addressof(path_buffer),
        offsets=ctypes.addressof(offsets),
        ref_ctr_offsets=ctypes.addressof(semaphores) if any(semaphores) else 0,
        cookies=ctypes.addressof(cookies),
        cnt=count,
        pid=max(pid, 0),
    )
    return create_link(program, 0, AttachType.TRACE_UPROBE_MULTI, what, opts=opts)


def _attach_each(
    program: Attachable, path: str, locations: list[tuple[int, int, int]], pid: int
) -> Link:
    """One perf-event uprobe per location (kernels without uprobe.multi links), closed
    together with the first."""
    links: list[Link] = []
    try:
        for spec_id, offset, semaphore in locations:
            links.append(
                attach_uprobe(
                    program,
                    path,
                    None,
                    offset=offset,
                    pid=pid,
                    ref_ctr_offset=semaphore,
                    cookie=spec_id,
                )
            )
    except BaseException:
        for link in links:
            link.close()
        raise
    first = links[0]
    for other in links[1:]:
        first.on_close(other.close)
    return first
