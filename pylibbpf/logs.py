"""What pylibbpf tells a daemon, through the standard ``logging`` module.

Every module logs under its own name, so the layers are child loggers of ``pylibbpf``
(``pylibbpf.loader.maps``, ``pylibbpf.links.tc``, ``pylibbpf.syscall.perf``…) and can be
turned up or down one at a time. Silent by default: the ``pylibbpf`` logger has a
``NullHandler``, as the logging HOWTO asks of libraries, so nothing reaches stderr until
the application configures logging (``logging.basicConfig(level=logging.DEBUG)``) or
calls ``set_print``.

Levels, as libbpf's print levels:

- WARNING: something refused and worked around or about to fail (the verifier log of a
  rejected program, the object's BTF or a map's BTF refused by the kernel);
- INFO: what a daemon wants in its log (object opened and loaded, a pinned map reused
  or pinned, the route an attachment took: tcx or netlink, bpf_link or ioctl);
- DEBUG: the details (each map created, each program loaded, each CO-RE relocation).

Messages are %-formatted lazily and nothing logs on the per-element map paths or in
ring/perf buffer consumption, so a disabled logger costs those paths nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

PACKAGE_LOGGER = logging.getLogger("pylibbpf")
PACKAGE_LOGGER.addHandler(logging.NullHandler())

PrintCallback = Callable[[int, str], None]
"""``callback(level, message)``: a ``logging`` level number and the formatted message."""


def get_logger(name: str) -> logging.Logger:
    """The logger of module ``name`` (pass ``__name__``), below ``pylibbpf``."""
    return logging.getLogger(name)


class _PrintHandler(logging.Handler):
    """Hands each record to a ``set_print`` callback."""

    def __init__(self, callback: PrintCallback) -> None:
        super().__init__(logging.NOTSET)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.callback(record.levelno, record.getMessage())
        except Exception:
            self.handleError(record)


# The installed callback's handler, and the logger's level and propagation before it.
_installed: tuple[_PrintHandler, int, bool] | None = None


def set_print(
    callback: PrintCallback | None, *, level: int = logging.DEBUG
) -> PrintCallback | None:
    """libbpf's ``libbpf_set_print``: send pylibbpf's messages of ``level`` and above to
    ``callback(level, message)`` instead of the ``logging`` handlers, and return the
    callback this replaces. ``set_print(None)`` restores plain ``logging`` (silent
    unless the application configured it).

    As with libbpf, the callback sees every level (DEBUG included, unless ``level`` says
    otherwise) and filters what it wants; ``level`` is compared with ``logging`` levels
    (``logging.WARNING`` is libbpf's WARN, ``INFO`` its INFO, ``DEBUG`` its DEBUG).
    """
    global _installed
    previous: PrintCallback | None = None
    if _installed is not None:
        handler, old_level, old_propagate = _installed
        PACKAGE_LOGGER.removeHandler(handler)
        PACKAGE_LOGGER.setLevel(old_level)
        PACKAGE_LOGGER.propagate = old_propagate
        previous = handler.callback
        _installed = None
    if callback is not None:
        handler = _PrintHandler(callback)
        _installed = (handler, PACKAGE_LOGGER.level, PACKAGE_LOGGER.propagate)
        PACKAGE_LOGGER.addHandler(handler)
        PACKAGE_LOGGER.setLevel(level)
        PACKAGE_LOGGER.propagate = False  # replaces the print function, as libbpf's does
    return previous
