"""``.BTF.ext``: per-section function info, line info and CO-RE relocation records.

Records keep the raw string offsets (the kernel wants them, relative to the uploaded BTF)
and resolve them through the object's BTF for people: file, line, column, source text,
and CO-RE access strings. Instruction offsets stay in bytes, as in the ELF section;
``insn`` gives the instruction index.
"""

from __future__ import annotations

import bisect
import struct

from ..errors import ObjectError
from ..records import dataclass
from .parse import Btf

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from .relo_kind import CoreReloKind


@dataclass(frozen=True, slots=True)
class FuncInfo:
    insn_off: int
    type_id: int

    @property
    def insn(self) -> int:
        return self.insn_off // 8


@dataclass(frozen=True, slots=True)
class LineInfo:
    insn_off: int
    file_name_off: int
    line_off: int
    line_col: int
    file: str
    source: str

    @property
    def insn(self) -> int:
        return self.insn_off // 8

    @property
    def line(self) -> int:
        return self.line_col >> 10

    @property
    def col(self) -> int:
        return self.line_col & 0x3FF

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f":{self.col}" if self.col else "")
        return f"{where}: {self.source.strip()}" if self.source else where


@dataclass(frozen=True, slots=True)
class CoreRelo:
    insn_off: int
    type_id: int
    access_str_off: int
    kind: CoreReloKind
    access: str  # "0:1:2" — member/array indices from the root type

    @property
    def insn(self) -> int:
        return self.insn_off // 8


_HEADER = struct.Struct("<HBBIIIII")
_CORE_HEADER = struct.Struct("<II")
_MIN_REC = {"func_info": 8, "line_info": 16, "core_relo": 16}


class BtfExt:
    """Parsed ``.BTF.ext`` of an object, keyed by ELF section name."""

    def __init__(self, data: bytes, btf: Btf, *, name: str = ".BTF.ext") -> None:
        self.name = name
        self.func_info: dict[str, list[FuncInfo]] = {}
        self.line_info: dict[str, list[LineInfo]] = {}
        self.core_relos: dict[str, list[CoreRelo]] = {}
        self.func_info_rec_size = 8
        self.line_info_rec_size = 16
        self.core_relo_rec_size = 16
        if len(data) < _HEADER.size:
            raise ObjectError(f"{name}: {len(data)} bytes is too short for a .BTF.ext header")
        magic, _version, _flags, hdr_len, fi_off, fi_len, li_off, li_len = _HEADER.unpack_from(data)
        if magic != 0xEB9F:
            raise ObjectError(f"{name}: bad magic 0x{magic:04x}")
        if hdr_len < _HEADER.size or hdr_len > len(data):
            raise ObjectError(f"{name}: header length {hdr_len} is invalid")
        cr_off = cr_len = 0
        if hdr_len >= _HEADER.size + _CORE_HEADER.size:
            cr_off, cr_len = _CORE_HEADER.unpack_from(data, _HEADER.size)
        self._btf = btf
        for label, off, length in (
            ("func_info", fi_off, fi_len),
            ("line_info", li_off, li_len),
            ("core_relo", cr_off, cr_len),
        ):
            if length:
                self._parse_block(label, data, hdr_len + off, length)

    def _parse_block(self, label: str, data: bytes, start: int, length: int) -> None:
        end = start + length
        if end > len(data) or length < 4:
            raise ObjectError(f"{self.name}: {label} ({length} bytes at {start}) is truncated")
        rec_size = struct.unpack_from("<I", data, start)[0]
        if rec_size < _MIN_REC[label] or rec_size % 4:
            raise ObjectError(f"{self.name}: {label} record size {rec_size} is invalid")
        setattr(self, f"{label}_rec_size", rec_size)
        pos = start + 4
        while pos < end:
            if pos + 8 > end:
                raise ObjectError(f"{self.name}: {label} block header at {pos} is truncated")
            sec_off, count = struct.unpack_from("<II", data, pos)
            pos += 8
            if pos + count * rec_size > end:
                raise ObjectError(
                    f"{self.name}: {label} block of {count} records at {pos} runs past the end"
                )
            section = self._btf.string_at(sec_off)
            records = [self._record(label, data, pos + i * rec_size) for i in range(count)]
            pos += count * rec_size
            if label == "func_info":
                self.func_info.setdefault(section, []).extend(records)  # type: ignore[arg-type]
            elif label == "line_info":
                self.line_info.setdefault(section, []).extend(records)  # type: ignore[arg-type]
            else:
                self.core_relos.setdefault(section, []).extend(records)  # type: ignore[arg-type]

    def _record(self, label: str, data: bytes, pos: int) -> FuncInfo | LineInfo | CoreRelo:
        if label == "func_info":
            return FuncInfo(*struct.unpack_from("<II", data, pos))
        if label == "line_info":
            insn_off, file_off, line_off, line_col = struct.unpack_from("<IIII", data, pos)
            return LineInfo(
                insn_off,
                file_off,
                line_off,
                line_col,
                self._btf.string_at(file_off),
                self._btf.string_at(line_off) if line_off else "",
            )
        insn_off, type_id, access_off, kind = struct.unpack_from("<IIII", data, pos)
        from .relo_kind import CoreReloKind  # here: objects without CO-RE never build it

        try:
            relo_kind = CoreReloKind(kind)
        except ValueError:
            raise ObjectError(
                f"{self.name}: unknown CO-RE relocation kind {kind} at instruction {insn_off // 8}"
            ) from None
        return CoreRelo(insn_off, type_id, access_off, relo_kind, self._btf.string_at(access_off))

    def line_for(self, section: str, insn: int) -> LineInfo | None:
        """The source line an instruction of ``section`` came from (the nearest before it)."""
        lines = self.line_info.get(section)
        if not lines:
            return None
        index = bisect.bisect_right([line.insn for line in lines], insn) - 1
        return lines[index] if index >= 0 else None


def __getattr__(name: str) -> object:
    """``CoreReloKind`` (re-exported) on first use: an enum of 13 members costs ~1.5 M
    instructions to build, and only objects with CO-RE relocations need it."""
    if name == "CoreReloKind":
        from .relo_kind import CoreReloKind

        return CoreReloKind
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
