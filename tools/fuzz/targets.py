"""What one input is run through, and the oracle.

An object input is opened, then each privilege-free consumer runs on what ``open()``
gave: every global variable read and written back, CO-RE inspection against the host's
vmlinux BTF, skeleton generation (compiled, never executed, and encoded as the CLI
writes it), the object's BTF through the public ``Btf`` API, ``dump_c`` and ctypes, and
the encoder pipeline ``load()`` runs before uploading BTF. A raw BTF input goes through
``Btf`` directly. Each step is independent: a step that fails with a pylibbpf error
does not stop the next one.

The oracle: a step succeeds or raises an instance of ``pylibbpf.errors.BpfError``.
Anything else is a defect; so is an encoder output that does not parse back to the
same types (checked with ``OracleError``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pylibbpf
from pylibbpf.btf import Btf, Kind
from pylibbpf.btf.encode import KernelBtfSupport, encode
from pylibbpf.errors import BpfError

PACKAGE_DIR = os.path.dirname(pylibbpf.__file__)
_NO_SUPPORT = KernelBtfSupport(False, False, False, False, False, False, False)
# Per-type API calls on at most this many types (the rest are sampled): keeps a BTF
# with thousands of appended types from turning one input into minutes.
_TYPE_BUDGET = 400


class OracleError(AssertionError):
    """A pylibbpf result that is wrong without raising (an encoder round trip, a
    generated skeleton that does not compile), attributed to the function that made it."""

    def __init__(self, message: str, frame: str, exc_type: str = "OracleError") -> None:
        super().__init__(message)
        self.frame = frame
        self.exc_type = exc_type


class InputTimeout(BaseException):
    """The input used more CPU time than allowed (raised from a signal handler)."""


@dataclass
class Defect:
    step: str
    kind: str  # exception, memory, recursion, oracle, timeout, hang, signal
    exc_type: str
    frame: str  # the innermost pylibbpf frame, "btf/parse.py:sizeof"
    message: str
    trace: str

    @property
    def signature(self) -> str:
        return f"{self.kind}:{self.exc_type}@{self.frame}"


@dataclass
class Result:
    steps: dict[str, str] = field(default_factory=dict)  # step -> ok / error / defect
    cpu: dict[str, float] = field(default_factory=dict)  # step -> CPU seconds
    defects: list[Defect] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        if self.defects:
            return "defect"
        return "error" if "error" in self.steps.values() else "ok"


def innermost_frame(tb: Any) -> str:
    """``btf/parse.py:sizeof`` for the deepest frame inside pylibbpf (or the deepest)."""
    frames = traceback.extract_tb(tb)
    ours = [f for f in frames if f.filename.startswith(PACKAGE_DIR + os.sep)]
    chosen = ours[-1] if ours else (frames[-1] if frames else None)
    if chosen is None:
        return "?"
    name = (
        os.path.relpath(chosen.filename, PACKAGE_DIR) if ours else os.path.basename(chosen.filename)
    )
    return f"{name}:{chosen.name}"


def classify(error: BaseException) -> str:
    if isinstance(error, MemoryError):
        return "memory"
    if isinstance(error, RecursionError):
        return "recursion"
    if isinstance(error, OracleError):
        return "oracle"
    if isinstance(error, InputTimeout):
        return "timeout"
    return "exception"


class Runner:
    """Runs inputs; holds what is shared across inputs (the host's vmlinux BTF)."""

    def __init__(self, vmlinux: Btf | None) -> None:
        self.vmlinux = vmlinux
        from pylibbpf.loader import BpfObject, inspect_core
        from pylibbpf.loader.externs import kconfig_values
        from pylibbpf.skelgen import SkeletonOptions, generate

        _import_everything()
        # What load() would write into .kconfig: the host's values, read once.
        try:
            self._kconfig: dict[str, str] = kconfig_values()
        except BpfError:
            self._kconfig = {}
        self._open = BpfObject.open
        self._inspect_core = inspect_core
        self._generate = generate
        self._options = SkeletonOptions(class_name=None, command="fuzz")

    def step(self, result: Result, name: str, action: Callable[[], Any]) -> Any:
        started = time.process_time()
        try:
            return self._step(result, name, action)
        finally:
            result.cpu[name] = time.process_time() - started

    def _step(self, result: Result, name: str, action: Callable[[], Any]) -> Any:
        try:
            value = action()
        except BpfError:
            result.steps[name] = "error"
            return None
        except InputTimeout as error:
            result.steps[name] = "defect"
            result.defects.append(_defect(name, error))
            raise
        except (Exception, RecursionError, MemoryError) as error:  # the oracle's "anything else"
            result.steps[name] = "defect"
            result.defects.append(_defect(name, error))
            return None
        result.steps[name] = "ok"
        return value

    # ----------------------------------------------------------------- inputs

    def run(self, kind: str, data: bytes) -> Result:
        result = Result()
        try:
            if kind == "object":
                self.run_object(result, data)
            else:
                self.run_btf(result, data)
        except InputTimeout:
            pass  # recorded by step()
        return result

    def run_object(self, result: Result, data: bytes) -> None:
        obj = self.step(result, "open", lambda: self._open(data, name="fuzz"))
        if obj is None:
            return
        self.step(result, "variables", lambda: _variables(obj))
        self.step(result, "map_types", lambda: _map_types(obj))
        self.step(result, "kconfig", lambda: _kconfig(obj.spec, self._kconfig))
        if self.vmlinux is not None:
            vmlinux = self.vmlinux
            self.step(result, "inspect_core", lambda: self._inspect_core(data, vmlinux))
        self.step(result, "skeleton", lambda: self._skeleton(obj, data))
        btf = obj.spec.btf
        if btf is not None:
            self._btf_steps(result, btf)
            self.step(result, "encode_for_load", lambda: _encode_for_load(obj.spec, btf))

    def run_btf(self, result: Result, data: bytes) -> None:
        btf = self.step(result, "btf_parse", lambda: Btf(data, name="fuzz"))
        if btf is not None:
            self._btf_steps(result, btf)

    def _btf_steps(self, result: Result, btf: Btf) -> None:
        self.step(result, "btf_api", lambda: _btf_api(btf))
        self.step(result, "ctypes", lambda: _ctypes(btf))
        self.step(result, "dump_c", btf.dump_c)
        self.step(result, "btf_round_trip", lambda: _round_trip(btf))

    def _skeleton(self, obj: Any, data: bytes) -> None:
        source = self._generate(obj, data, self._options)
        where = "skelgen.py:generate"
        try:
            source.encode("utf-8")  # what writing it to a file does
        except UnicodeEncodeError as error:
            raise OracleError(
                f"the skeleton cannot be written: {error}", where, "UnicodeEncodeError"
            ) from None
        try:
            compile(source, "fuzz_skel.py", "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as error:
            raise OracleError(
                f"the skeleton does not compile: {error}", where, "SyntaxError"
            ) from None


def _import_everything() -> None:
    """Import pylibbpf's modules before the workers fork: each worker then runs the code
    the run started with, even if the files change meanwhile (and imports only once)."""
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(pylibbpf.__path__, "pylibbpf."):
        if module.name.endswith("__main__"):
            continue
        with contextlib.suppress(ImportError):
            importlib.import_module(module.name)


def _defect(step: str, error: BaseException) -> Defect:
    # Free what the failing frames hold first (after a MemoryError, formatting the
    # traceback needs memory the huge locals still occupy).
    traceback.clear_frames(error.__traceback__)
    trace = "".join(traceback.format_exception(error))
    if len(trace) > 6000:  # a RecursionError's thousand frames: keep both ends
        trace = trace[:2500] + "\n...\n" + trace[-3000:]
    if isinstance(error, OracleError):
        return Defect(step, "oracle", error.exc_type, error.frame, str(error)[:500], trace)
    return Defect(
        step,
        classify(error),
        type(error).__name__,
        innermost_frame(error.__traceback__),
        str(error)[:500],
        trace,
    )


# --------------------------------------------------------------------------- steps


def _soft(action: Callable[..., Any], *args: Any) -> Any:
    """Call; a pylibbpf error is a fine answer (the oracle sees anything else)."""
    try:
        return action(*args)
    except BpfError:
        return None


def _variables(obj: Any) -> None:
    for variable in list(obj.variables.values()):
        value = _soft(lambda v=variable: v.value)
        _soft(lambda v=variable: v.raw)
        if value is not None:
            _soft(setattr, variable, "value", value)


def _map_types(obj: Any) -> None:
    """The ctypes types ``open()`` gave maps' keys and values: build an instance."""
    for map_obj in obj.maps.values():
        for role in ("key_type", "value_type"):
            kind = getattr(map_obj, role, None)
            if (
                isinstance(kind, type)
                and issubclass(
                    kind, ctypes._SimpleCData | ctypes.Structure | ctypes.Union | ctypes.Array
                )
                and ctypes.sizeof(kind) <= 1 << 16
            ):
                bytes(kind())


def _sample(btf: Btf) -> Iterator[int]:
    ids = range(btf.first_id, btf.type_count)
    if len(ids) <= _TYPE_BUDGET:
        yield from ids
        return
    step = len(ids) / _TYPE_BUDGET
    for index in range(_TYPE_BUDGET):
        yield ids[int(index * step)]


def _btf_api(btf: Btf) -> None:
    for type_id in range(btf.first_id, btf.type_count):
        btf.kind_of(type_id)
    for type_id in _sample(btf):
        t = _soft(btf.__getitem__, type_id)
        if t is None:
            continue
        _soft(btf.resolve, type_id)
        _soft(btf.sizeof, type_id)
        _soft(btf.alignof, type_id)
        _soft(btf.check_graph, type_id)
        if t.kind in (Kind.STRUCT, Kind.UNION):
            for member in t.members[:4]:
                if member.name:
                    _soft(btf.member_path, type_id, member.name)
            _soft(btf.member_path, type_id, "no_such_member")
        if t.name:
            _soft(btf.find_all, t.name, t.kind)
            _soft(btf.names_with_prefix, t.name[:2])
    for type_id in list(_sample(btf))[:20]:
        _soft(lambda i=type_id: list(btf.walk(i)))
    _soft(btf.string_at, 0)
    _soft(btf.string_at, btf.strings_size - 1)
    _soft(btf.string_at, btf.strings_size + 1)
    _soft(btf.check_graph)


def _ctypes(btf: Btf) -> None:
    for type_id in _sample(btf):
        kind = btf.kind_of(type_id)
        if kind in (Kind.STRUCT, Kind.UNION, Kind.ARRAY, Kind.TYPEDEF, Kind.INT, Kind.DATASEC):
            made = _soft(btf.ctype, type_id)
            if made is None or ctypes.sizeof(made) > 1 << 16:
                continue
            try:  # what ctype() made must be usable: instances, bytes, fields
                instance = made()
                bytes(instance)
                for name, *_ in getattr(made, "_fields_", ())[:8]:
                    getattr(instance, name)
            except (TypeError, ValueError, AttributeError) as error:
                raise OracleError(
                    f"the ctypes type of type id {type_id} is unusable: {error}",
                    "btf/ctype.py:ctype",
                    type(error).__name__,
                ) from None


def _round_trip(btf: Btf) -> None:
    """Re-encoding parsed types must parse back to the same types."""
    if btf.base is not None:
        return
    types = list(btf)
    raw = encode(types, strings_base=btf.strings, layout=btf.layout)
    try:
        again = Btf(raw, name="re-encoded")
    except BpfError as error:
        raise OracleError(
            f"encoder output does not parse: {error}", "btf/encode.py:encode"
        ) from None
    if list(again) != types:
        first = next(i for i, (a, b) in enumerate(zip(again, types, strict=False)) if a != b)
        raise OracleError(
            f"round trip changed type {first + 1}: {types[first]!r}", "btf/encode.py:encode"
        )


def _kconfig(spec: Any, values: dict[str, str]) -> None:
    """The ``.kconfig`` image ``load()`` fills, from the host's configuration."""
    from pylibbpf.loader.externs import kconfig_layout
    from pylibbpf.spec.kconfig import fill_kconfig

    layout, size = kconfig_layout(spec)
    if layout and spec.btf is not None:
        externs = [e for e in spec.externs.values() if e.section == ".kconfig"]
        fill_kconfig(spec.name, spec.btf, externs, layout, bytearray(size), values)


def _encode_for_load(spec: Any, btf: Btf) -> None:
    """What ``load()`` does to an object's BTF before uploading it (without the upload)."""
    from pylibbpf.loader.btf import btf_for_kernel
    from pylibbpf.loader.externs import kconfig_layout

    layout, size = kconfig_layout(spec)
    for support in (KernelBtfSupport(), _NO_SUPPORT):
        raw = btf_for_kernel(spec, layout, size, support)
        try:
            Btf(raw, name="for load")
        except BpfError as error:
            raise OracleError(
                f"encoder output does not parse: {error}", "btf/encode.py:encode"
            ) from None
