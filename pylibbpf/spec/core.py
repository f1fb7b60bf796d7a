"""CO-RE: rewrite field offsets, sizes, type ids and enum values for the target kernel.

Semantics follow the kernel's and libbpf's documentation of BPF CO-RE relocations:

* A relocation names a *local* type (in the object's BTF), an access string ("0:1:2": array
  index on the root, then member or array indices) and a kind.
* Candidates are target types with the same *essential* name (``___flavour`` suffixes
  stripped) and a compatible kind; vmlinux first, module BTF if vmlinux has none, or a
  custom BTF instead of both.
* Every named member on the access path is looked up by name in the candidate (through
  anonymous members); all matching candidates must agree on the result, else the
  relocation is ambiguous.
* An unresolvable relocation (other than the ``*_EXISTS`` kinds, which then yield 0)
  *poisons* its instruction — it becomes a call to an invalid helper — so code guarded by
  ``bpf_core_field_exists()`` still loads; if the poisoned instruction is reachable, the
  load error names the relocation in C terms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..btf import Btf, Kind, Member, Type
from ..btf.ext import CoreRelo
from ..btf.relo_kind import CoreReloKind
from ..errors import RelocationError
from ..records import dataclass
from .core_types import essential_name, kinds_compatible, types_compatible, types_match
from .insn import (
    BPF_ALU,
    BPF_ALU64,
    BPF_B,
    BPF_CALL,
    BPF_DW,
    BPF_H,
    BPF_JMP,
    BPF_LDX,
    BPF_MEM,
    BPF_MEMSX,
    BPF_ST,
    BPF_STX,
    BPF_W,
    Insn,
)

POISON_HELPER = 0xBAD2310  # the invalid helper id a poisoned instruction calls

_FIELD_KINDS = {
    CoreReloKind.FIELD_BYTE_OFFSET,
    CoreReloKind.FIELD_BYTE_SIZE,
    CoreReloKind.FIELD_EXISTS,
    CoreReloKind.FIELD_SIGNED,
    CoreReloKind.FIELD_LSHIFT_U64,
    CoreReloKind.FIELD_RSHIFT_U64,
}
_TYPE_KINDS = {
    CoreReloKind.TYPE_ID_LOCAL,
    CoreReloKind.TYPE_ID_TARGET,
    CoreReloKind.TYPE_EXISTS,
    CoreReloKind.TYPE_SIZE,
    CoreReloKind.TYPE_MATCHES,
}
_ENUM_KINDS = {CoreReloKind.ENUMVAL_EXISTS, CoreReloKind.ENUMVAL_VALUE}
_SIZES = {1: BPF_B, 2: BPF_H, 4: BPF_W, 8: BPF_DW}
_SIZE_BYTES = {BPF_B: 1, BPF_H: 2, BPF_W: 4, BPF_DW: 8}


@dataclass(frozen=True)
class FieldInfo:
    """What a field access resolves to in one BTF."""

    bit_offset: int
    bit_size: int  # the bitfield's width, or 8 * byte size
    byte_size: int  # of the member's type (the container, for bitfields)
    bitfield: bool
    signed: bool
    type_id: int  # the accessed member's type


@dataclass(frozen=True)
class CoreResult:
    """One relocation's outcome: the value the object assumed and the value for the target."""

    insn: int
    kind: CoreReloKind
    local_type: str
    access: str  # in C terms: "struct task_struct::real_parent"
    local_value: int
    target_value: int
    poisoned: bool = False
    local_size: int = 0  # FIELD_BYTE_OFFSET: for load/store size adjustment
    target_size: int = 0
    reason: str = ""
    # The compiler may pick a wider container for a bitfield than this arithmetic does;
    # the relocated offset, size and shifts stay consistent with each other, so (as in
    # libbpf) the instruction's old value is only checked where it cannot be ambiguous.
    validate: bool = True


def _skip_mods(btf: Btf, type_id: int) -> Type:
    return btf.resolve(type_id)


def _access_indices(access: str, where: str) -> list[int]:
    """The indices of ``0:1:2``: plain ASCII decimals only (``int()`` would also take
    ``-1``, ``+1``, ``0_1``, `` 0`` and other scripts' digits)."""
    parts = access.split(":")
    if not all(part.isascii() and part.isdigit() and len(part) <= 10 for part in parts):
        raise RelocationError(f"{where}: malformed CO-RE access string {access!r}")
    return [int(part) for part in parts]


# --------------------------------------------------------------------------- local specs


@dataclass
class _Spec:
    """A parsed access: the root type, the names to look up, and where it lands locally."""

    root: Type
    indices: list[int]
    names: list[str | None]  # member name per step (None for array steps)
    field: FieldInfo | None
    c_access: str


def _local_field(btf: Btf, root_id: int, indices: list[int], where: str) -> _Spec:
    root = _skip_mods(btf, root_id)
    t = root
    bit_offset = indices[0] * 8 * btf.sizeof(root.id)
    names: list[str | None] = []
    text = root.describe()
    member: Member | None = None
    for step in indices[1:]:
        if t.kind in (Kind.STRUCT, Kind.UNION):
            if step >= len(t.members):
                raise RelocationError(f"{where}: member #{step} of {t.describe()} does not exist")
            member = t.members[step]
            bit_offset += member.bit_offset
            names.append(member.name or None)
            if member.name:
                text += f"::{member.name}" if "::" not in text else f".{member.name}"
            t = _skip_mods(btf, member.type)
        elif t.kind == Kind.ARRAY:
            element = btf.sizeof(t.type)
            bit_offset += step * element * 8
            names.append(None)
            text += f"[{step}]"
            member = None
            t = _skip_mods(btf, t.type)
        else:
            raise RelocationError(f"{where}: cannot index into {t.describe()} (access step {step})")
    if member is not None and member.bitfield_size:
        size = btf.sizeof(member.type)
        info = FieldInfo(
            bit_offset, member.bitfield_size, size, True, _signed(btf, member.type), member.type
        )
    else:
        type_id = member.type if member is not None else root.id
        if len(indices) > 1 and names and names[-1] is None:
            type_id = t.id
        size = _size_or_zero(btf, type_id)
        info = FieldInfo(bit_offset, size * 8, size, False, _signed(btf, type_id), type_id)
    return _Spec(root, indices, names, info, text)


def _size_or_zero(btf: Btf, type_id: int) -> int:
    try:
        return btf.sizeof(type_id)
    except Exception:
        return 0


def _signed(btf: Btf, type_id: int) -> bool:
    t = _skip_mods(btf, type_id)
    if t.kind == Kind.INT:
        return bool(t.encoding & 1)
    if t.kind in (Kind.ENUM, Kind.ENUM64):
        return t.kind_flag
    return False


# --------------------------------------------------------------------------- matching


def _fields_compatible(local_btf: Btf, local_id: int, target_btf: Btf, target_id: int) -> bool:
    """Whether a target member can stand in for a local one (libbpf's documented rules):
    any struct/union for a struct/union, pointers for pointers, floats for floats, enums
    of the same essential name, plain (non-legacy-bitfield) ints for ints, and arrays of
    compatible elements."""
    local = _skip_mods(local_btf, local_id)
    target = _skip_mods(target_btf, target_id)
    while True:
        composite = (Kind.STRUCT, Kind.UNION)
        if local.kind in composite and target.kind in composite:
            return True
        if not kinds_compatible(local, target):
            return False
        if local.kind in (Kind.PTR, Kind.FLOAT):
            return True
        if local.kind in (Kind.FWD, Kind.ENUM, Kind.ENUM64):
            mine, theirs = essential_name(local.name), essential_name(target.name)
            return not mine or not theirs or mine == theirs
        if local.kind == Kind.INT:
            return local.bit_offset == 0 and target.bit_offset == 0
        if local.kind != Kind.ARRAY:
            return False
        local = _skip_mods(local_btf, local.type)
        target = _skip_mods(target_btf, target.type)


MAX_SPEC_LEN = 64  # access steps libbpf follows (anonymous members included)


def _target_field(
    spec: _Spec, local_btf: Btf, target_btf: Btf, candidate: Type
) -> FieldInfo | None:
    """Follow the local access by member names in ``candidate``; None if it does not match."""
    t = _skip_mods(target_btf, candidate.id)  # a typedef root (siphash_key_t) included
    bit_offset = spec.indices[0] * 8 * target_btf.sizeof(candidate.id)
    local_t = spec.root
    member: Member | None = None
    last_member = False  # the previous step named the last member of its struct
    hops = 1
    for step, name in zip(spec.indices[1:], spec.names, strict=True):
        if t.kind in (Kind.STRUCT, Kind.UNION):
            if local_t.kind not in (Kind.STRUCT, Kind.UNION):
                return None
            local_member = local_t.members[step]
            if name is None:
                # An anonymous local member is a wrapper, not a name to match: step into it
                # locally and let the next named member be found through the target's
                # anonymous members (as libbpf does).
                local_t = _skip_mods(local_btf, local_member.type)
                if local_t.kind not in (Kind.STRUCT, Kind.UNION):
                    return None
                continue
            path = target_btf.member_path(t.id, name)
            if not path:
                return None
            hops += len(path)
            if hops > MAX_SPEC_LEN:
                raise RelocationError(
                    f"{spec.c_access}: the target nests it deeper than {MAX_SPEC_LEN} levels"
                )
            for _owner, hop in path:
                bit_offset += hop.bit_offset
            owner, member = path[-1]
            last_member = owner.kind == Kind.STRUCT and owner.members[-1] == member
            if not _fields_compatible(local_btf, local_member.type, target_btf, member.type):
                return None
            local_t = _skip_mods(local_btf, local_member.type)
            t = _skip_mods(target_btf, member.type)
        elif t.kind == Kind.ARRAY:
            if local_t.kind != Kind.ARRAY:
                return None
            flexible = not t.nelems and last_member  # `x[]`/`x[0]` ending a struct
            if not flexible and step >= t.nelems:
                return None  # out of the target array's bounds
            last_member = False
            hops += 1
            bit_offset += step * target_btf.sizeof(t.type) * 8
            member = None
            local_t = _skip_mods(local_btf, local_t.type)
            t = _skip_mods(target_btf, t.type)
        else:
            return None
    if member is not None and member.bitfield_size:
        size = target_btf.sizeof(member.type)
        return FieldInfo(
            bit_offset,
            member.bitfield_size,
            size,
            True,
            _signed(target_btf, member.type),
            member.type,
        )
    type_id = member.type if member is not None else t.id
    if len(spec.indices) > 1 and spec.names and spec.names[-1] is None:
        type_id = t.id
    size = _size_or_zero(target_btf, type_id)
    return FieldInfo(bit_offset, size * 8, size, False, _signed(target_btf, type_id), type_id)


def _field_value(kind: CoreReloKind, info: FieldInfo, where: str) -> tuple[int, int]:
    """(value, load size) of a field relocation, libbpf's bitfield arithmetic included."""
    byte_size = info.byte_size
    if info.bitfield and byte_size <= 0:
        raise RelocationError(
            f"{where}: bitfield {info.bit_size} bits at bit {info.bit_offset} has a type of "
            f"{byte_size} bytes"
        )
    if info.bitfield:
        byte_off = info.bit_offset // 8 // byte_size * byte_size if byte_size else 0
        while info.bit_offset + info.bit_size - byte_off * 8 > byte_size * 8:
            if byte_size >= 8:
                raise RelocationError(f"{where}: bitfield cannot be read with one load")
            byte_size *= 2
            byte_off = info.bit_offset // 8 // byte_size * byte_size
    else:
        byte_off = info.bit_offset // 8
    if kind == CoreReloKind.FIELD_BYTE_OFFSET:
        return byte_off, byte_size
    if kind == CoreReloKind.FIELD_BYTE_SIZE:
        return byte_size, byte_size
    if kind == CoreReloKind.FIELD_EXISTS:
        return 1, byte_size
    if kind == CoreReloKind.FIELD_SIGNED:
        return int(info.signed), byte_size
    if kind == CoreReloKind.FIELD_LSHIFT_U64:
        return 64 - (info.bit_offset + info.bit_size - byte_off * 8), byte_size
    return 64 - info.bit_size, byte_size  # FIELD_RSHIFT_U64


# --------------------------------------------------------------------------- resolution


def _named_candidates(target: Btf, name: str, local: Type) -> list[Type]:
    """Types of ``target`` named ``name`` or ``name___flavour`` whose kind fits ``local``.

    Kept on the target BTF (vmlinux's lives for the process), so a program loaded again
    does not search the kernel's strings again.
    """
    family = Kind.ENUM if local.kind == Kind.ENUM64 else local.kind
    key = ("core candidates", name, family)
    cached: list[Type] | None = target.memo.get(key)
    if cached is not None:
        return cached
    names = [name] + [
        n for n in target.names_with_prefix(name + "___") if essential_name(n) == name
    ]
    found = []
    for candidate_name in dict.fromkeys(names):
        for t in target.find_all(candidate_name):
            if target.base is not None and t.id < target.first_id:
                continue  # a module's base types are vmlinux's: already seen
            if kinds_compatible(local, t) or (
                local.kind == Kind.TYPEDEF and t.kind == Kind.TYPEDEF
            ):
                found.append(t)
    target.memo[key] = found
    return found


class CoreResolver:
    """Resolves CO-RE relocations of one object against target BTFs (cached per load)."""

    def __init__(
        self,
        local_btf: Btf,
        targets: Sequence[Btf],
        more_targets: Callable[[], Sequence[Btf]] | None = None,
    ) -> None:
        self.local = local_btf
        self.targets = list(targets)  # vmlinux (or a custom BTF)
        self._more = more_targets  # module BTF, loaded only if vmlinux has no candidate
        self._candidates: dict[int, list[tuple[Btf, Type]]] = {}

    def candidates(self, local_id: int) -> list[tuple[Btf, Type]]:
        """Target types a local type may relocate to (by essential name and kind)."""
        cached = self._candidates.get(local_id)
        if cached is not None:
            return cached
        local = (
            _skip_mods(self.local, local_id)
            if self.local[local_id].kind != Kind.TYPEDEF
            else self.local[local_id]
        )
        name = essential_name(local.name)
        found: list[tuple[Btf, Type]] = []
        if name:
            found = self._search(self.targets, local, name)
            if not found and self._more is not None:
                found = self._search(self._more(), local, name)
        self._candidates[local_id] = found
        return found

    @staticmethod
    def _search(targets: Sequence[Btf], local: Type, name: str) -> list[tuple[Btf, Type]]:
        found: list[tuple[Btf, Type]] = []
        if name:
            for target in targets:
                found += [(target, t) for t in _named_candidates(target, name, local)]
        return found

    def _narrow(self, local_id: int, matched: list[tuple[Btf, Type]]) -> None:
        """Later relocations of the same local type only consider the candidates that
        matched this one (when any did), as libbpf does: two flavors each matching half
        of the accesses are not combined."""
        if matched:
            self._candidates[local_id] = matched

    def resolve(self, relo: CoreRelo, insn: int, where: str) -> CoreResult:
        """How one relocation resolves (or why it is poisoned)."""
        local_type = self.local[relo.type_id]
        kind = relo.kind
        where = f"{where}: CO-RE {kind.name} relocation on {local_type.describe()}"
        if kind == CoreReloKind.TYPE_ID_LOCAL:
            return CoreResult(
                insn, kind, local_type.describe(), relo.access, relo.type_id, relo.type_id
            )
        if kind in _FIELD_KINDS:
            return self._field(relo, insn, local_type, where)
        if kind in _TYPE_KINDS:
            return self._type(relo, insn, local_type, where)
        return self._enum(relo, insn, local_type, where)

    def _unique(self, values: list[tuple[int, int]], where: str, access: str) -> tuple[int, int]:
        if len(set(values)) > 1:
            raise RelocationError(
                f"{where} ({access}): ambiguous — candidates disagree ({sorted(set(values))})"
            )
        return values[0]

    def _field(self, relo: CoreRelo, insn: int, local_type: Type, where: str) -> CoreResult:
        indices = _access_indices(relo.access, where)
        spec = _local_field(self.local, relo.type_id, indices, where)
        assert spec.field is not None
        local_value, local_size = _field_value(relo.kind, spec.field, where)
        results, matched = [], []
        for target_btf, candidate in self.candidates(relo.type_id):
            info = _target_field(spec, self.local, target_btf, candidate)
            if info is not None:
                results.append(_field_value(relo.kind, info, where))
                matched.append((target_btf, candidate))
        self._narrow(relo.type_id, matched)
        describe = local_type.describe()
        if not results:
            if relo.kind == CoreReloKind.FIELD_EXISTS:
                return CoreResult(insn, relo.kind, describe, spec.c_access, 1, 0)
            return CoreResult(
                insn,
                relo.kind,
                describe,
                spec.c_access,
                local_value,
                0,
                poisoned=True,
                reason="no matching field in the target kernel",
            )
        value, size = self._unique(results, where, spec.c_access)
        unambiguous = relo.kind in (CoreReloKind.FIELD_SIGNED, CoreReloKind.FIELD_RSHIFT_U64)
        bitfield = spec.field.bitfield
        return CoreResult(
            insn,
            relo.kind,
            describe,
            spec.c_access,
            local_value,
            value,
            local_size=0 if bitfield else local_size,
            target_size=0 if bitfield else size,
            validate=not bitfield or unambiguous,
        )

    def _type(self, relo: CoreRelo, insn: int, local_type: Type, where: str) -> CoreResult:
        kind = relo.kind
        local_value = {
            CoreReloKind.TYPE_ID_TARGET: relo.type_id,
            CoreReloKind.TYPE_EXISTS: 1,
            CoreReloKind.TYPE_MATCHES: 1,
        }.get(kind)
        if local_value is None:
            local_value = _size_or_zero(self.local, relo.type_id)
        check = types_match if kind == CoreReloKind.TYPE_MATCHES else types_compatible
        candidates = [
            (b, t)
            for b, t in self.candidates(relo.type_id)
            if check(self.local, relo.type_id, b, t.id)
        ]
        self._narrow(relo.type_id, candidates)
        describe = local_type.describe()
        validate = kind != CoreReloKind.TYPE_ID_TARGET  # ids may change when linking
        if not candidates:  # type-based relocations give 0 for a missing type (no poison)
            return CoreResult(insn, kind, describe, relo.access, local_value, 0, validate=validate)
        values = []
        for target_btf, t in candidates:
            if kind == CoreReloKind.TYPE_ID_TARGET:
                values.append((t.id, 0))
            elif kind == CoreReloKind.TYPE_SIZE:
                values.append((_size_or_zero(target_btf, t.id), 0))
            else:
                values.append((1, 0))
        value, _ = self._unique(values, where, describe)
        return CoreResult(insn, kind, describe, relo.access, local_value, value, validate=validate)

    def _enum(self, relo: CoreRelo, insn: int, local_type: Type, where: str) -> CoreResult:
        enum = _skip_mods(self.local, relo.type_id)
        index = _access_indices(relo.access, where)[0]
        if enum.kind not in (Kind.ENUM, Kind.ENUM64) or index >= len(enum.values):
            raise RelocationError(f"{where}: enumerator #{index} does not exist locally")
        local = enum.values[index]
        c_access = f"{enum.describe()}::{local.name}"
        local_value = 1 if relo.kind == CoreReloKind.ENUMVAL_EXISTS else local.value
        values, matched = [], []
        for target_btf, candidate in self.candidates(relo.type_id):
            for enumerator in _skip_mods(target_btf, candidate.id).values:  # via typedefs
                if essential_name(enumerator.name) == essential_name(local.name):
                    values.append(
                        (1 if relo.kind == CoreReloKind.ENUMVAL_EXISTS else enumerator.value, 0)
                    )
                    matched.append((target_btf, candidate))
                    break
        self._narrow(relo.type_id, matched)
        if not values:
            if relo.kind == CoreReloKind.ENUMVAL_EXISTS:
                return CoreResult(insn, relo.kind, enum.describe(), c_access, 1, 0)
            return CoreResult(
                insn,
                relo.kind,
                enum.describe(),
                c_access,
                local_value,
                0,
                poisoned=True,
                reason="no such enumerator in the target kernel",
            )
        value, _ = self._unique(values, where, c_access)
        return CoreResult(insn, relo.kind, enum.describe(), c_access, local_value, value)


# --------------------------------------------------------------------------- patching


def patch(insns: list[Insn], result: CoreResult, where: str) -> None:
    """Apply one result to the instruction at ``result.insn`` (validating the old value)."""
    position = result.insn
    insn = insns[position]
    if result.poisoned:
        poison(insns, position)
        return
    cls = insn.cls
    new = result.target_value
    if cls in (BPF_ALU, BPF_ALU64) and not insn.code & 0x08:  # BPF_K
        _check(insn.imm, result.local_value, where, result)
        insns[position] = insn.with_(imm=_s32(new, where, result))
    elif cls in (BPF_LDX, BPF_ST, BPF_STX) and insn.code & 0xE0 in (BPF_MEM, BPF_MEMSX):
        _check(insn.off, result.local_value, where, result)
        if not -(1 << 15) <= new < (1 << 15):
            raise RelocationError(f"{where}: offset {new} does not fit an instruction")
        code = insn.code
        if (
            result.kind == CoreReloKind.FIELD_BYTE_OFFSET
            and result.target_size
            and (result.target_size != result.local_size)
        ):
            if _SIZE_BYTES.get(code & 0x18) != result.local_size or (
                result.target_size not in _SIZES
            ):
                raise RelocationError(
                    f"{where}: field is {result.target_size} bytes in the target, "
                    f"{result.local_size} locally, and this access cannot be resized"
                )
            code = (code & ~0x18) | _SIZES[result.target_size]
        insns[position] = insn.with_(code=code, off=new)
    elif insn.is_ld_imm64() and position + 1 < len(insns):
        old = (insns[position + 1].imm << 32) | (insn.imm & 0xFFFFFFFF)
        _check(old & 0xFFFFFFFFFFFFFFFF, result.local_value & 0xFFFFFFFFFFFFFFFF, where, result)
        value = new & 0xFFFFFFFFFFFFFFFF
        insns[position] = insn.with_(imm=_to_s32(value & 0xFFFFFFFF))
        insns[position + 1] = insns[position + 1].with_(imm=_to_s32(value >> 32))
    else:
        raise RelocationError(
            f"{where}: instruction {position} (code 0x{insn.code:02x}) cannot "
            "carry a CO-RE relocation"
        )


def poison(insns: list[Insn], position: int) -> None:
    """Make an instruction fail verification if reached (dead code is removed first)."""
    call = Insn(BPF_JMP | BPF_CALL, 0, 0, 0, POISON_HELPER)
    if insns[position].is_ld_imm64() and position + 1 < len(insns):
        insns[position + 1] = call  # both halves: a lone second half is "unknown opcode 00"
    insns[position] = call


def _check(actual: int, expected: int, where: str, result: CoreResult) -> None:
    if not result.validate or result.kind in (
        CoreReloKind.TYPE_ID_TARGET,
        CoreReloKind.TYPE_ID_LOCAL,
    ):
        return  # ambiguous bitfield aspects; type ids the linker may have renumbered
    if actual != expected and (actual & 0xFFFFFFFF) != (expected & 0xFFFFFFFF):
        raise RelocationError(
            f"{where} ({result.access}): instruction {result.insn} holds {actual}, but the "
            f"object's BTF says {expected}; the object and its BTF disagree"
        )


def _s32(value: int, where: str, result: CoreResult) -> int:
    if not -(1 << 31) <= value < (1 << 32):
        raise RelocationError(f"{where} ({result.access}): value {value} does not fit 32 bits")
    return _to_s32(value & 0xFFFFFFFF)


def _to_s32(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


def relocate(
    insns: list[Insn], relos: Sequence[tuple[int, CoreRelo]], resolver: CoreResolver, where: str
) -> list[CoreResult]:
    """Resolve and apply every relocation to ``insns`` in place; returns the results."""
    results = []
    for position, relo in relos:
        result = resolver.resolve(relo, position, where)
        patch(insns, result, f"{where}: instruction {position}")
        results.append(result)
    return results
