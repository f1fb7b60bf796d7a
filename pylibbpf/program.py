"""Loaded BPF programs: loading with verifier-log handling, test runs, pinning, info.

Verifier log policy (the same for every program pylibbpf loads):

1. Load without a log: the fast path, and the verifier does less work.
2. If that fails for a reason other than privileges, load again with ``log_level=1``.
3. If the log does not fit (ENOSPC), grow the buffer: to ``log_true_size`` when the kernel
   reports it (6.4+), otherwise four-fold, up to the kernel's limit. A log still too large
   at the limit is kept and marked truncated.
4. Raise ``LoadError`` with the whole log and, in the message, its last meaningful lines.
"""

from __future__ import annotations

import ctypes
import errno
import os
import weakref
from collections.abc import Mapping

from . import syscall
from .errors import BpfError, BpfPermissionError, LoadError, NotSupportedError, describe_errno
from .logs import module_logger
from .maps import Map, sanitize_name
from .records import dataclass, on_demand
from .spec.insn import INSN_SIZE
from .spec.objspec import ObjectSpec
from .syscall import features
from .syscall.bpf import kernel_buffer
from .syscall.fd import Closing, OwnedFd
from .uapi_values import LOG_BUF_SIZE_MAX, AttachType, Cmd, ProgType, as_enum, value_name

# Every attribute ``links.methods.AttachMethods`` defines (a test checks the list).
ATTACH_METHODS = (
    "attach",
    "attach_tracepoint",
    "attach_raw_tracepoint",
    "attach_trace",
    "attach_iter",
    "attach_xdp",
    "attach_tc",
    "attach_netkit",
    "attach_cgroup",
    "attach_netns",
    "attach_kprobe",
    "attach_kprobe_multi",
    "attach_uprobe",
    "attach_uprobe_multi",
    "attach_usdt",
    "attach_perf_event",
    "attach_sockmap",
    "attach_netfilter",
    "attach_socket",
    "detach_socket",
)

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any, Protocol

    from .links.methods import AttachMethods
    from .stream import ProgramStream
    from .uapi import StreamId
else:
    Protocol = object  # (the protocols below are for the type checker only)
    # ``Program.attach*()``, imported on first use: loading does without the links package.
    AttachMethods = on_demand("pylibbpf.links.methods", "AttachMethods", ATTACH_METHODS)


logger = module_logger(__name__)

INITIAL_LOG_SIZE = 1 << 16
LOG_TAIL_LINES = 12
_LOG_NOISE = ("processed ", "verification time", "stack depth", "mark_precise")


def _type_name(prog_type: int) -> str:
    return value_name(ProgType, prog_type) or f"type {prog_type}"


def log_tail(log: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last meaningful lines of a verifier log (statistics lines dropped)."""
    kept = [
        line for line in log.rstrip("\n").splitlines() if line and not line.startswith(_LOG_NOISE)
    ]
    return "\n".join(kept[-lines:])


@dataclass
class LoadOptions:
    """Everything PROG_LOAD takes besides the instructions (all optional)."""

    license: str = "GPL"
    expected_attach_type: int | None = None
    kern_version: int = 0
    prog_flags: int = 0
    prog_btf_fd: int = 0
    func_info: bytes = b""
    func_info_rec_size: int = 0
    line_info: bytes = b""
    line_info_rec_size: int = 0
    attach_btf_id: int = 0
    attach_btf_obj_fd: int = 0
    attach_prog_fd: int = 0
    fd_array: list[int] | None = None
    ifindex: int = 0


@dataclass
class LoadResult:
    """A loaded program's fd and the verifier log (kept when asked for)."""

    fd: int
    log: str
    log_truncated: bool


def load_program(
    name: str,
    prog_type: int,
    insns: bytes,
    options: LoadOptions,
    *,
    log_level: int = 0,
    log_size: int = INITIAL_LOG_SIZE,
) -> LoadResult:
    """PROG_LOAD with the log policy of this module; returns the fd and any log."""
    if not insns or len(insns) % INSN_SIZE:
        raise LoadError(
            f"program {name!r}: {len(insns)} bytes of instructions is not a positive multiple of 8",
            errno.EINVAL,
            program=name,
        )
    features.ensure_memlock()
    keepalive: list[Any] = []

    def buffer(data: bytes) -> int:
        buf, address = kernel_buffer(data)
        keepalive.append(buf)
        return address

    attr = syscall.ProgLoadAttr(
        prog_type=prog_type,
        insn_cnt=len(insns) // INSN_SIZE,
        insns=buffer(insns),
        license=buffer(options.license.encode() + b"\0"),
        kern_version=options.kern_version,
        prog_flags=options.prog_flags,
        prog_name=sanitize_name(name).encode(),
        prog_ifindex=options.ifindex,
        expected_attach_type=options.expected_attach_type or 0,
        prog_btf_fd=options.prog_btf_fd,
        attach_btf_id=options.attach_btf_id,
        attach_prog_fd=options.attach_prog_fd or options.attach_btf_obj_fd,
    )
    if options.func_info:
        attr.func_info_rec_size = options.func_info_rec_size
        attr.func_info = buffer(options.func_info)
        attr.func_info_cnt = len(options.func_info) // options.func_info_rec_size
    if options.line_info:
        attr.line_info_rec_size = options.line_info_rec_size
        attr.line_info = buffer(options.line_info)
        attr.line_info_cnt = len(options.line_info) // options.line_info_rec_size
    if options.fd_array:
        fds = (ctypes.c_int32 * len(options.fd_array))(*options.fd_array)
        keepalive.append(fds)
        attr.fd_array = ctypes.addressof(fds)
    what = f"program {name!r} ({_type_name(prog_type)})"

    level = log_level
    size = max(log_size, 256)
    truncated = False
    while True:
        log_buf = ctypes.create_string_buffer(size) if level else None
        attr.log_level = level
        attr.log_size = size if level else 0
        attr.log_buf = ctypes.addressof(log_buf) if log_buf is not None else 0
        attr.log_true_size = 0
        try:
            fd = syscall.prog_load(attr, what=what)
        except BpfPermissionError:
            raise
        except BpfError as error:
            err = error.errno or 0
            if level == 0:
                level = 1  # step 2: the same load again, this time with a log
                continue
            log = log_buf.value.decode(errors="replace") if log_buf is not None else ""
            if err == errno.ENOSPC and size < LOG_BUF_SIZE_MAX:
                wanted = attr.log_true_size + 1 if attr.log_true_size > size else size * 4
                size = min(wanted, LOG_BUF_SIZE_MAX)
                continue
            if err == errno.ENOSPC:
                truncated = True
            _log_rejection(what, err, log, truncated)
            raise _load_error(name, prog_type, err, log, truncated) from error
        log = log_buf.value.decode(errors="replace") if log_buf is not None else ""
        return LoadResult(fd, log, truncated)


def _log_rejection(what: str, err: int, verifier_log: str, truncated: bool) -> None:
    """The whole verifier log at WARNING, framed as libbpf frames it."""
    logger.warning(
        "%s: load failed [%s]%s\n-- BEGIN PROG LOAD LOG --\n%s\n-- END PROG LOAD LOG --",
        what,
        errno.errorcode.get(err, err),
        " (log truncated at the kernel's limit)" if truncated else "",
        verifier_log.rstrip("\n"),
    )


def _load_error(name: str, prog_type: int, err: int, log: str, truncated: bool) -> LoadError:
    meaning = describe_errno(err, Cmd.PROG_LOAD)
    code = errno.errorcode.get(err, str(err))
    head = f"program {name!r} ({_type_name(prog_type)}): {meaning} [{code}]"
    if not log and err == errno.EINVAL and not features.has_prog_type(prog_type):
        head += f"; this kernel does not support {_type_name(prog_type)} programs"
    tail = log_tail(log)
    if truncated:
        tail = "[verifier log truncated at the kernel's size limit]\n" + tail
    message = f"{head}\nverifier log (last lines):\n{tail}" if tail else head
    return LoadError(message, err, program=name, log=log)


@dataclass(frozen=True)
class ProgramInfo:
    """What the kernel reports about a program (``bpf_prog_info``)."""

    id: int
    type: int
    name: str
    tag: str
    map_ids: list[int]
    btf_id: int
    xlated_insns: bytes
    run_time_ns: int
    run_cnt: int
    verified_insns: int
    load_time_ns: int
    gpl_compatible: bool = False  # loaded with a GPL-compatible license
    attach_btf_id: int = 0
    nr_func_info: int = 0
    nr_line_info: int = 0


class ProgramOwner(Protocol):
    """What a program may ask of the object it came from (``BpfObject`` is one)."""

    @property
    def name(self) -> str:
        """The object's name, for messages."""
        ...

    @property
    def maps(self) -> Mapping[str, Map]:
        """Its maps by name (relocations name them)."""
        ...

    @property
    def spec(self) -> ObjectSpec:
        """What its ELF file said."""
        ...


class Program(AttachMethods, Closing):
    """A BPF program: instructions plus load options, and once loaded, its fd.

    A program from a ``BpfObject`` knows its object through a weak reference (``obj``):
    the object owns its programs, never the other way round, so dropping the last
    reference to an object frees it (and unloads its programs) at once.
    """

    def __init__(
        self,
        name: str,
        prog_type: ProgType | int,
        insns: bytes = b"",
        *,
        section: str = "",
        options: LoadOptions | None = None,
    ) -> None:
        self.name = name
        self.section = section
        self._type = prog_type  # (a plain int on the load path: see the property)
        self.insns = insns
        self.options = options or LoadOptions()
        self.autoload = True
        self.verifier_log = ""
        self._fd: OwnedFd | None = None
        self._pin_path: str | None = None
        self._obj: weakref.ref[ProgramOwner] | None = None
        self.attach_target: tuple[Program | None, str] | None = None

    @property
    def obj(self) -> ProgramOwner | None:
        """The object this program came from (None for programs made alone, or once the
        object is gone)."""
        return self._obj() if self._obj is not None else None

    @obj.setter
    def obj(self, obj: ProgramOwner | None) -> None:
        self._obj = weakref.ref(obj) if obj is not None else None

    @property
    def type(self) -> ProgType | int:
        """The program type: a ``ProgType`` member for a number this pylibbpf knows."""
        return as_enum("ProgType", self._type)

    @type.setter
    def type(self, value: ProgType | int) -> None:
        self._type = value

    @property
    def expected_attach_type(self) -> AttachType | int | None:
        """The attach type the kernel checks at load (``options.expected_attach_type``),
        an ``AttachType`` member for a number this pylibbpf knows."""
        value = self.options.expected_attach_type
        return None if value is None else as_enum("AttachType", value)

    @expected_attach_type.setter
    def expected_attach_type(self, value: AttachType | int | None) -> None:
        self.options.expected_attach_type = value

    @property
    def _what(self) -> str:
        return f"program {self.name!r}"

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_insns(
        cls,
        insns: bytes,
        prog_type: ProgType | int,
        *,
        name: str = "prog",
        log_level: int = 0,
        **options: Any,
    ) -> Program:
        """Load a program from raw instructions (``options`` as in ``LoadOptions``)."""
        program = cls(name, prog_type, insns, options=LoadOptions(**options))
        program.load(log_level=log_level)
        return program

    @classmethod
    def from_fd(cls, fd: int | OwnedFd) -> Program:
        """Wrap an existing program fd (an ``int`` is duplicated; an ``OwnedFd`` is taken)."""
        owned = fd if isinstance(fd, OwnedFd) else OwnedFd(os.dup(fd), f"program fd {fd}")
        info = _prog_info(owned.fd, owned.label, xlated=False)
        owned.label = f"program {info.name!r}"
        program = cls(info.name, info.type)
        program._fd = owned
        return program

    @classmethod
    def from_pinned(cls, path: str | os.PathLike[str]) -> Program:
        """Open a pinned program; ``unpin()`` then removes that pin."""
        what = f"pinned program {os.fspath(path)!r}"
        program = cls.from_fd(OwnedFd(syscall.obj_get(path, what=what), what))
        program._pin_path = os.fspath(path)
        return program

    @classmethod
    def from_id(cls, prog_id: int) -> Program:
        """Open a loaded program by its kernel id."""
        return cls.from_fd(OwnedFd(syscall.prog_get_fd_by_id(prog_id), f"program id {prog_id}"))

    # ----------------------------------------------------------------- loading

    def load(self, *, log_level: int = 0, log_size: int = INITIAL_LOG_SIZE) -> None:
        """Load into the kernel; ``log_level`` > 0 keeps the verifier log on success too."""
        if self._fd is not None:
            raise BpfError(f"{self._what} is already loaded", errno.EALREADY)
        result = load_program(
            self.name, self._type, self.insns, self.options, log_level=log_level, log_size=log_size
        )
        self.verifier_log = result.log
        self._fd = OwnedFd(result.fd, self._what)
        logger.debug(
            "%s (%s) loaded: %d instructions, fd %d",
            self._what,
            _type_name(self._type),
            len(self.insns) // INSN_SIZE,
            result.fd,
        )

    @property
    def loaded(self) -> bool:
        """Whether the kernel holds the program (loaded and not closed)."""
        return self._fd is not None and not self._fd.closed

    @property
    def fd(self) -> int:
        """The program's descriptor (EBADF ``BpfError`` before load or after close)."""
        if self._fd is None:
            raise BpfError(f"{self._what} is not loaded", errno.EBADF)
        return self._fd.fd

    def fileno(self) -> int:
        """The program's descriptor, for APIs that take file-like objects."""
        return self.fd

    def close(self) -> None:
        """Release the program (the kernel unloads it once nothing else holds it)."""
        if self._fd is not None:
            self._fd.close()

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "not loaded"
        section = f" section={self.section!r}" if self.section else ""
        return f"<Program {self.name!r} {_type_name(self._type)}{section} {state}>"

    # ----------------------------------------------------------------- running

    def test_run(
        self,
        data: bytes = b"",
        ctx: bytes | None = None,
        repeat: int = 1,
        *,
        data_out_size: int | None = None,
        ctx_out_size: int | None = None,
        flags: int = 0,
        cpu: int = 0,
        batch_size: int = 0,
    ) -> syscall.TestRunResult:
        """Run the program in the kernel on ``data``/``ctx`` (BPF_PROG_TEST_RUN)."""
        if ctx_out_size is None and self._type in (ProgType.RAW_TRACEPOINT, ProgType.SYSCALL):
            ctx_out_size = 0  # these program types refuse a ctx_out buffer
        return syscall.prog_test_run(
            self.fd,
            data=data,
            data_out_size=data_out_size,
            ctx=ctx,
            ctx_out_size=ctx_out_size,
            repeat=repeat,
            flags=flags,
            cpu=cpu,
            batch_size=batch_size,
            what=self._what,
        )

    def stream(self, stream: StreamId | int | str = "stdout") -> ProgramStream:
        """The program's ``stdout`` or ``stderr`` (BPF streams, Linux 6.17): what it wrote
        with ``bpf_stream_printk()``, and on stderr the kernel's error reports about it."""
        from .stream import ProgramStream

        return ProgramStream(self.fd, stream, what=self._what)

    def set_attach_target(self, target: Program | None, function: str) -> None:
        """Before load: what a BTF-attached program hooks — ``function`` in the kernel
        (``target=None``: overrides the section's fentry/fexit target; vmlinux first,
        then the loaded modules, or ``"module:function"``) or a global function of
        another loaded program (freplace), as libbpf's ``bpf_program__set_attach_target``."""
        self.attach_target = (target, function)

    def bind_map(self, map_: Any) -> None:
        """Keep ``map_`` alive as long as this program (PROG_BIND_MAP)."""
        syscall.prog_bind_map(self.fd, map_.fileno(), what=self._what)

    def assoc_struct_ops(self, map_: Any) -> None:
        """Tie this (non-struct_ops) program to struct_ops map ``map_``, whose ops its
        kfuncs may then call (PROG_ASSOC_STRUCT_OPS, Linux 6.19; libbpf 1.7's
        ``bpf_program__assoc_struct_ops``)."""
        if not features.has_prog_assoc_struct_ops():
            raise NotSupportedError(
                f"{self._what}: associating a program with a struct_ops map needs "
                "PROG_ASSOC_STRUCT_OPS (Linux 6.19)",
                errno.EOPNOTSUPP,
            )
        syscall.prog_assoc_struct_ops(self.fd, map_.fileno(), what=self._what)

    # ----------------------------------------------------------------- pinning, info

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin on bpffs (a missing parent directory is created, as libbpf does)."""
        from .syscall.pins import pin_object

        self._pin_path = pin_object(self.fd, path, self._what)

    def unpin(self, path: str | os.PathLike[str] | None = None) -> None:
        """Remove the pin (``path`` defaults to where this program was pinned or opened)."""
        from .syscall.pins import unpin_object

        self._pin_path = unpin_object(path, self._pin_path, self._what)

    @property
    def pin_path(self) -> str | None:
        """Where this program is pinned (by ``pin()`` or ``from_pinned()``), if anywhere."""
        return self._pin_path

    def info(self, *, xlated: bool = False) -> ProgramInfo:
        """Kernel-side facts; ``xlated=True`` also fetches the instructions as rewritten."""
        return _prog_info(self.fd, self._what, xlated=xlated)

    @property
    def id(self) -> int:
        """The kernel's id of this program."""
        return self.info().id


def _prog_info(fd: int, what: str, *, xlated: bool) -> ProgramInfo:
    first = syscall.obj_get_info_by_fd(fd, syscall.ProgInfo(), what=what)
    # Second call with arrays sized from the first: map ids and, if asked, instructions.
    info = syscall.ProgInfo()
    map_ids = (ctypes.c_uint32 * max(first.nr_map_ids, 1))()
    info.nr_map_ids = first.nr_map_ids
    info.map_ids = ctypes.addressof(map_ids)
    insns = ctypes.create_string_buffer(max(first.xlated_prog_len, 1))
    if xlated:
        info.xlated_prog_len = first.xlated_prog_len
        info.xlated_prog_insns = ctypes.addressof(insns)
    syscall.obj_get_info_by_fd(fd, info, what=what)
    return ProgramInfo(
        id=info.id,
        type=info.type,
        name=info.name.decode(errors="replace"),
        tag=bytes(info.tag).hex(),
        map_ids=list(map_ids[: first.nr_map_ids]),
        btf_id=info.btf_id,
        xlated_insns=insns.raw[: first.xlated_prog_len] if xlated else b"",
        run_time_ns=info.run_time_ns,
        run_cnt=info.run_cnt,
        verified_insns=info.verified_insns,
        load_time_ns=info.load_time,
        gpl_compatible=bool(info.gpl_compatible & 1),
        attach_btf_id=info.attach_btf_id,
        nr_func_info=info.nr_func_info,
        nr_line_info=info.nr_line_info,
    )
