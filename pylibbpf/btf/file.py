"""BTF from files: raw BTF, or the ``.BTF`` section of an ELF object (pure: reads only the
file it is given)."""

from __future__ import annotations

import os
import struct
from io import BytesIO

from ..errors import ObjectError
from .parse import Btf


def from_file(path: str | os.PathLike[str], base: Btf | None = None) -> Btf:
    """BTF from a raw BTF file or from the ``.BTF`` section of an ELF object."""
    try:
        with open(path, "rb") as file:  # not pathlib: its import costs more than the read
            data = file.read()
    except OSError as error:
        raise ObjectError(
            f"cannot read BTF file {os.fspath(path)!r}: {error.strerror}", error.errno
        ) from error
    if data[:4] == b"\x7fELF":
        return from_elf(data, name=os.fspath(path), base=base)
    return Btf(data, name=os.fspath(path), base=base)


def from_elf(data: bytes, *, name: str = "ELF", base: Btf | None = None) -> Btf:
    """BTF of an ELF object's ``.BTF`` section (ObjectError if it has none)."""
    # pyelftools costs ~40 ms to import: raw BTF (vmlinux's, modules') never needs it.
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(BytesIO(data))
        section = elf.get_section_by_name(".BTF")
    except (ELFError, ValueError, struct.error) as error:
        raise ObjectError(f"{name}: not a valid ELF file: {error}") from error
    if section is None:
        raise ObjectError(f"{name}: has no .BTF section (compile with clang -g)")
    return Btf(bytes(section.data()), name=f"{name} .BTF", base=base)
