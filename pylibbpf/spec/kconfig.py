"""``__kconfig`` externs: where each lives in the ``.kconfig`` map and how a CONFIG_ value
is encoded there. Pure: the values come from whoever calls (the loader reads the running
kernel's configuration at load time; ``kconfig=`` overrides them)."""

from __future__ import annotations

import errno

from ..btf import Btf, Kind
from ..errors import ObjectError
from .objspec import ExternSpec


def parse_kconfig(text: str) -> dict[str, str]:
    """``CONFIG_X=value`` lines (and ``# CONFIG_X is not set`` as ``n``) of a .config."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            values[key] = value
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            values[line[2:-11]] = "n"
    return values


_TRI_STATE = {"y": 1, "n": 0, "m": 2}


def _sized(btf: Btf, externs: list[ExternSpec]) -> list[tuple[int, str, int, int]]:
    """(minus alignment, name, size, type) per extern: sorted, libbpf's packing order."""
    sized = []
    for extern in externs:
        var = btf[extern.type_id]
        _check_kconfig_type(btf, var.type, extern.name)
        sized.append((-btf.alignof(var.type), extern.name, btf.sizeof(var.type), var.type))
    return sorted(sized)


def _check_kconfig_type(btf: Btf, type_id: int, name: str) -> None:
    """libbpf's kconfig types: bool, a 1/2/4/8-byte int, the 4-byte ``libbpf_tristate``
    enum, a char array. Anything else (a struct, gigabytes) is refused at open."""
    t = btf.resolve(type_id)
    if t.kind == Kind.ARRAY:
        element = btf.resolve(t.type)
        accepted = bool(t.nelems) and element.kind == Kind.INT and element.size == 1
    elif t.kind == Kind.INT:
        accepted = t.size in (1, 2, 4, 8) and t.bit_offset == 0
    else:
        accepted = t.kind == Kind.ENUM and t.name == "libbpf_tristate" and t.size == 4
    if not accepted:
        raise ObjectError(
            f"{btf.name}: __kconfig extern {name!r}: its type {t.describe()} "
            f"({btf.sizeof(t.id)} bytes) is not bool, a 1/2/4/8-byte integer, "
            "libbpf_tristate or a char array",
            errno.ENOTSUP,
        )


def layout_kconfig(btf: Btf, externs: list[ExternSpec]) -> tuple[dict[str, tuple[int, int]], int]:
    """Where each ``__kconfig`` extern lives in the ``.kconfig`` map, as {name: (offset,
    size)} (largest alignment first, as libbpf packs them), and the map's size."""
    layout: dict[str, tuple[int, int]] = {}
    offset = 0
    for negative_align, name, size, _type in _sized(btf, externs):
        offset = -(-offset // -negative_align) * -negative_align
        layout[name] = (offset, size)
        offset += size
    return layout, max(offset, 1)


def fill_kconfig(
    object_name: str,
    btf: Btf,
    externs: list[ExternSpec],
    layout: dict[str, tuple[int, int]],
    image: bytearray,
    values: dict[str, str],
) -> None:
    """Write each extern's value from ``values`` into ``image`` at its place in
    ``layout``; a missing value is an error unless the extern is ``__weak`` (then 0)."""
    weak = {extern.name: extern.weak for extern in externs}
    for _, name, size, type_id in _sized(btf, externs):
        raw = values.get(name)
        start = layout[name][0]
        if raw is None:
            if not name.startswith("CONFIG_") and not (name.startswith("LINUX_") and weak[name]):
                raise ObjectError(
                    f"{object_name}: __kconfig extern {name!r} is unrecognized (only CONFIG_* "
                    "and libbpf's LINUX_* values are known; or pass kconfig=)",
                    errno.EINVAL,
                )
            if not weak[name]:
                raise ObjectError(
                    f"{object_name}: __kconfig extern {name!r} is not set in the kernel "
                    "config (declare it __weak to default to 0, or pass kconfig=)",
                    errno.ESRCH,
                )
            image[start : start + size] = bytes(size)
            continue
        image[start : start + size] = _kconfig_bytes(btf, type_id, size, name, raw, object_name)


def _kconfig_bytes(
    btf: Btf, type_id: int, size: int, name: str, raw: str, object_name: str = ""
) -> bytes:
    t = btf.resolve(type_id)
    value = raw.strip()
    if t.kind == Kind.ENUM and t.name == "libbpf_tristate":
        if value not in _TRI_STATE:
            raise ObjectError(
                f"{object_name}: __kconfig extern {name!r}: {value!r} is not y, n or m",
                errno.EINVAL,
            )
        return _TRI_STATE[value].to_bytes(size, "little")
    if t.kind == Kind.ARRAY:
        text = value.strip('"').encode()
        return text[: size - 1].ljust(size, b"\0")
    if value in _TRI_STATE:
        return (1 if value in ("y", "m") else 0).to_bytes(size, "little")
    try:
        number = int(value.strip('"'), 0)
    except ValueError as error:
        raise ObjectError(
            f"{object_name}: __kconfig extern {name!r}: {value!r} is not a number", errno.EINVAL
        ) from error
    try:
        return number.to_bytes(size, "little", signed=number < 0)
    except OverflowError:
        raise ObjectError(
            f"{object_name}: __kconfig extern {name!r}: {value!r} does not fit in its "
            f"{size}-byte type",
            errno.ERANGE,
        ) from None
