"""pylibbpf's side of bench/run.py: one group of cases in this (fresh) process, as JSON.

Rates are elements per CPU-second and times CPU-milliseconds (``time.process_time``: the
time other processes hold our CPU is not counted), each the median of ``reps`` passes
after a warm-up. Only public API in its natural form: Python ints, lists, ``dict(m.items())``,
ctypes records, callbacks.

    pylibbpf_side.py maps N REPS
    pylibbpf_side.py batchread PIN N REPS        batch reads of the map pinned at PIN
    pylibbpf_side.py elemstep N                  the element rows, one pass per case named on stdin
    pylibbpf_side.py batchstep PIN N             the same, one read per case named on stdin
    pylibbpf_side.py ring OBJ RECORDS REPS       drain a ring pre-filled by OBJ's "produce"
    pylibbpf_side.py smallring OBJ RECORDS CYCLES  fill/drain cycles of a small ring
    pylibbpf_side.py objects OBJ REPS            open+load: first in the process, repeated
    pylibbpf_side.py btfload                     vmlinux BTF ready for a name lookup
    pylibbpf_side.py dumpc                       Btf.dump_c() of vmlinux, in-process
    pylibbpf_side.py live SECONDS PRODUCER OBJ   consume a live getppid() stream
"""

from __future__ import annotations

import ctypes
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

cpu = time.process_time


class Rec(ctypes.Structure):
    """The 40-byte record of the "ctypes records" rows (same as the C and bcc sides)."""

    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("tgid", ctypes.c_uint32),
        ("ppid", ctypes.c_uint32),
        ("uid", ctypes.c_uint32),
        ("start_time", ctypes.c_uint64),
        ("comm", ctypes.c_char * 16),
    ]


def rate(n: int, reps: int, work: Callable[[], object]) -> float:
    """Median elements per CPU-second of ``work`` (which handles ``n`` elements)."""
    work()  # warm-up: keys exist, caches are filled
    samples = []
    for _ in range(reps):
        start = cpu()
        work()
        samples.append(n / (cpu() - start))
    return statistics.median(samples)


def bpf_object_class() -> Any:
    import pylibbpf

    cls = getattr(pylibbpf, "BpfObject", None)
    if cls is None:
        from pylibbpf.object import BpfObject as cls
    return cls


def maps(n: int, reps: int) -> dict[str, float]:
    out: dict[str, float] = {}
    cases, finish = map_cases(n)
    for name, work in cases.items():
        try:
            out[name] = rate(n, reps, work)
        except AttributeError:  # an older tree (the baseline) without this API
            continue
    finish(True)
    return out


def elemstep(n: int) -> None:
    """bench/run.py's lockstep for the element rows: the case names first (one JSON
    line), then one pass of each case named on stdin, answered with its CPU seconds."""
    cases, finish = map_cases(n)
    names = ["int_update", "int_lookup", "rec_update", "rec_lookup"]
    print(json.dumps(names), flush=True)
    for line in sys.stdin:
        work = cases[line.strip()]
        start = cpu()
        work()
        print(f"{cpu() - start:.9f}", flush=True)
    finish(False)


def map_cases(n: int) -> tuple[dict[str, Callable[[], object]], Callable[[bool], None]]:
    """The maps group's cases, and what checks their results and closes their maps."""
    import pylibbpf as bpf

    keys = list(range(n))
    values = [k * 3 for k in keys]
    packed_keys = [k.to_bytes(8, "little") for k in keys]
    packed_values = [v.to_bytes(8, "little") for v in values]
    recs = [Rec(k, k, 1, 1000, k * 7, b"bench") for k in keys]
    ints = bpf.Map.create(bpf.MapType.HASH, 8, 8, n, name="bench", key_type=int, value_type=int)
    raw = bpf.Map.create(bpf.MapType.HASH, 8, 8, n, name="bench_raw")
    records = bpf.Map.create(
        bpf.MapType.HASH, 4, ctypes.sizeof(Rec), n, name="bench_rec", key_type=int, value_type=Rec
    )
    percpu = bpf.Map.create(
        bpf.MapType.PERCPU_HASH, 8, 8, n, name="bench_pc", key_type=int, value_type=int
    )

    def int_update() -> None:
        for k, v in zip(keys, values, strict=True):
            ints[k] = v

    def int_lookup() -> None:
        for k in keys:
            ints[k]

    def bytes_update() -> None:
        update = raw.update
        for k, v in zip(packed_keys, packed_values, strict=True):
            update(k, v)

    def bytes_lookup() -> None:
        lookup = raw.lookup
        for k in packed_keys:
            lookup(k)

    def rec_update() -> None:
        for k, r in zip(keys, recs, strict=True):
            records[k] = r

    def rec_lookup() -> None:
        for k in keys:
            records[k]

    def percpu_update() -> None:
        for k, v in zip(keys, values, strict=True):
            percpu[k] = v  # the same value on every CPU

    def percpu_lookup() -> None:
        for k in keys:
            percpu[k]  # a list, one value per possible CPU

    def items() -> None:
        assert len(dict(ints.items())) == n

    def lookup_batch() -> None:
        assert len(ints.lookup_batch()) == n

    def lookup_batch_lists() -> None:
        assert len(ints.lookup_batch_lists()[1]) == n

    def dict_of_map() -> None:
        assert len(dict(ints)) == n  # keys() (in batches), then m[k] for each

    all_keys, all_values = b"".join(packed_keys), b"".join(packed_values)

    def threads_lookup() -> None:
        barrier = threading.Barrier(4)

        def work(part: list[int]) -> None:
            barrier.wait()
            for k in part:
                ints[k]

        pool = [threading.Thread(target=work, args=(keys[i::4],)) for i in range(4)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()

    cases: dict[str, Callable[[], object]] = {
        "int_update": int_update,
        "int_lookup": int_lookup,
        "bytes_update": bytes_update,
        "bytes_lookup": bytes_lookup,
        "rec_update": rec_update,
        "rec_lookup": rec_lookup,
        "percpu_update": percpu_update,
        "percpu_lookup": percpu_lookup,
        "items": items,
        # Each side's own map: the kernel's walk costs what this map's hash seed and
        # bucket layout make it cost (the batchread group compares on one shared map).
        "lookup_batch_ownmap": lookup_batch,
        "lookup_batch_lists_ownmap": lookup_batch_lists,
        "dict_of_map": dict_of_map,
        "update_batch": lambda: ints.update_batch(keys, values),
        "bytes_update_batch": lambda: raw.update_batch(all_keys, all_values),
        "bytes_lookup_batch_ownmap": lambda: raw.lookup_batch_raw(),
        "threads_lookup": threads_lookup,
    }

    def finish(every_case_ran: bool) -> None:
        assert ints[n - 1] == values[n - 1] and records[5].start_time == 35
        if every_case_ran:
            assert percpu[3] == [9] * len(percpu[3]) and raw.lookup_batch_raw().count == n
        for m in (ints, raw, records, percpu):
            m.close()

    return cases, finish


def batch_cases(pin: str, n: int) -> dict[str, Callable[[], object]]:
    """Whole-map batch reads of the map the C side reads too (bench/run.py pins one per
    round): keys i -> 3i, 8 bytes each; the forms this tree has."""
    import pylibbpf as bpf

    ints = bpf.Map.from_pinned(pin, key_type=int, value_type=int)
    raw = bpf.Map.from_pinned(pin)
    expected = [k * 3 for k in range(n)]

    def pairs() -> None:
        assert len(ints.lookup_batch()) == n

    def lists() -> None:
        assert len(ints.lookup_batch_lists()[1]) == n

    def arrays() -> None:
        assert len(ints.lookup_batch_arrays()[1]) == n

    def as_dict() -> None:
        assert len(dict(zip(*ints.lookup_batch_lists(), strict=True))) == n

    keys, values = ints.lookup_batch_lists()
    assert sorted(keys) == list(range(n)) and sorted(values) == expected
    # Written back as they are, so the map stays as the C side made it (its "update").
    new_keys = list(range(n))

    def update() -> None:
        ints.update_batch(new_keys, expected)

    cases: dict[str, Callable[[], object]] = {
        "lookup_batch": pairs,
        "lookup_batch_lists": lists,
        "lookup_batch_arrays": arrays,
        "lookup_batch_dict": as_dict,
        "bytes_lookup_batch": lambda: raw.lookup_batch_raw(),
        "update_batch_lockstep": update,
    }
    if not hasattr(ints, "lookup_batch_arrays"):  # an older tree (the baseline)
        del cases["lookup_batch_arrays"]
    return cases


def batchread(pin: str, n: int, reps: int) -> dict[str, float]:
    return {name: rate(n, reps, work) for name, work in batch_cases(pin, n).items()}


def batchstep(pin: str, n: int) -> None:
    """bench/run.py's lockstep: the case names first (one JSON line), then for each case
    name read on stdin one read of the map, answered with its CPU seconds."""
    cases = batch_cases(pin, n)
    print(json.dumps(list(cases)), flush=True)
    for line in sys.stdin:
        work = cases[line.strip()]
        start = cpu()
        work()
        print(f"{cpu() - start:.9f}", flush=True)


def ring(path: str, records: int, rounds: int, small: bool) -> dict[str, float]:
    """Drain rates: a callback per record, and (large ring only) batches of structs."""
    from pylibbpf.ringbuf import RingBuffer

    out: dict[str, float] = {}
    with bpf_object_class().open(path) as obj:
        obj.load()
        produce, events = obj.programs["produce"], obj.maps["events"]
        count = [0]

        def on_event(view: memoryview) -> None:
            count[0] += 1

        def on_batch(batch: list[Any]) -> None:
            count[0] += len(batch)

        modes = {"per_event": RingBuffer(events, on_event)}
        if not small:
            modes["batch"] = RingBuffer(events, batch=on_batch, record="<QQ")
        for mode, ring in modes.items():
            samples, drained, spent = [], 0, 0.0
            for r in range(-1, rounds):
                produce.test_run(bytes(64), repeat=records)
                count[0] = 0
                start = cpu()
                ring.consume()
                elapsed = cpu() - start
                if count[0] != records:
                    print(f"{mode}: drained {count[0]} of {records}", file=sys.stderr)
                if r >= 0:
                    samples.append(count[0] / elapsed)
                    drained, spent = drained + count[0], spent + elapsed
            out[mode] = drained / spent if small else statistics.median(samples)
            ring.close()
    return out


def objects(path: str, rounds: int) -> dict[str, float]:
    cls = bpf_object_class()

    def once() -> float:
        start = cpu()
        obj = cls.open(path)
        obj.load()
        elapsed = (cpu() - start) * 1e3
        obj.close()
        return elapsed

    first = once()
    return {"first": first, "repeated": statistics.median(once() for _ in range(rounds))}


def btfload() -> dict[str, float]:
    from pylibbpf.btf import Btf, Kind

    start = cpu()
    btf = Btf.load_vmlinux()
    assert btf.find("task_struct", Kind.STRUCT).id > 0
    return {"ms": (cpu() - start) * 1e3}


def dumpc() -> dict[str, float]:
    from pylibbpf.btf import Btf

    btf = Btf.load_vmlinux()
    start = cpu()
    header = btf.dump_c()
    assert "struct task_struct {" in header
    return {"ms": (cpu() - start) * 1e3}


def live(seconds: float, producer: str, path: str) -> dict[str, dict[str, float]]:
    """A C loop calling getppid() for ``seconds`` on one CPU, each call a record in a
    4 MiB ring, consumed here: the rate produced, what was consumed and dropped."""
    import subprocess

    from pylibbpf.ringbuf import RingBuffer

    results = {}
    consumed = [0]

    def on_event(view: memoryview) -> None:
        consumed[0] += 1

    def on_batch(batch: list[Any]) -> None:
        consumed[0] += len(batch)

    for mode in ("per_event", "batch"):
        consumed[0] = 0
        child = subprocess.Popen([producer, str(seconds)], stdin=subprocess.PIPE)
        with bpf_object_class().open(path) as obj:
            obj.variables["target_tgid"].value = child.pid
            obj.load()
            obj.attach()
            ring = (
                RingBuffer(obj.maps["events"], on_event)
                if mode == "per_event"
                else RingBuffer(obj.maps["events"], batch=on_batch, record="<QQ")
            )
            assert child.stdin is not None
            child.stdin.close()  # go
            start = time.perf_counter()
            while child.poll() is None:
                ring.poll(100)
            elapsed = time.perf_counter() - start
            ring.consume()
            ring.close()
            produced = obj.variables["produced"].value
            dropped = obj.variables["dropped"].value
        results[mode] = {
            "rate": (produced + dropped) / elapsed,
            "produced": produced,
            "dropped": dropped,
            "consumed": consumed[0],
        }
    return results


def main(argv: list[str]) -> int:
    group, args = argv[1], argv[2:]
    result: Any
    if group == "maps":
        result = maps(int(args[0]), int(args[1]))
    elif group == "batchread":
        result = batchread(args[0], int(args[1]), int(args[2]))
    elif group == "elemstep":
        elemstep(int(args[0]))
        return 0
    elif group == "batchstep":
        batchstep(args[0], int(args[1]))
        return 0
    elif group in ("ring", "smallring"):
        result = ring(args[0], int(args[1]), int(args[2]), small=group == "smallring")
    elif group == "objects":
        result = objects(args[0], int(args[1]))
    elif group == "btfload":
        result = btfload()
    elif group == "dumpc":
        result = dumpc()
    elif group == "live":
        result = live(float(args[0]), args[1], args[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
