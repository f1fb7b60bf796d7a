"""Helper run in a private network namespace (``unshare --net``): TCP over loopback with a
given congestion control, reporting what the kernel says about the connection.

    python tcp_transfer.py CC MIB CWND_OFFSET [--pause]

With ``--pause`` it sends half, prints a line, waits for a line on stdin, then opens a
second connection and sends the rest on both. Prints JSON.
"""

import json
import socket
import subprocess
import sys
import threading

TCP_CONGESTION = 13
TCP_INFO = 11


def serve(server: socket.socket, received: list[int]) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return

        def drain(c: socket.socket = conn) -> None:
            total = 0
            while chunk := c.recv(1 << 16):
                total += len(chunk)
            received.append(total)
            c.close()

        threading.Thread(target=drain, daemon=True).start()


def connect(cc: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, cc.encode())
    sock.connect(("127.0.0.1", port))
    return sock


def report(sock: socket.socket, cwnd_offset: int) -> dict[str, object]:
    info = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 256)
    return {
        "cc": sock.getsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, 16).rstrip(b"\0").decode(),
        "snd_cwnd": int.from_bytes(info[cwnd_offset : cwnd_offset + 4], "little"),
    }


def main() -> None:
    cc, mib, cwnd_offset = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    pause = "--pause" in sys.argv
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    received: list[int] = []
    threading.Thread(target=serve, args=(server, received), daemon=True).start()
    payload = b"x" * (1 << 20)
    first = connect(cc, server.getsockname()[1])
    out: dict[str, object] = {}
    for _ in range(mib if not pause else mib // 2):
        first.sendall(payload)
    out["first"] = report(first, cwnd_offset)
    if pause:
        print("paused", flush=True)
        sys.stdin.readline()
        second = connect(cc, server.getsockname()[1])
        for _ in range(mib // 2):
            first.sendall(payload)
            second.sendall(payload)
        out["first_after"] = report(first, cwnd_offset)
        out["second"] = report(second, cwnd_offset)
        second.close()
    first.close()
    server.close()
    out["sent_mib"] = mib
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
