"""Demo: a socket filter, written as raw BPF instructions, counting real UDP traffic.

The program is attached to a UDP socket with SO_ATTACH_BPF; every datagram the socket
receives runs it, and it adds the packet count and bytes into an array map that this
script reads back. An XDP program is then run on two packets with BPF_PROG_TEST_RUN.
"""

from __future__ import annotations

import socket
import struct

import pylibbpf as bpf
from pylibbpf.insn import (
    FP,
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    Alu,
    Jmp,
    Size,
    alu64_imm,
    assemble,
    atomic_add,
    call,
    exit_,
    jmp_imm,
    jmp_reg,
    ld_map_fd,
    ldx_mem,
    mov64_imm,
    mov64_reg,
    return_imm,
    st_mem,
)

SKB_LEN_OFFSET = 0  # struct __sk_buff.len


def counting_filter(stats: bpf.Map) -> bytes:
    """stats[0] += {packets: 1, bytes: skb->len}; keep the whole packet."""
    return assemble(
        mov64_reg(R6, R1),
        st_mem(Size.W, FP, -4, 0),  # key = 0
        mov64_reg(R2, FP),
        alu64_imm(Alu.ADD, R2, -4),
        ld_map_fd(R1, stats.fd),
        call("map_lookup_elem"),
        jmp_imm(Jmp.JEQ, R0, 0, 4),
        mov64_imm(R1, 1),
        atomic_add(Size.DW, R0, R1, 0),
        ldx_mem(Size.W, R1, R6, SKB_LEN_OFFSET),
        atomic_add(Size.DW, R0, R1, 8),
        mov64_imm(R0, -1),
        exit_(),
    )


def ipv4_only() -> bytes:
    """XDP: pass IPv4 frames, drop everything else (with the bounds check the verifier wants)."""
    return assemble(
        ldx_mem(Size.W, R2, R1, 0),  # r2 = xdp_md.data
        ldx_mem(Size.W, R3, R1, 4),  # r3 = xdp_md.data_end
        mov64_reg(R4, R2),
        alu64_imm(Alu.ADD, R4, 14),
        jmp_reg(Jmp.JGT, R4, R3, 4),  # shorter than an ethernet header: drop
        ldx_mem(Size.H, R5, R2, 12),  # ethertype, network byte order
        jmp_imm(Jmp.JNE, R5, 0x0008, 2),  # 0x0800 read little-endian
        return_imm(bpf.XdpAction.PASS),
        return_imm(bpf.XdpAction.DROP),
    )


def main() -> None:
    stats = bpf.Map.create(bpf.MapType.ARRAY, 4, 16, 1, name="demo_stats")
    prog = bpf.Program.from_insns(
        counting_filter(stats), bpf.ProgType.SOCKET_FILTER, name="demo_count"
    )
    info = prog.info()
    print(
        f"loaded socket filter {info.name!r}: id {info.id}, tag {info.tag}, "
        f"{info.verified_insns} instructions verified, using map ids {info.map_ids}"
    )

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver, sender:
        receiver.bind(("127.0.0.1", 0))
        prog.attach_socket(receiver)
        payloads = [b"x" * size for size in (10, 100, 1000)]
        for payload in payloads:
            sender.sendto(payload, receiver.getsockname())
            receiver.recv(2048)
    packets, nbytes = struct.unpack("<QQ", stats[0])
    print(
        f"the kernel ran it on {packets} datagrams, {nbytes} bytes "
        f"(payloads of {sum(map(len, payloads))} bytes plus 8-byte UDP headers)"
    )

    xdp = bpf.Program.from_insns(ipv4_only(), bpf.ProgType.XDP, name="demo_ipv4_only")
    for label, ethertype in (("IPv4", 0x0800), ("ARP", 0x0806)):
        frame = bytes(12) + ethertype.to_bytes(2, "big") + bytes(50)
        verdict = xdp.test_run(frame, repeat=1000)
        print(
            f"XDP test_run on an {label} frame: {bpf.XdpAction(verdict.retval).name} "
            f"({verdict.duration_ns} ns per run)"
        )
    for obj in (xdp, prog, stats):
        obj.close()


if __name__ == "__main__":
    main()
