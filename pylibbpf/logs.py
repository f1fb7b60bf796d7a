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

import sys
from collections.abc import Callable

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    import logging

# ``logging``'s level numbers (fixed by its API), so callers need not import it.
DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40

PrintCallback = Callable[[int, str], None]
"""``callback(level, message)``: a ``logging`` level number and the formatted message."""


def package_logger() -> logging.Logger:
    """The ``pylibbpf`` logger, with its ``NullHandler`` (added once)."""
    import logging

    logger = logging.getLogger("pylibbpf")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    return logger


class ModuleLogger:
    """A module's logger that costs nothing until the application has imported
    ``logging``: before that no handler or level can have been set, so a record would
    reach nobody (the ``pylibbpf`` logger's ``NullHandler`` keeps it from stderr) and is
    dropped here without importing ``logging`` (which, with ``traceback`` and
    ``threading``, is a good part of what ``import pylibbpf`` would cost). Once it is
    imported, calls go to ``logging.getLogger(name)``: same names, levels and records,
    attributed to the caller's line."""

    __slots__ = ("_logger", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: logging.Logger | None = None

    def _real(self) -> logging.Logger | None:
        if self._logger is None:
            if "logging" not in sys.modules:
                return None
            package_logger()
            self._logger = sys.modules["logging"].getLogger(self.name)
        return self._logger

    def isEnabledFor(self, level: int) -> bool:
        """As ``logging.Logger.isEnabledFor`` (False while ``logging`` is not imported)."""
        logger = self._real()
        return logger is not None and logger.isEnabledFor(level)

    def debug(self, msg: str, *args: object, **kwargs: Any) -> None:
        """As ``logging.Logger.debug``."""
        logger = self._real()
        if logger is not None:
            logger.debug(msg, *args, stacklevel=2, **kwargs)

    def info(self, msg: str, *args: object, **kwargs: Any) -> None:
        """As ``logging.Logger.info``."""
        logger = self._real()
        if logger is not None:
            logger.info(msg, *args, stacklevel=2, **kwargs)

    def warning(self, msg: str, *args: object, **kwargs: Any) -> None:
        """As ``logging.Logger.warning``."""
        logger = self._real()
        if logger is not None:
            logger.warning(msg, *args, stacklevel=2, **kwargs)

    def error(self, msg: str, *args: object, **kwargs: Any) -> None:
        """As ``logging.Logger.error``."""
        logger = self._real()
        if logger is not None:
            logger.error(msg, *args, stacklevel=2, **kwargs)


def module_logger(name: str) -> ModuleLogger:
    """The logger of pylibbpf module ``name`` (pass ``__name__``), imported lazily."""
    return ModuleLogger(name)


def get_logger(name: str) -> logging.Logger:
    """The ``logging`` logger of module ``name``, below ``pylibbpf``."""
    import logging

    package_logger()
    return logging.getLogger(name)


def __getattr__(name: str) -> object:
    """``PACKAGE_LOGGER`` (the ``pylibbpf`` logger), importing ``logging`` when asked."""
    if name == "PACKAGE_LOGGER":
        return package_logger()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _print_handler(callback: PrintCallback) -> logging.Handler:
    """A handler that hands each record to a ``set_print`` callback."""
    import logging

    class _PrintHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                callback(record.levelno, record.getMessage())
            except Exception:
                self.handleError(record)

    return _PrintHandler()


# The installed callback with its handler, and the logger's level and propagation before it.
_installed: tuple[PrintCallback, logging.Handler, int, bool] | None = None


def set_print(callback: PrintCallback | None, *, level: int = DEBUG) -> PrintCallback | None:
    """libbpf's ``libbpf_set_print``: send pylibbpf's messages of ``level`` and above to
    ``callback(level, message)`` instead of the ``logging`` handlers, and return the
    callback this replaces. ``set_print(None)`` restores plain ``logging`` (silent
    unless the application configured it).

    As with libbpf, the callback sees every level (DEBUG included, unless ``level`` says
    otherwise) and filters what it wants; ``level`` is compared with ``logging`` levels
    (``logging.WARNING`` is libbpf's WARN, ``INFO`` its INFO, ``DEBUG`` its DEBUG).
    """
    global _installed
    logger = package_logger()
    previous: PrintCallback | None = None
    if _installed is not None:
        previous, handler, old_level, old_propagate = _installed
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
        _installed = None
    if callback is not None:
        handler = _print_handler(callback)
        _installed = (callback, handler, logger.level, logger.propagate)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False  # replaces the print function, as libbpf's does
    return previous
