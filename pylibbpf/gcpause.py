"""Building many objects at once with the cyclic garbage collector paused.

Every 700th new container object (a tuple, list, dict or instance) starts a collection
that walks the young ones, and, as they age, the older generations. Bulk work that makes
hundreds of thousands of containers which all live until it returns (a C dump's memos,
a batch read's pairs) gets nothing back from those passes and pays for every one."""

from __future__ import annotations

import gc
from collections.abc import Callable

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import TypeVar

    _T = TypeVar("_T")


def gc_paused(work: Callable[[], _T]) -> _T:
    """``work()`` with the cyclic GC paused, and left on or off as it was found (a caller
    that turned it off keeps it off)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return work()
    finally:
        if collecting:
            gc.enable()
