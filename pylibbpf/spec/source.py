"""Where an object's bytes come from: a path, the bytes themselves, or several objects
linked into one (``BpfObject.open([a, b])``, as libbpf's ``bpf_linker``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import ObjectError
from .elf import parse_object
from .objspec import ObjectSpec, object_name

ObjectSource = str | os.PathLike[str] | bytes


def read_object(
    source: ObjectSource | Sequence[ObjectSource], name: str | None = None
) -> ObjectSpec:
    """Parse a BPF object given as a path or as its bytes (named after the file, as
    libbpf does, unless ``name`` is given); a list of them is linked into one first."""
    if isinstance(source, list | tuple):
        data, default_name = link_files(source)
        return parse_object(data, name or default_name)
    if isinstance(source, bytes | bytearray | memoryview):
        return parse_object(bytes(source), name or "object")
    assert isinstance(source, str | os.PathLike)
    return parse_object(_read(source), name or object_name(os.fspath(source)))


def link_files(sources: Sequence[ObjectSource]) -> tuple[bytes, str]:
    """Read and link several objects (paths or bytes): the linked ELF and the name libbpf
    would give it (the first file's, or ``object`` when the first is bytes)."""
    datas: list[bytes] = []
    labels: list[str] = []
    for index, source in enumerate(sources):
        if isinstance(source, bytes | bytearray | memoryview):
            datas.append(bytes(source))
            labels.append(f"object #{index + 1}")
        else:
            datas.append(_read(source))
            labels.append(os.path.basename(os.fspath(source)))
    first = sources[0] if sources else b""
    name = (
        "object"
        if isinstance(first, bytes | bytearray | memoryview)
        else object_name(os.fspath(first))
    )
    from .linker import link_objects  # the static linker, for lists of objects only

    return link_objects(datas, labels), name


def _read(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise ObjectError(
            f"cannot read BPF object {os.fspath(path)!r}: {error.strerror}", error.errno
        ) from error
