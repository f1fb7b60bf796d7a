"""Kernel addresses to symbols, from ``/proc/kallsyms``.

kallsyms lists vmlinux, every loaded module (``name\\t[module]``) and every JIT-compiled
BPF program (``bpf_prog_<tag>_<name>\\t[bpf]``). It changes as modules and programs come
and go, so a resolver reloads it, at most once a second, when an address falls outside
every symbol it knows.
"""

from __future__ import annotations

import errno
import time
from bisect import bisect_right

from ..errors import BpfError, BpfPermissionError
from .frame import Frame

KALLSYMS = "/proc/kallsyms"
# No kernel function is this long: an address further than this past the nearest symbol
# belongs to something kallsyms did not list when it was read (a new module or program).
MAX_FUNCTION_SIZE = 1 << 20
RELOAD_INTERVAL = 1.0
# Which of several names at one address to show: exported text, weak, local text, data.
_KIND_RANK = {"T": 0, "W": 1, "t": 2, "w": 3}


class KernelSymbols:
    """A sorted snapshot of kallsyms with bisection lookups and a per-address cache."""

    def __init__(self, text: str | None = None, *, path: str = KALLSYMS) -> None:
        """Parse ``text`` (kallsyms format), or read ``path`` when it is None."""
        self._path = path if text is None else None
        self._loaded_at = 0.0
        self._starts: list[int] = []
        self._entries: list[str] = []  # "name" or "name\t[module]", parallel to _starts
        self._aliases: list[tuple[int, str]] = []  # other names at an address already listed
        self._names: dict[str, int] | None = None
        self._cache: dict[int, Frame] = {}
        self._parse(self._read() if text is None else text)

    def _read(self) -> str:
        assert self._path is not None
        try:
            with open(self._path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError as error:
            raise BpfError(
                f"kernel symbols: cannot read {self._path}: {error.strerror}", error.errno
            ) from None

    def _parse(self, text: str) -> None:
        lines = text.split("\n")
        width = text.find(" ")
        if width <= 0:
            raise BpfError(
                f"kernel symbols: {self._path or 'text'} is empty or malformed", errno.EINVAL
            )
        kind_at, name_at = width + 1, width + 3
        rows: list[tuple[int, int, str]] = []
        append = rows.append
        for line in lines:
            if len(line) <= name_at:
                continue
            kind = line[kind_at]
            if kind in "aAuU":  # absolute values (per-CPU offsets), undefined
                continue
            try:
                append((int(line[:width], 16), _KIND_RANK.get(kind, 4), line[name_at:]))
            except ValueError:
                continue
        if rows and all(row[0] == 0 for row in rows[:64]):
            raise BpfPermissionError(
                "kernel symbols: /proc/kallsyms shows every address as 0 (run as root, or "
                "lower kernel.kptr_restrict)",
                errno.EPERM,
            )
        rows.sort()
        starts: list[int] = []
        entries: list[str] = []
        aliases: list[tuple[int, str]] = []
        last = -1
        for address, _rank, entry in rows:
            if address == last:  # aliases: the sort put the preferred name first
                aliases.append((address, entry))
                continue
            starts.append(address)
            entries.append(entry)
            last = address
        self._starts, self._entries, self._aliases = starts, entries, aliases
        self._names = None
        self._cache.clear()
        self._loaded_at = time.monotonic()

    def reload(self) -> bool:
        """Read kallsyms again (modules or BPF programs changed); False for parsed text."""
        if self._path is None:
            return False
        self._parse(self._read())
        return True

    def __len__(self) -> int:
        return len(self._starts)

    def _lookup(self, address: int) -> tuple[int, str] | None:
        index = bisect_right(self._starts, address) - 1
        if index < 0 or address - self._starts[index] >= MAX_FUNCTION_SIZE:
            return None
        return self._starts[index], self._entries[index]

    def resolve(self, address: int, *, caller: bool = False) -> Frame:
        """The symbol covering ``address``; ``name`` None if kallsyms has none.

        ``caller``: ``address`` is a return address (every stack frame but the first), so
        the call instruction before it is what is looked up: a call at a function's very
        end (to a ``noreturn`` function) returns to the next function's first byte.
        """
        key = -address if caller else address
        frame = self._cache.get(key)
        if frame is not None:
            return frame
        target = address - 1 if caller else address
        found = self._lookup(target)
        stale = time.monotonic() - self._loaded_at >= RELOAD_INTERVAL
        if found is None and stale and self.reload():
            found = self._lookup(target)
        if found is None:
            frame = Frame(address, None, kernel=True)
        else:
            start, entry = found
            name, _, module = entry.partition("\t")
            frame = Frame(address, name, address - start, module[1:-1] or None, kernel=True)
        self._cache[key] = frame
        return frame

    def address_of(self, name: str) -> int | None:
        """Where ``name`` starts (for a name several modules define, one of them)."""
        if self._names is None:
            names: dict[str, int] = {}
            for start, entry in [*zip(self._starts, self._entries, strict=True), *self._aliases]:
                names.setdefault(entry.partition("\t")[0], start)
            self._names = names
        return self._names.get(name)


_shared: KernelSymbols | None = None


def kernel_symbols() -> KernelSymbols:
    """This process's resolver (kallsyms read once, reloaded on misses)."""
    global _shared
    if _shared is None:
        _shared = KernelSymbols()
    return _shared
