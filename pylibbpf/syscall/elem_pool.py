"""Each map's pool of element buffers (``MapElems``), apart from the buffers themselves
(``elem.py``): a map gets its pool when it is created, and ``elem.py`` (the buffer sets,
their fast paths, the direct entry points) is imported by the first element operation
that finds the pool empty, so loading an object, and a program that never reads its
maps, do without it. See ``elem.py`` for how operations use the pool."""

from __future__ import annotations

import struct
import weakref
from _thread import allocate_lock  # threading.Lock
from collections import deque
from collections.abc import Callable

from ..spec.codec import Codec

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

    Encoder = Callable[[Any], bytes]
    # ``elem.MapElemOps``: ``elem`` imports this module, so the type checker is not told
    # (a type-only import back would be a cycle).
    MapElemOps = Any

# A setter's "not my kind of input" (IndexError, BufferError: a record buffer's input of
# another size, or not contiguous).
FAST_MISS = (struct.error, TypeError, ValueError, IndexError, BufferError)
INVALID_FD = 0xFFFFFFFF  # a closed map: every later operation fails with EBADF


class MapElems:
    """What every buffer set for one map is made from: the map's fd, sizes and codecs, and
    the pool of ``MapElemOps`` not in use (``pool``; ``make_ops()`` when it is empty).

    It holds no reference to the ``Map``, so a map is freed by reference counting.
    """

    def __init__(
        self,
        map_fd: int,
        key_size: int,
        value_size: int,
        what: str,
        key: Codec,
        value: Codec,
        encode_value: Encoder,
        decode_value: Callable[[Any], Any] | None = None,
        percpu_slot: int = 0,
    ) -> None:
        self.fd = map_fd
        self.key_size = key_size
        self.value_size = value_size  # bytes in the kernel's value buffer (all CPUs)
        self.what = what
        self.key = key
        self.value = value
        self.encode_value = encode_value
        # Per-CPU maps decode their values (one per CPU) through this, given the buffer.
        self.decode_value = decode_value
        self.percpu_slot = percpu_slot  # per-CPU maps: bytes per CPU in the value buffer
        self._made: weakref.WeakSet[MapElemOps] = weakref.WeakSet()
        self._lock = allocate_lock()
        self.pool: deque[MapElemOps] = deque()
        # What the buffers refer to this by: the pool holds them, so a strong one would be
        # a cycle.
        self._proxy = weakref.proxy(self)

    def make_ops(self) -> MapElemOps:
        """A new buffer set, for an operation that found the pool empty (it gives the set
        to the pool when it is done)."""
        from .elem import MapElemOps  # (on a map's first element operation: see above)

        return MapElemOps(self._proxy)

    def any_ops(self) -> MapElemOps:
        """A buffer set of the pool, left in it: for tests and benches to look at (an
        operation takes its own: ``pool.pop()``)."""
        if not self.pool:
            self.pool.append(self.make_ops())
        return self.pool[-1]

    def register(self, ops: MapElemOps) -> int:
        """Note a thread's new buffers (so ``invalidate`` reaches them); the fd to use."""
        with self._lock:
            self._made.add(ops)
            return self.fd

    def invalidate(self) -> None:
        """Make every later operation, in every thread, fail with EBADF (map closed)."""
        with self._lock:
            self.fd = INVALID_FD
            for ops in list(self._made):
                ops.attr.map_fd = INVALID_FD


__all__ = ["FAST_MISS", "INVALID_FD", "MapElems"]
