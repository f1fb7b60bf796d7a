"""bcc's side of bench/run.py (Debian's /usr/bin/python3 with python3-bpfcc): one group of
cases in this fresh process, as JSON, measured as pylibbpf_side.py measures them (CPU
time, median of passes after a warm-up) through bcc's own table and ring buffer API in
its natural form (bcc wants ctypes keys and values, so ints are wrapped per call).

    bcc_side.py maps N REPS
    bcc_side.py batchread PIN N REPS           batch reads of the map pinned at PIN
    bcc_side.py ring PAGES RECORDS REPS        drain a pre-filled ring of PAGES pages
    bcc_side.py smallring PAGES RECORDS CYCLES fill/drain cycles of a small ring
    bcc_side.py live SECONDS PRODUCER          consume a live getppid() stream

bcc has no test_run, so the ring producer runs through bpf(2) directly
(BPF_PROG_TEST_RUN on bcc's own program fd).
"""

import ctypes
import json
import statistics
import subprocess
import sys
import threading
import time

from bcc import BPF

cpu = time.process_time

MAPS = r"""
struct rec { u32 pid, tgid, ppid, uid; u64 start_time; char comm[16]; };
BPF_HASH(ints, u64, u64, N);
BPF_HASH(raw, u64, u64, N);
BPF_HASH(records, u32, struct rec, N);
BPF_PERCPU_HASH(percpu, u64, u64, N);
"""

PRODUCER = r"""
BPF_RINGBUF_OUTPUT(events, PAGES);
BPF_ARRAY(seq, u64, 1);
int produce(struct xdp_md *ctx) {
    int zero = 0;
    u64 record[2];  /* no initializer: bcc cannot load the .rodata it would need */
    u64 *next = seq.lookup(&zero);
    record[0] = next ? __sync_fetch_and_add(next, 1) : 0;
    record[1] = 42;
    events.ringbuf_output(&record, sizeof(record), 0);
    return XDP_PASS;
}
"""

LIVE = r"""
BPF_RINGBUF_OUTPUT(events, 1024);  /* pages: 4 MiB, as the pylibbpf side */
BPF_ARRAY(counts, u64, 2);       /* produced, dropped */
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    int index = 0;
    u64 record[2];
    u64 *slot;
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    record[0] = bpf_ktime_get_ns();
    record[1] = 42;
    if (events.ringbuf_output(&record, sizeof(record), 0))
        index = 1;
    slot = counts.lookup(&index);
    if (slot)
        __sync_fetch_and_add(slot, 1);
    return 0;
}
"""


def rate(n, reps, work):
    work()
    samples = []
    for _ in range(reps):
        start = cpu()
        work()
        samples.append(n / (cpu() - start))
    return statistics.median(samples)


def maps(n, reps):
    b = BPF(text=MAPS.replace("N", str(n)))
    ints, raw, records, percpu = b["ints"], b["raw"], b["records"], b["percpu"]
    keys = list(range(n))
    values = [k * 3 for k in keys]
    raw_keys = [raw.Key(k) for k in keys]
    raw_values = [raw.Leaf(v) for v in values]
    recs = [records.Leaf(k, k, 1, 1000, k * 7, b"bench") for k in keys]
    ncpus = len(percpu.Leaf())
    IntKey, IntLeaf, RecKey, PcKey, PcLeaf = (
        ints.Key,
        ints.Leaf,
        records.Key,
        percpu.Key,
        percpu.Leaf,
    )

    def int_update():
        for k, v in zip(keys, values, strict=True):
            ints[IntKey(k)] = IntLeaf(v)

    def int_lookup():
        for k in keys:
            _ = ints[IntKey(k)].value

    def bytes_update():
        for k, v in zip(raw_keys, raw_values, strict=True):
            raw[k] = v

    def bytes_lookup():
        for k in raw_keys:
            raw[k]

    def rec_update():
        for k, r in zip(keys, recs, strict=True):
            records[RecKey(k)] = r

    def rec_lookup():
        for k in keys:
            records[RecKey(k)]

    def percpu_update():
        for k, v in zip(keys, values, strict=True):
            percpu[PcKey(k)] = PcLeaf(*([v] * ncpus))

    def percpu_lookup():
        for k in keys:
            list(percpu[PcKey(k)])

    def items():
        assert len({k.value: v.value for k, v in ints.items()}) == n

    def lookup_batch():
        assert len(list(ints.items_lookup_batch())) == n  # ints already

    def update_batch():
        ints.items_update_batch((IntKey * n)(*keys), (IntLeaf * n)(*values))

    key_array = (raw.Key * n)(*keys)
    value_array = (raw.Leaf * n)(*values)

    def threads_lookup():
        barrier = threading.Barrier(4)

        def work(part):
            barrier.wait()
            for k in part:
                _ = ints[IntKey(k)].value

        pool = [threading.Thread(target=work, args=(keys[i::4],)) for i in range(4)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()

    cases = {
        "int_update": int_update,
        "int_lookup": int_lookup,
        "bytes_update": bytes_update,
        "bytes_lookup": bytes_lookup,
        "rec_update": rec_update,
        "rec_lookup": rec_lookup,
        "percpu_update": percpu_update,
        "percpu_lookup": percpu_lookup,
        "items": items,
        "lookup_batch_ownmap": lookup_batch,
        "update_batch": update_batch,
        "bytes_update_batch": lambda: raw.items_update_batch(key_array, value_array),
        "bytes_lookup_batch_ownmap": lambda: sum(1 for _ in raw.items_lookup_batch()),
        "threads_lookup": threads_lookup,
    }
    return {name: rate(n, reps, work) for name, work in cases.items()}


class ObjGetAttr(ctypes.Structure):
    _fields_ = [
        ("pathname", ctypes.c_uint64),
        ("bpf_fd", ctypes.c_uint32),
        ("file_flags", ctypes.c_uint32),
    ]


def batchread(pin, n, reps):
    """The pylibbpf and C sides' batch reads of the map pinned at PIN, through a bcc table
    of the same shape whose fd is swapped for the pinned map's (bcc opens no pinned maps)."""
    from bcc.table import HashTable

    b = BPF(text="BPF_HASH(ints, u64, u64, N);".replace("N", str(n)))
    own = b["ints"]
    path = ctypes.create_string_buffer(pin.encode())
    attr = ObjGetAttr(pathname=ctypes.addressof(path))
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(321, 7, ctypes.byref(attr), ctypes.sizeof(attr))  # bpf(OBJ_GET)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "BPF_OBJ_GET")
    shared = HashTable(b, own.map_id, fd, own.Key, own.Leaf)

    def lookup_batch():
        assert len(list(shared.items_lookup_batch())) == n

    return {
        "lookup_batch": rate(n, reps, lookup_batch),
        "bytes_lookup_batch": rate(n, reps, lambda: sum(1 for _ in shared.items_lookup_batch())),
    }


class TestRunAttr(ctypes.Structure):
    _fields_ = [
        ("prog_fd", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("data_in", ctypes.c_uint64),
        ("data_out", ctypes.c_uint64),
        ("repeat", ctypes.c_uint32),
        ("duration", ctypes.c_uint32),
    ]


def test_run(prog_fd, repeat):
    packet = ctypes.create_string_buffer(64)
    attr = TestRunAttr(
        prog_fd=prog_fd, data_size_in=64, data_in=ctypes.addressof(packet), repeat=repeat
    )
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(321, 10, ctypes.byref(attr), ctypes.sizeof(attr)):  # bpf(PROG_TEST_RUN)
        raise OSError(ctypes.get_errno(), "BPF_PROG_TEST_RUN")


def ring(pages, records, rounds, small):
    b = BPF(text=PRODUCER.replace("PAGES", str(pages)))
    fn = b.load_func("produce", BPF.XDP)
    count = [0]

    def on_event(ctx, data, size):
        count[0] += 1

    b["events"].open_ring_buffer(on_event)
    samples, drained, spent = [], 0, 0.0
    for r in range(-1, rounds):
        test_run(fn.fd, records)
        count[0] = 0
        start = cpu()
        b.ring_buffer_consume()
        elapsed = cpu() - start
        if r >= 0:
            samples.append(count[0] / elapsed)
            drained, spent = drained + count[0], spent + elapsed
    return {"per_event": drained / spent if small else statistics.median(samples)}


def live(seconds, producer):
    child = subprocess.Popen([producer, str(seconds)], stdin=subprocess.PIPE)
    b = BPF(text=LIVE.replace("TARGET", str(child.pid)))
    consumed = [0]

    def on_event(ctx, data, size):
        consumed[0] += 1

    b["events"].open_ring_buffer(on_event)
    child.stdin.close()  # go
    start = time.perf_counter()
    while child.poll() is None:
        b.ring_buffer_poll(100)
    elapsed = time.perf_counter() - start
    b.ring_buffer_consume()
    counts = b["counts"]
    produced, dropped = counts[ctypes.c_int(0)].value, counts[ctypes.c_int(1)].value
    return {
        "rate": (produced + dropped) / elapsed,
        "produced": produced,
        "dropped": dropped,
        "consumed": consumed[0],
    }


def main(argv):
    group, args = argv[1], argv[2:]
    if group == "maps":
        result = maps(int(args[0]), int(args[1]))
    elif group == "batchread":
        result = batchread(args[0], int(args[1]), int(args[2]))
    elif group in ("ring", "smallring"):
        result = ring(int(args[0]), int(args[1]), int(args[2]), small=group == "smallring")
    elif group == "live":
        result = live(float(args[0]), args[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
