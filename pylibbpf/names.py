"""Lookups by name that say what exists: ``obj.programs["cout"]`` raises a ``KeyError``
naming ``count``, the close match, instead of a bare ``KeyError: 'cout'``.

``NamedDict`` is a ``dict`` (every dict operation works unchanged) whose missing keys
raise ``NameNotFoundError``; skeletons raise the same error for a misspelt attribute
(it is an ``AttributeError`` as well, so ``hasattr`` and ``getattr(x, n, default)`` keep
working).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import TypeVar

    V = TypeVar("V")


class NameNotFoundError(KeyError, AttributeError):
    """A program, map, variable or skeleton attribute that does not exist; ``matches``
    are the close names, ``known`` every name there is."""

    def __init__(self, kind: str, name: str, known: Iterable[str], owner: str = "") -> None:
        self.kind = kind
        self.name = name  # (AttributeError.name too: the same meaning)
        self.known = sorted(known)
        import difflib  # a miss: not paid by lookups that hit

        self.matches = difflib.get_close_matches(name, self.known, n=3, cutoff=0.6)
        super().__init__(self._message(owner))

    def _message(self, owner: str) -> str:
        where = f"{owner}: " if owner else ""
        text = f"{where}no {self.kind} named {self.name!r}"
        if self.matches:
            return text + f"; did you mean {' or '.join(map(repr, self.matches))}?"
        if not self.known:
            return text + f" (there is no {self.kind})"
        shown = ", ".join(self.known[:12]) + (", ..." if len(self.known) > 12 else "")
        return text + f" (there are: {shown})"

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class NamedDict(dict[str, "V"]):
    """A ``dict`` of named things whose missing keys raise ``NameNotFoundError``."""

    def __init__(self, kind: str, owner: str, items: Mapping[str, V] | None = None) -> None:
        super().__init__(items or {})
        self.kind = kind
        self.owner = owner

    def __missing__(self, key: str) -> V:
        raise NameNotFoundError(self.kind, key, self, self.owner)


__all__ = ["NameNotFoundError", "NamedDict"]
