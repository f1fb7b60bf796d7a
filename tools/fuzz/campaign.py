"""A fuzzing campaign: inputs as a pure function of (fuzzer seed, input index).

Any input can be rebuilt from its index alone, so a worker that dies mid-input (a
segfault, a hang it had to be killed for) loses nothing: the parent regenerates the
input that killed it. By default three inputs in four start from an object, the rest from raw BTF.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .mutators import BTF_MUTATORS, OBJECT_MUTATORS, mutate
from .seeds import Seed


@dataclass
class Input:
    index: int
    kind: str  # "object" or "btf"
    seed: str
    data: bytes
    mutators: list[str]


class Campaign:
    def __init__(self, seeds: list[Seed], fuzz_seed: int, btf_share: float = 0.25) -> None:
        self.seed = fuzz_seed
        self.btf_share = btf_share
        self.objects = [s for s in seeds if s.kind == "object"]
        self.btfs = [s for s in seeds if s.kind == "btf"]
        if not self.objects and not self.btfs:
            raise ValueError("no seeds")
        self.donors = [s.data for s in self.objects]

    def generate(self, index: int) -> Input:
        rng = random.Random(f"{self.seed}:{index}")
        use_btf = not self.objects or (self.btfs and rng.random() < self.btf_share)
        seed = rng.choice(self.btfs if use_btf else self.objects)
        table = BTF_MUTATORS if seed.kind == "btf" else OBJECT_MUTATORS
        data, applied = mutate(rng, seed.data, seed.elf, seed.btf, table, self.donors)
        return Input(index, seed.kind, seed.name, data, applied)
