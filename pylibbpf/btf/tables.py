"""Tables derived from a BTF's content, kept across processes when the BTF has a trusted
store for them (the running kernel's, through the signed on-disk index).

A C dump of vmlinux spends a third of its time on answers that depend only on the BTF's
bytes: whether the whole type graph checks out, and the order of the definitions. The
kernel's BTF stays the same for a whole boot (and kernel build), so a process may reuse
what an earlier one derived. The store itself belongs to the kernel half
(``syscall.btf_index``): it puts one in ``Btf.memo`` under ``STORE``; this module only
asks it. Any other BTF (a file, an object's) has none and derives everything each time.
"""

from __future__ import annotations

from .parse import Btf

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Protocol

    class TableStore(Protocol):
        """Tables by name for one BTF content: what ``put`` stored, intact (its bytes, or
        a view of them), or None."""

        def get(self, name: str) -> bytes | memoryview | None: ...

        def put(self, name: str, table: bytes) -> None: ...


STORE = "derived tables"  # the Btf.memo key of a BTF's store, if it has one


def cached(btf: Btf, name: str) -> bytes | memoryview | None:
    """The table ``name`` an earlier process derived from this BTF's content, if kept."""
    store: TableStore | None = btf.memo.get(STORE)
    return None if store is None else store.get(name)


def keep(btf: Btf, name: str, table: bytes) -> None:
    """Keep ``table`` for later processes, when this BTF has a store (else nothing)."""
    store: TableStore | None = btf.memo.get(STORE)
    if store is not None:
        store.put(name, table)
