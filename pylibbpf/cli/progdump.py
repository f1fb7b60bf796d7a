"""``prog dump xlated`` and ``prog dump jited`` as bpftool prints them: the function's
prototype before its first instruction, the C source line (``; ...``, with ``linum``
its file, line and column) before the instructions it produced, from the program's BTF
func and line info; ``opcodes`` adds the raw bytes.

JIT images are disassembled with capstone when it is installed (``pip install
'libbpf-pure[disasm]'``); without it each function's bytes are printed as hex.
"""

from __future__ import annotations

import ctypes
import platform
from dataclasses import dataclass, field
from typing import Any

from ..btf import Btf, Kind
from ..errors import BpfError
from ..introspect import disassemble_xlated, object_btf, program_info
from ..program import Program
from ..syscall.system import kernel_functions

FUNC_INFO_SIZE = 8  # bpf_func_info: insn_off, type_id
LINE_INFO_SIZE = 16  # bpf_line_info: insn_off, file_name_off, line_off, line_col


@dataclass
class ProgramImage:
    """A loaded program's instructions (translated or JITed) and its debug info."""

    name: str
    code: bytes
    func_info: list[tuple[int, int]] = field(default_factory=list)
    line_info: list[tuple[int, int, int, int]] = field(default_factory=list)
    jited_line_info: list[int] = field(default_factory=list)
    jited_ksyms: list[int] = field(default_factory=list)
    jited_func_lens: list[int] = field(default_factory=list)
    btf: Btf | None = None


def fetch_image(prog: Program, *, jited: bool) -> ProgramImage:
    """Ask the kernel for the program's instructions and every array that explains them."""
    first, _ = program_info(prog.fd)
    length = first.jited_prog_len if jited else first.xlated_prog_len
    if not length:
        raise BpfError(
            f"program {first.id}: the kernel returned no "
            + ("JIT image (JIT disabled?)" if jited else "instructions (kernel.kptr_restrict?)")
        )
    code = ctypes.create_string_buffer(length)
    finfo_size = first.func_info_rec_size or FUNC_INFO_SIZE
    linfo_size = first.line_info_rec_size or LINE_INFO_SIZE
    func_info = ctypes.create_string_buffer(max(first.nr_func_info * finfo_size, 1))
    line_info = ctypes.create_string_buffer(max(first.nr_line_info * linfo_size, 1))
    jited_lines = (ctypes.c_uint64 * max(first.nr_jited_line_info, 1))()
    ksyms = (ctypes.c_uint64 * max(first.nr_jited_ksyms, 1))()
    lens = (ctypes.c_uint32 * max(first.nr_jited_func_lens, 1))()
    arrays: dict[str, Any] = {
        "nr_func_info": first.nr_func_info,
        "func_info_rec_size": finfo_size,
        "func_info": ctypes.addressof(func_info),
        "nr_line_info": first.nr_line_info,
        "line_info_rec_size": linfo_size,
        "line_info": ctypes.addressof(line_info),
        "nr_jited_ksyms": first.nr_jited_ksyms,
        "jited_ksyms": ctypes.addressof(ksyms),
        "nr_jited_func_lens": first.nr_jited_func_lens,
        "jited_func_lens": ctypes.addressof(lens),
    }
    if jited:
        arrays.update(jited_prog_len=length, jited_prog_insns=ctypes.addressof(code))
        arrays.update(
            nr_jited_line_info=first.nr_jited_line_info,
            jited_line_info_rec_size=8,
            jited_line_info=ctypes.addressof(jited_lines),
        )
    else:
        arrays.update(xlated_prog_len=length, xlated_prog_insns=ctypes.addressof(code))
    info, _ = program_info(prog.fd, **arrays)
    image = ProgramImage(info.name.decode(errors="replace"), code.raw[:length])
    raw = func_info.raw
    image.func_info = [
        (
            int.from_bytes(raw[i * finfo_size : i * finfo_size + 4], "little"),
            int.from_bytes(raw[i * finfo_size + 4 : i * finfo_size + 8], "little"),
        )
        for i in range(first.nr_func_info)
    ]
    raw = line_info.raw
    image.line_info = [
        tuple(  # type: ignore[misc]
            int.from_bytes(raw[i * linfo_size + j : i * linfo_size + j + 4], "little")
            for j in (0, 4, 8, 12)
        )
        for i in range(first.nr_line_info)
    ]
    image.jited_ksyms = list(ksyms[: first.nr_jited_ksyms])
    image.jited_func_lens = list(lens[: first.nr_jited_func_lens])
    if jited:
        image.jited_line_info = list(jited_lines[: first.nr_jited_line_info])
    if info.btf_id:
        image.btf = object_btf(info.btf_id)
    return image


# ----------------------------------------------------------------- BTF text


def signature(btf: Btf, type_id: int) -> str:
    """A function's prototype as bpftool writes it: ``int f(struct xdp_md * ctx)``."""
    out: list[str] = []
    try:
        _type_only(btf, type_id, out)
    except (_Unprintable, IndexError):
        return ""
    return "".join(out)


class _Unprintable(Exception):
    pass


def _type_only(btf: Btf, type_id: int, out: list[str]) -> None:
    if not type_id:
        out.append("void ")
        return
    t = btf[type_id]
    kind = t.kind
    if kind in (Kind.INT, Kind.TYPEDEF, Kind.FLOAT):
        out.append(f"{t.name} ")
    elif kind in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64):
        keyword = {Kind.STRUCT: "struct", Kind.UNION: "union"}.get(kind, "enum")
        out.append(f"{keyword} {t.name} ")
    elif kind == Kind.ARRAY:
        _type_only(btf, t.type, out)
        out.append(f"[{t.nelems}]")
    elif kind == Kind.PTR:
        _type_only(btf, t.type, out)
        out.append("* ")
    elif kind == Kind.FWD:
        out.append(f"{'union' if t.kind_flag else 'struct'} {t.name} ")
    elif kind in (Kind.VOLATILE, Kind.CONST, Kind.RESTRICT):
        out.append(f"{kind.name.lower()} ")
        _type_only(btf, t.type, out)
    elif kind == Kind.FUNC_PROTO:
        _function(btf, t, None, out)
    elif kind == Kind.FUNC:
        _function(btf, btf[t.type], t.name, out)
    elif kind == Kind.VAR:
        if t.linkage == 0:
            out.append("static ")
        _type_only(btf, t.type, out)
        out.append(f" {t.name}")
    elif kind == Kind.DATASEC:
        out.append(f'section ("{t.name}") ')
    else:
        raise _Unprintable(kind)


def _function(btf: Btf, proto: Any, name: str | None, out: list[str]) -> None:
    _type_only(btf, proto.type, out)
    out.append(f"{name}(" if name is not None else "(")
    for index, param in enumerate(proto.params):
        if index:
            out.append(", ")
        if param.type:
            _type_only(btf, param.type, out)
            if param.name:
                out.append(param.name)
            elif out and out[-1].endswith(" "):
                out[-1] = out[-1][:-1]
        else:
            out.append("...")
    out.append(")")


def _source(btf: Btf | None, record: tuple[int, int, int, int], linum: bool) -> dict[str, Any]:
    """A line-info record as bpftool's JSON fields: ``src`` (and ``file``, ``line_num``,
    ``line_col`` with ``linum``)."""
    if btf is None:
        return {}
    _, file_off, line_off, line_col = record
    fields: dict[str, Any] = {}
    try:
        fields["src"] = btf.string_at(line_off).lstrip()
    except Exception:
        return {}
    if linum:
        try:
            fields["file"] = btf.string_at(file_off)
        except Exception:
            fields["file"] = ""
        fields["line_num"] = line_col >> 10
        fields["line_col"] = line_col & 0x3FF
    return fields


def _source_text(fields: dict[str, Any]) -> str | None:
    if "src" not in fields:
        return None
    text = f"; {fields['src']}"
    if "file" in fields:
        text += (
            f" [file:{fields['file']} line_num:{fields['line_num']} line_col:{fields['line_col']}]"
        )
    return text


def _lfind(records: list[tuple[int, int, int, int]], insn: int, skip: int) -> Any:
    """libbpf's ``bpf_prog_linfo__lfind``: the last record at or before ``insn``,
    searching from the ``skip``-th (bpftool advances ``skip`` once per hit)."""
    if skip >= len(records) or insn < records[skip][0]:
        return None
    index = skip
    while index < len(records) and records[index][0] <= insn:
        index += 1
    return records[index - 1]


# ----------------------------------------------------------------- xlated


def xlated(
    image: ProgramImage, *, linum: bool = False, opcodes: bool = False
) -> list[dict[str, Any]]:
    """One entry per instruction, with bpftool's JSON keys: ``proto`` at a function's
    first instruction, ``src`` (``file``, ``line_num``, ``line_col``) where a source
    line begins, ``disasm``, and ``opcodes`` when asked."""
    entries: list[dict[str, Any]] = []
    functions = list(image.func_info) if image.btf is not None else []
    skip = 0
    for line in disassemble_xlated(image.code):
        index_text, _, disasm = line.partition(": ")
        index = int(index_text)
        entry: dict[str, Any] = {}
        if functions and functions[0][0] == index:
            assert image.btf is not None
            proto = signature(image.btf, functions.pop(0)[1])
            if proto:
                entry["proto"] = proto
        if image.line_info:
            record = _lfind(image.line_info, index, skip)
            if record is not None:
                entry.update(_source(image.btf, record, linum))
                skip += 1
        entry["disasm"] = disasm
        entry["index"] = index
        if opcodes:
            raw = image.code[index * 8 : index * 8 + 8]
            wide = raw[0] == 0x18 and index * 8 + 16 <= len(image.code)
            entry["opcodes"] = {
                "code": f"0x{raw[0]:02x}",
                "src_reg": f"0x{raw[1] >> 4:x}",
                "dst_reg": f"0x{raw[1] & 0xF:x}",
                "off": [f"0x{b:02x}" for b in raw[2:4]],
                "imm": [
                    f"0x{b:02x}"
                    for b in (raw[4:8] + image.code[index * 8 + 8 : index * 8 + 16])[
                        : 12 if wide else 4
                    ]
                ],
            }
            entry["bytes"] = image.code[index * 8 : index * 8 + (16 if wide else 8)]
        entries.append(entry)
    return entries


def xlated_text(entries: list[dict[str, Any]]) -> list[str]:
    """``xlated`` entries as bpftool's text."""
    lines: list[str] = []
    for entry in entries:
        if "proto" in entry:
            lines.append(f"{entry['proto']}:")
        source = _source_text(entry)
        if source is not None:
            lines.append(source)
        lines.append(f"{entry['index']:>4}: {entry['disasm']}")
        if "bytes" in entry:
            raw = entry["bytes"]
            text = " ".join(f"{b:02x}" for b in raw[:8])
            if len(raw) > 8:
                text += " " + " ".join(f"{b:02x}" for b in raw[8:])
            lines.append(f"       {text}")
    return lines


def xlated_json(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``xlated`` entries as bpftool's JSON (no pylibbpf bookkeeping keys)."""
    return [{k: v for k, v in entry.items() if k not in ("index", "bytes")} for entry in entries]


# ----------------------------------------------------------------- jited


def _disassembler() -> Any:
    try:
        import capstone
    except ImportError:
        return None
    arch = platform.machine()
    modes = {
        "x86_64": (capstone.CS_ARCH_X86, capstone.CS_MODE_64),
        "aarch64": (capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM),
        "riscv64": (
            getattr(capstone, "CS_ARCH_RISCV", None),
            getattr(capstone, "CS_MODE_RISCV64", 0),
        ),
        "s390x": (getattr(capstone, "CS_ARCH_SYSZ", None), capstone.CS_MODE_BIG_ENDIAN),
    }
    if arch not in modes or modes[arch][0] is None:
        return None
    engine = capstone.Cs(*modes[arch])
    if arch == "x86_64":
        engine.syntax = capstone.CS_OPT_SYNTAX_ATT  # as bpftool's libbfd output
    return engine


def has_disassembler() -> bool:
    """Whether JIT images can be shown as instructions (capstone is installed)."""
    return _disassembler() is not None


def _jited_lines(image: ProgramImage, function: int) -> tuple[list[int], list[Any]]:
    """Line-info records of one function and their JIT addresses."""
    if not image.jited_line_info or not image.jited_ksyms:
        return [], []
    start = image.jited_ksyms[function]
    end = start + image.jited_func_lens[function]
    picked = [
        (address, record)
        for address, record in zip(image.jited_line_info, image.line_info, strict=False)
        if start <= address < end
    ]
    return [address for address, _ in picked], [record for _, record in picked]


def jited(
    image: ProgramImage, *, linum: bool = False, opcodes: bool = False
) -> list[dict[str, Any]]:
    """One entry per function: ``proto``, ``name`` (its kernel symbol) and ``insns``
    (``pc``, ``operation``, ``operands`` — or ``bytes`` without a disassembler — and
    ``src`` where a source line begins), as bpftool's JSON has them."""
    engine = _disassembler()
    by_address, _ = kernel_functions() if image.jited_ksyms else ({}, 0)
    lens = image.jited_func_lens or [len(image.code)]
    functions = []
    offset = 0
    for index, length in enumerate(lens):
        code = image.code[offset : offset + length]
        offset += length
        entry: dict[str, Any] = {}
        if image.btf is not None and index < len(image.func_info):
            proto = signature(image.btf, image.func_info[index][1])
            if proto:
                entry["proto"] = proto
        if image.jited_ksyms:
            address = image.jited_ksyms[index]
            entry["name"] = by_address.get(address) or f"0x{address:016x}"
        else:
            entry["name"] = "unknown"
        addresses, records = _jited_lines(image, index)
        base = image.jited_ksyms[index] if image.jited_ksyms else 0
        entry["insns"] = _function_insns(engine, code, base, addresses, records, image, linum)
        if not opcodes:
            for insn in entry["insns"]:
                insn.pop("opcodes", None)
        functions.append(entry)
    return functions


def _function_insns(
    engine: Any,
    code: bytes,
    base: int,
    addresses: list[int],
    records: list[Any],
    image: ProgramImage,
    linum: bool,
) -> list[dict[str, Any]]:
    if engine is not None:
        pieces = [
            (
                insn.address,
                insn.mnemonic,
                insn.op_str,
                code[insn.address : insn.address + insn.size],
            )
            for insn in engine.disasm(code, 0)
        ]
    else:
        pieces = [(pc, None, None, code[pc : pc + 16]) for pc in range(0, len(code), 16)]
    insns = []
    skip = 0
    for pc, mnemonic, operands, raw in pieces:
        insn: dict[str, Any] = {}
        if addresses and skip < len(addresses) and base + pc >= addresses[skip]:
            index = skip
            while index < len(addresses) and addresses[index] <= base + pc:
                index += 1
            insn.update(_source(image.btf, records[index - 1], linum))
            skip += 1
        insn["pc"] = f"0x{pc:x}"
        if mnemonic is not None:
            insn["operation"] = mnemonic
            insn["operands"] = _operands(operands) or [None]
        else:
            insn["bytes"] = [f"0x{b:02x}" for b in raw]
        insn["opcodes"] = [f"0x{b:02x}" for b in raw]
        insns.append(insn)
    return insns


def _operands(text: str) -> list[str]:
    """Split at the commas between operands; inside a memory operand ``(%rax, %rbx)``
    the comma stays and loses its space, as objdump and LLVM print it."""
    operands, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            operands.append(current.strip())
            current = ""
        elif not (char == " " and depth > 0 and current.endswith(",")):
            current += char
    if current.strip():
        operands.append(current.strip())
    return operands


def jited_text(functions: list[dict[str, Any]]) -> list[str]:
    """``jited`` entries as bpftool's text."""
    lines: list[str] = []
    for function in functions:
        if "proto" in function:
            lines.append(f"{function['proto']}:")
        lines.append(f"{function['name']}:")
        for insn in function["insns"]:
            source = _source_text(insn)
            if source is not None:
                lines.append(source)
            pc = int(insn["pc"], 16)
            if "operation" in insn:
                operands = ", ".join(o for o in insn["operands"] if o is not None)
                text = f"{pc:4x}:\t{insn['operation']}" + (f"\t{operands}" if operands else "")
            else:
                text = f"{pc:4x}:\t" + " ".join(b[2:] for b in insn["bytes"])
            lines.append(text)
            if "opcodes" in insn and "operation" in insn:
                lines.append("\t" + " ".join(b[2:] for b in insn["opcodes"]) + " ")
        lines.append("")
    return lines
