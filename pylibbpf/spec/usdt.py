"""USDT notes: statically defined probes (``DTRACE_PROBE``, ``.note.stapsdt``) in user binaries.

A USDT probe is a nop at a known address plus a string saying where each argument lives
at that point (``-4@-20(%rbp)``: a signed int in memory, ``8@%rax``: a register,
``4@$5``: a constant). Programs built on libbpf's ``usdt.bpf.h`` read arguments with
``bpf_usdt_arg()``, which interprets a spec the loader puts in the object's
``__bpf_usdt_specs`` map under an id passed as the uprobe's BPF cookie. This module does
the loader's part with the same layout (read from the object's BTF, so it follows whatever
version of the header the program was compiled with). Pure: reads only the binary; the
attaching is ``links.usdt``.
"""

from __future__ import annotations

import ctypes
import errno
import re
import struct
from dataclasses import dataclass
from typing import Any

from ..btf import Btf
from ..errors import AttachError, NotSupportedError

SPECS_MAP = "__bpf_usdt_specs"
_NT_STAPSDT = 3
# struct pt_regs on x86-64, in order: each member 8 bytes.
_PT_REGS = [
    "r15",
    "r14",
    "r13",
    "r12",
    "bp",
    "bx",
    "r11",
    "r10",
    "r9",
    "r8",
    "ax",
    "cx",
    "dx",
    "si",
    "di",
    "orig_ax",
    "ip",
    "cs",
    "flags",
    "sp",
    "ss",
]
_REGISTER_ALIASES = {
    **{f"{p}{r}x": r + "x" for r in "abcd" for p in ("r", "e", "")},
    **{f"{r}l": r + "x" for r in "abcd"},
    **{f"{p}{r}": r for r in ("si", "di", "bp", "sp") for p in ("r", "e", "")},
    **{f"{r}l": r for r in ("si", "di", "bp", "sp")},
    **{f"r{n}{s}": f"r{n}" for n in range(8, 16) for s in ("", "d", "w", "b")},
    "rip": "ip",
}
_ARG = re.compile(
    r"^(?P<size>-?\d+)@(?:"
    r"\$(?P<const>-?\d+)"
    r"|%(?P<reg>\w+)"
    r"|(?P<off>-?\d*)\(%(?P<base>\w+)(?:,%(?P<index>\w+)(?:,(?P<scale>[1248]))?)?\)"
    r")$"
)


@dataclass(frozen=True)
class UsdtArg:
    """Where one probe argument lives at the probe site."""

    kind: str  # "const", "reg", "deref", "sib" (base + index * scale + offset)
    size: int  # bytes; negative: signed
    value: int = 0  # constant, or offset for deref/sib
    register: str = ""
    index: str = ""  # sib: the index register
    scale: int = 1


@dataclass(frozen=True)
class UsdtNote:
    """One probe location from ``.note.stapsdt``."""

    provider: str
    name: str
    address: int  # of the probe's nop (virtual address in the binary)
    semaphore: int  # its address, 0 if none
    args: tuple[UsdtArg, ...]
    arg_text: str


def parse_args(text: str, where: str) -> tuple[UsdtArg, ...]:
    """An x86-64 stapsdt argument string as typed argument locations."""
    args = []
    for item in text.split():
        match = _ARG.match(item)
        if match is None:
            raise NotSupportedError(
                f"{where}: USDT argument {item!r} has a form this loader does not "
                "support (constants, registers and memory at base[+index*scale]+offset are)",
                errno.EOPNOTSUPP,
            )
        size = int(match["size"])
        if abs(size) not in (1, 2, 4, 8):
            raise AttachError(f"{where}: USDT argument {item!r} has size {size}", errno.EINVAL)
        if match["const"] is not None:
            args.append(UsdtArg("const", size, int(match["const"])))
        elif match["reg"] is not None:
            args.append(UsdtArg("reg", size, 0, _register(match["reg"], item, where)))
        else:
            offset = int(match["off"] or "0")
            base = _register(match["base"], item, where)
            if match["index"] is None:
                args.append(UsdtArg("deref", size, offset, base))
            else:
                index = _register(match["index"], item, where)
                scale = int(match["scale"] or "1")
                args.append(UsdtArg("sib", size, offset, base, index, scale))
    return tuple(args)


def _register(name: str, item: str, where: str) -> str:
    register = _REGISTER_ALIASES.get(name)
    if register is None:
        raise NotSupportedError(
            f"{where}: USDT argument {item!r}: register %{name} cannot be read from pt_regs",
            errno.EOPNOTSUPP,
        )
    return register


def read_notes(path: str) -> list[UsdtNote]:
    """Every probe in ``path``'s ``.note.stapsdt``, addresses adjusted for prelinking."""
    from elftools.common.exceptions import ELFError  # here: only USDT attaches need it
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            notes = elf.get_section_by_name(".note.stapsdt")
            if notes is None:
                return []
            data = notes.data()
            base_section = elf.get_section_by_name(".stapsdt.base")
            actual_base = base_section["sh_addr"] if base_section is not None else 0
            word = 8 if elf.elfclass == 64 else 4
            order = "<" if elf.little_endian else ">"
    except (OSError, ELFError) as error:
        raise AttachError(f"cannot read {path} as an ELF binary: {error}", errno.ENOEXEC) from error
    found = []
    position = 0
    while position + 12 <= len(data):
        namesz, descsz, kind = struct.unpack_from(f"{order}III", data, position)
        position += 12
        owner = data[position : position + namesz].rstrip(b"\0")
        position += (namesz + 3) & ~3
        desc = data[position : position + descsz]
        position += (descsz + 3) & ~3
        if owner != b"stapsdt" or kind != _NT_STAPSDT or len(desc) < 3 * word:
            continue
        pc, base, semaphore = struct.unpack_from(f"{order}3{'Q' if word == 8 else 'I'}", desc)
        provider, name, arg_text = [*desc[3 * word :].split(b"\0"), b"", b"", b""][:3]
        if actual_base and base:
            pc += actual_base - base
        where = f"{path}: USDT {provider.decode()}:{name.decode()}"
        found.append(
            UsdtNote(
                provider.decode(),
                name.decode(),
                pc,
                semaphore,
                parse_args(arg_text.decode(), where),
                arg_text.decode(),
            )
        )
    return found


def arg_types(btf: Btf | None) -> dict[str, int]:
    """The argument kinds a program's ``usdt.bpf.h`` knows, from its BTF (SIB: libbpf
    1.7's header)."""
    defaults = {"const": 0, "reg": 1, "deref": 2}
    if btf is None:
        return defaults
    for t in btf.find_all("__bpf_usdt_arg_type"):
        values = {v.name: v.value for v in t.values}
        found = {
            "const": values.get("BPF_USDT_ARG_CONST", 0),
            "reg": values.get("BPF_USDT_ARG_REG", 1),
            "deref": values.get("BPF_USDT_ARG_REG_DEREF", 2),
        }
        if "BPF_USDT_ARG_SIB" in values:
            found["sib"] = values["BPF_USDT_ARG_SIB"]
        return found
    return defaults


def _set(record: Any, field: str, value: int) -> None:
    if isinstance(getattr(record, field), bytes):  # `char` members are c_char in ctypes
        setattr(record, field, bytes([value & 0xFF]))
    else:
        setattr(record, field, value)


def spec_record(
    value_type: Any, note: UsdtNote, cookie: int, types: dict[str, int], where: str
) -> Any:
    """The ``struct __bpf_usdt_spec`` (``value_type``, the specs map's value type) that
    tells ``bpf_usdt_arg()`` where each argument of ``note`` lives."""
    if not isinstance(value_type, type) or not issubclass(value_type, ctypes.Structure):
        raise AttachError(f"{where}: {SPECS_MAP} has no BTF value type", errno.EINVAL)
    spec = value_type()
    capacity = len(spec.args)
    if len(note.args) > capacity:
        raise AttachError(
            f"{where}: {len(note.args)} arguments, usdt.bpf.h supports {capacity}", errno.E2BIG
        )
    for index, arg in enumerate(note.args):
        if arg.kind not in types:
            raise NotSupportedError(
                f"{where}: argument #{index} ({note.arg_text.split()[index]!r}) is "
                "base+index*scale memory, which this program's usdt.bpf.h cannot read "
                "(rebuild it with libbpf 1.7's header, which has BPF_USDT_ARG_SIB)",
                errno.EOPNOTSUPP,
            )
        slot = spec.args[index]
        slot.val_off = arg.value & 0xFFFF_FFFF_FFFF_FFFF
        slot.arg_type = types[arg.kind]
        slot.reg_off = _PT_REGS.index(arg.register) * 8 if arg.register else 0
        if arg.kind == "sib":
            slot.idx_reg_off = _PT_REGS.index(arg.index) * 8
            slot.scale_bitshift = arg.scale.bit_length() - 1
        _set(slot, "arg_signed", int(arg.size < 0))
        _set(slot, "arg_bitshift", 64 - abs(arg.size) * 8)
    spec.usdt_cookie = cookie
    spec.arg_cnt = len(note.args)
    return spec
