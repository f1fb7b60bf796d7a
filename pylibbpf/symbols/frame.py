"""What a resolved address is: one frame of a stack, kernel or user."""

from __future__ import annotations

from typing import NamedTuple


class Frame(NamedTuple):
    """One resolved address (a tuple: made at C speed, immutable, so caches share them).

    ``name`` is None when no symbol covers the address (stripped code, JIT, a process
    that has exited); ``module`` is the kernel module (``None`` for vmlinux itself,
    ``"bpf"`` for BPF programs) or, in user space, the mapped file; ``file``/``line``
    come from DWARF line info when the binary (or its debug file) has it.
    """

    address: int
    name: str | None
    offset: int = 0
    module: str | None = None
    file: str | None = None
    line: int | None = None
    kernel: bool = False

    @property
    def function(self) -> str:
        """The symbol name, or ``[unknown]`` (what flame graphs and bcc print)."""
        return self.name if self.name is not None else "[unknown]"

    def format(self, *, offset: bool = True, module: bool = True, line: bool = True) -> str:
        """``name+0x1c (module)``, ``name+0x1c (file.c:12)`` or ``[unknown] 0x7f... (lib)``.

        Line info, when asked for and known, replaces the module: the source file says
        more than the binary's path.
        """
        if self.name is None:
            text = f"[unknown] {self.address:#x}"
        elif offset:
            text = f"{self.name}+{self.offset:#x}"
        else:
            text = self.name
        if line and self.line is not None:
            return f"{text} ({self.file}:{self.line})"
        if module and self.module is not None:
            return f"{text} ({self.module})"
        return text

    def __str__(self) -> str:
        return self.format()
