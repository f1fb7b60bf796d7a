"""What every mutator shares: the input being built and the boundary values."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ..elfview import BtfView, ElfView

U32 = [0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 255, 256, 0xFFFF, 0x10000, 1 << 24]
U32 += [0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
U64 = [*U32, 1 << 32, 1 << 40, 1 << 48, (1 << 63) - 1, 1 << 63, (1 << 64) - 1]

# Names that make generated code interesting: keywords, builtins, names the skeleton
# generator or ctypes use themselves, and bytes that are not identifiers at all.
NASTY_NAMES = [
    b"class",
    b"None",
    b"def",
    b"import",
    b"lambda",
    b"self",
    b"int",
    b"__init__",
    b"_anon0",
    b"_anon1",
    b"_fields_",
    b"_pack_",
    b"raw",
    b"value",
    b"names",
    b"obj",
    b"ctypes",
    b"enum",
    b"Skeleton",
    b"Map",
    b"a b",
    b'"',
    b"'",
    b"\\",
    b"\n",
    b"0x",
    b"1abc",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"caf\xc3\xa9",
    b"\xe2\x80\xae",
]
SECTION_NAMES = [
    b"xdp",
    b"tc",
    b"kprobe/x",
    b"tp/a/b",
    b"tp_btf/x",
    b"fentry/x",
    b"struct_ops/x",
    b".struct_ops",
    b".struct_ops.link",
    b".maps",
    b".kconfig",
    b".ksyms",
    b".data",
    b".rodata",
    b".bss",
    b".data.x",
    b"license",
    b"version",
    b"?tc",
    b"iter/x",
    b"lsm/x",
    b"uprobe",
    b"usdt",
    b"socket",
    b"cgroup_skb/ingress",
    b"syscall",
    b".text",
    b"maps",
    b".BTF",
    b".BTF.ext",
    b".rel.text",
    b"",
]
ACCESS_STRINGS = [
    b"-1",
    b"0:-1",
    b"0:99999",
    b"0::0",
    b":",
    b"",
    b"0:1:2:3:4:5:6:7:8:9",
    b"x",
    b"0x1",
    b" 0",
    b"1e3",
    b"\xd9\xa3",
    b"0_1",
    b"4294967296",
    b"0:4294967295",
    b"-0",
    b"+1",
    b"99999999999999999999",
    b"0:-9",
    b"-9",
    b"0:1:-7",
]


@dataclass
class Mutation:
    """One input being built: the bytes, where things are in them, and the choices."""

    rng: random.Random
    data: bytearray
    elf: ElfView | None
    btf: BtfView | None
    donors: list[bytes] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)

    def interesting(self, size: int) -> int:
        rng = self.rng
        roll = rng.random()
        if roll < 0.6:
            value = rng.choice(U64 if size == 8 else U32)
        elif roll < 0.8:
            value = len(self.data) + rng.randint(-16, 16)
        else:
            value = rng.getrandbits(8 * size)
        if rng.random() < 0.2:
            value = -value  # two's complement below
        return value & ((1 << (8 * size)) - 1)

    def put(self, offset: int, size: int, value: int) -> bool:
        if offset < 0 or offset + size > len(self.data):
            return False
        value &= (1 << (8 * size)) - 1
        self.data[offset : offset + size] = value.to_bytes(size, "little")
        return True

    def get(self, offset: int, size: int) -> int:
        if offset < 0 or offset + size > len(self.data):
            return 0
        return int.from_bytes(self.data[offset : offset + size], "little")


Mutator = Callable[[Mutation], bool]
