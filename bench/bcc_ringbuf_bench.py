"""bcc baseline for bench/run.py's ring buffer section (Debian's /usr/bin/python3 with
python3-bpfcc): the same 16-byte records, drained with bcc's ring_buffer_consume() and a
Python callback per record. bcc has no test_run, so the producer runs through bpf(2)
directly (BPF_PROG_TEST_RUN on bcc's own program fd). Prints JSON events/s.

    bcc_ringbuf_bench.py prefill RECORDS REPS   # drain a pre-filled ring
    bcc_ringbuf_bench.py live SECONDS PRODUCER   # a getppid loop produces while we consume
"""

import ctypes
import json
import subprocess
import sys
import time

from bcc import BPF

PREFILL = r"""
BPF_RINGBUF_OUTPUT(events, 1 << 14);  /* pages: 64 MiB */
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


def prefill(records, reps):
    b = BPF(text=PREFILL)
    fn = b.load_func("produce", BPF.XDP)
    count = [0]

    def on_event(ctx, data, size):
        count[0] += 1

    b["events"].open_ring_buffer(on_event)
    best = 0.0
    for _ in range(reps):
        test_run(fn.fd, records)
        count[0] = 0
        start = time.perf_counter()
        while count[0] < records:
            b.ring_buffer_consume()
        best = max(best, records / (time.perf_counter() - start))
    return {"per_event": best}


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


if __name__ == "__main__":
    if sys.argv[1] == "prefill":
        result = prefill(int(sys.argv[2]), int(sys.argv[3]))
    else:
        result = live(float(sys.argv[2]), sys.argv[3])
    print(json.dumps(result))
