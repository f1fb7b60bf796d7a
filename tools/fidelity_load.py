"""Loading one program of one object, alone, with libbpf 1.5 or with pylibbpf.

Each load runs in a forked child with a CPU-time limit and its own mount namespace
holding a fresh bpffs at /sys/fs/bpf, so a hang or a crash is a recorded outcome, and
maps pinned by name (``LIBBPF_PIN_BY_NAME``) neither leak nor meet the other loader's
pins or another worker's. Both sides report the same JSON shape; what the kernel holds
is read here with raw ``bpf(2)`` calls, not through pylibbpf, so the yardstick does not
trust the thing it measures.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import select
import signal
import struct
import subprocess
import time
import traceback
from typing import Any

Result = dict[str, Any]

CPU_SECONDS = 60
WALL_SECONDS = 300

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_BPF = 321  # x86-64
_BPF_MAP_GET_FD_BY_ID = 14
_BPF_OBJ_GET_INFO_BY_FD = 15
_CLONE_NEWNS = 0x00020000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18


def sandbox() -> None:
    """In a child: limit CPU time, and give it a private, empty bpffs."""
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 5))
    if _libc.unshare(_CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if _libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
    if _libc.mount(b"bpf", b"/sys/fs/bpf", b"bpf", 0, None) != 0:
        raise OSError(ctypes.get_errno(), "mount bpffs")


# --------------------------------------------------------------------- kernel facts


def _bpf(cmd: int, attr: bytearray) -> int:
    buffer = (ctypes.c_char * len(attr)).from_buffer(attr)
    ret: int = _libc.syscall(_SYS_BPF, cmd, buffer, len(attr))
    if ret < 0:
        raise OSError(ctypes.get_errno(), f"bpf({cmd})")
    return ret


def _info(fd: int, size: int, fill: dict[int, int]) -> bytes:
    """BPF_OBJ_GET_INFO_BY_FD into a ``size``-byte info with u64/u32 fields preset."""
    info = bytearray(size)
    for offset, value in fill.items():
        struct.pack_into("<Q" if offset in (32, 56) else "<I", info, offset, value)
    buffer = (ctypes.c_char * size).from_buffer(info)
    attr = struct.pack("<IIQ", fd, size, ctypes.addressof(buffer))
    _bpf(_BPF_OBJ_GET_INFO_BY_FD, bytearray(attr))
    return bytes(info)


def _u32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "little")


def _map_name(map_id: int) -> str | None:
    try:
        fd = _bpf(_BPF_MAP_GET_FD_BY_ID, bytearray(struct.pack("<III", map_id, 0, 0)))
    except OSError:
        return None
    try:
        info = _info(fd, 80, {})
    finally:
        os.close(fd)
    return info[24:40].split(b"\0")[0].decode(errors="replace")


def prog_facts(fd: int) -> Result:
    """What the kernel holds for a loaded program (the libbpf helper prints the same)."""
    # struct bpf_prog_info offsets (uapi): type 0, xlated_prog_len 20, xlated_prog_insns 32,
    # nr_map_ids 52, map_ids 56, name 64, gpl_compatible 84 (bit 0), btf_id 128,
    # nr_func_info 144, nr_line_info 148, attach_btf_id 224.
    first = _info(fd, 232, {})
    xlated_len, nr_maps = _u32(first, 20), _u32(first, 52)
    insns = ctypes.create_string_buffer(max(xlated_len, 1))
    ids = (ctypes.c_uint32 * max(nr_maps, 1))()
    info = _info(
        fd,
        232,
        {
            20: xlated_len,
            32: ctypes.addressof(insns),
            52: nr_maps,
            56: ctypes.addressof(ids),
        },
    )
    map_ids = [int(ids[i]) for i in range(nr_maps)]
    return {
        "type": _u32(info, 0),
        "name": info[64:80].split(b"\0")[0].decode(errors="replace"),
        "attach_btf_id": _u32(info, 224),
        "gpl": _u32(info, 84) & 1,
        "btf": _u32(info, 128) != 0,
        "nr_func_info": _u32(info, 144),
        "nr_line_info": _u32(info, 148),
        "insns": insns.raw[:xlated_len].hex(),
        "map_ids": map_ids,
        "map_names": [_map_name(i) for i in map_ids],
    }


# --------------------------------------------------------------------- the two loaders


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:400] if text else type(error).__name__


def _api() -> tuple[Any, Any, Any]:
    """BpfObject, BpfError, Btf: through the paths the layering keeps valid."""
    from pylibbpf.btf import Btf
    from pylibbpf.errors import BpfError
    from pylibbpf.object import BpfObject

    return BpfObject, BpfError, Btf


def open_with_pylibbpf(path: str) -> Any:
    """Open an object once in the worker (pure parsing, no kernel): each forked child then
    loads its own copy, exactly as if it had opened the file itself. Returns the object,
    or the failed outcome every program of it shares."""
    BpfObject, BpfError, _ = _api()

    def overrun(signum: int, frame: Any) -> None:
        raise TimeoutError("opening took longer than the CPU limit")

    previous = signal.signal(signal.SIGALRM, overrun)
    signal.alarm(CPU_SECONDS)
    try:
        return BpfObject.open(path)
    except BpfError as error:
        return {"ok": False, "errno": error.errno, "stage": "open", "msg": _first_line(error)}
    except TimeoutError as error:
        return {"ok": False, "errno": None, "stage": "timeout", "msg": str(error)}
    except Exception as error:  # a pylibbpf bug is an outcome too
        return {"ok": False, "errno": None, "stage": "crash", "msg": _crash(error)}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _pylibbpf_load(obj: Any, program: str) -> Result:
    _, BpfError, _ = _api()
    if isinstance(obj, dict):  # the object did not open
        return obj
    if program != "*" and program not in obj.programs:
        return {"ok": False, "errno": errno.ENOENT, "stage": "open", "msg": "no such program"}
    for name, prog in obj.programs.items():
        if program != "*":
            prog.autoload = name == program
    try:
        obj.load()
    except BpfError as error:
        return {"ok": False, "errno": error.errno, "stage": "load", "msg": _first_line(error)}
    created = 0
    for map_obj in obj.maps.values():
        try:
            map_obj.fd  # noqa: B018 - raises when the map was not created
        except BpfError:
            continue
        created += 1
    result: Result = {"ok": True, "errno": None, "stage": "load", "msg": ""}
    result["maps_created"] = created
    result["prog"] = prog_facts(obj.programs[program].fd) if program != "*" else None
    obj.close()
    return result


def _crash(error: BaseException) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1]
    where = f"{os.path.basename(frame.filename)}:{frame.lineno}"
    return f"{type(error).__name__} at {where}: {_first_line(error)}"


def _read_child(pid: int, read_end: int) -> Result:
    """Collect a forked child's JSON line; a child that dies or overruns is an outcome."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + WALL_SECONDS
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            return {"ok": False, "errno": None, "stage": "timeout", "msg": "wall-clock limit"}
        chunk = os.read(read_end, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return _decode(b"".join(chunks), status)


def _decode(output: bytes, status: int) -> Result:
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        stage = "timeout" if sig == "SIGXCPU" else "crash"
        return {"ok": False, "errno": None, "stage": stage, "msg": f"killed by {sig}"}
    try:
        result: Result = json.loads(output.decode(errors="replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        text = output.decode(errors="replace").strip()[-400:]
        return {"ok": False, "errno": None, "stage": "crash", "msg": f"no result: {text}"}
    return result


def load_with_pylibbpf(obj: Any, program: str) -> Result:
    """Load ``program`` of an object ``open_with_pylibbpf`` opened, alone, with pylibbpf
    in a forked child of this (warmed) process."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        try:
            sandbox()
            result = _pylibbpf_load(obj, program)
        except Exception as error:  # a pylibbpf bug is an outcome too
            result = {"ok": False, "errno": None, "stage": "crash", "msg": _crash(error)}
        os.write(write_end, (json.dumps(result) + "\n").encode())
        os._exit(0)
    os.close(write_end)
    return _read_child(pid, read_end)


def load_with_libbpf(helper: str, path: str, program: str) -> Result:
    """Load ``program`` alone with libbpf 1.5 (tools/libbpf_load.c) in a sandboxed child."""
    try:
        done = subprocess.run(
            [helper, "load", path, program],
            capture_output=True,
            preexec_fn=sandbox,
            timeout=WALL_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "errno": None, "stage": "timeout", "msg": "wall-clock limit"}
    status = (-done.returncode) if done.returncode < 0 else (done.returncode << 8)
    return _decode(done.stdout, status)


def list_programs(helper: str, path: str) -> tuple[list[tuple[str, str]], str]:
    """The programs libbpf sees in an object (name, section), or why it cannot open it."""
    done = subprocess.run([helper, "list", path], capture_output=True, timeout=WALL_SECONDS)
    try:
        listing = json.loads(done.stdout)
    except ValueError:
        return [], f"libbpf list failed: {done.stderr.decode(errors='replace')[-200:]}"
    if "programs" not in listing:
        return [], f"errno {listing.get('errno')}: {listing.get('msg', '').strip()[:200]}"
    return [(p["name"], p["section"]) for p in listing["programs"]], ""


def pylibbpf_programs(obj: Any) -> tuple[list[tuple[str, str]], str]:
    """The programs of an object ``open_with_pylibbpf`` opened, or why it did not open."""
    if isinstance(obj, dict):
        return [], str(obj["msg"])
    return [(name, prog.section) for name, prog in obj.programs.items()], ""


def warm_pylibbpf() -> None:
    """Parse vmlinux BTF once in the worker, so each forked child starts with it."""
    _api()[2].load_vmlinux()
