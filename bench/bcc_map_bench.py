"""bcc baseline for bench/run.py (runs under Debian's /usr/bin/python3 with python3-bpfcc).

Same operations as map_bench.c through bcc's table API; prints JSON ns per element.
"""

import json
import sys
import time

from bcc import BPF

n = int(sys.argv[1])
reps = int(sys.argv[2])
b = BPF(text=f"BPF_HASH(m, u64, u64, {n});")
table = b["m"]
keys = [table.Key(i) for i in range(n)]
vals = [table.Leaf(i * 3) for i in range(n)]
key_array = (table.Key * n)(*range(n))
val_array = (table.Leaf * n)(*(i * 3 for i in range(n)))
best = {"update": 1e18, "lookup": 1e18, "update_batch": 1e18, "lookup_batch": 1e18}


def measure(name, fn):
    start = time.perf_counter_ns()
    fn()
    best[name] = min(best[name], (time.perf_counter_ns() - start) / n)


def update():
    for k, v in zip(keys, vals, strict=True):
        table[k] = v


def lookup():
    for k in keys:
        table[k]


for _ in range(reps):
    measure("update", update)
    measure("lookup", lookup)
    measure("update_batch", lambda: table.items_update_batch(key_array, val_array))
    measure("lookup_batch", lambda: sum(1 for _ in table.items_lookup_batch()))
print(json.dumps(best))
