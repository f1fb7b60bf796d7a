"""Pins on bpffs: one behaviour for maps, programs and links.

``pin`` creates a missing parent directory (mode 0700, one level, as libbpf's
``make_parent_dir``), so a ``pin_root_path`` that does not exist yet is made on first use;
``unpin`` removes the pin this object made or was opened from (``from_pinned`` remembers
the path), and says so when there is none.
"""

from __future__ import annotations

import errno
import os

from ..errors import BpfError
from .bpf import obj_pin


def pin_object(fd: int, path: str | os.PathLike[str], what: str) -> str:
    """Pin ``fd`` at ``path``; returns the path to remember for ``unpin``."""
    target = os.fspath(path)
    parent = os.path.dirname(target)
    if parent and not os.path.isdir(parent):
        try:
            os.mkdir(parent, 0o700)
        except FileExistsError:
            pass
        except OSError as error:
            raise BpfError(
                f"{what}: cannot create the pin directory {parent!r}: {error.strerror}",
                error.errno,
            ) from error
    obj_pin(fd, target, what=what)
    return target


def unpin_object(
    path: str | os.PathLike[str] | None, pinned_at: str | None, what: str
) -> str | None:
    """Remove the pin at ``path`` (default: ``pinned_at``, where the object was pinned or
    opened); returns what the object should remember afterwards."""
    target = os.fspath(path) if path is not None else pinned_at
    if target is None:
        raise BpfError(
            f"{what} is not pinned (pin() and from_pinned() remember where)", errno.ENOENT
        )
    try:
        os.unlink(target)
    except FileNotFoundError as error:
        raise BpfError(f"{what}: nothing pinned at {target!r}", errno.ENOENT) from error
    return None if target == pinned_at else pinned_at
