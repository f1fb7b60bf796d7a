"""What ``import pylibbpf as bpf; bpf.BpfObject`` and a first open+load leave out, and
the plain-int side of the uapi enums (:mod:`pylibbpf.uapi_values`) against the enums."""

from __future__ import annotations

import enum
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pylibbpf import uapi, uapi_values
from pylibbpf.spec import insn, opcodes

ROOT = Path(__file__).resolve().parent.parent

ENUMS = ["Cmd", "MapType", "ProgType", "AttachType", "UpdateFlags", "MapFlags", "ProgFlags"]

# Modules the load path does without (the public enums, the opcode enums, the attach-side
# attr layouts, the .kconfig layout, contextlib, importlib and the warnings it imports):
# imported by the code that needs them.
LEFT_OUT = [
    "pylibbpf.uapi",
    "pylibbpf.uapi_extra",
    "pylibbpf.syscall.link_attrs",
    "pylibbpf.spec.opcodes",
    "pylibbpf.spec.kconfig",
    "contextlib",
    "importlib",
    "warnings",
]


# What only some objects need at load (CO-RE relocations and their kinds, typed ksyms, a
# type's layout) or only element access needs (the buffer sets, the direct entry points),
# batch operations, attaching: left out of the import.
NOT_IMPORTED = [
    "pylibbpf.spec.core",
    "pylibbpf.spec.core_types",
    "pylibbpf.btf.graph",
    "pylibbpf.syscall.direct",
    "pylibbpf.syscall.elem",
    "pylibbpf.map_batch",
    "pylibbpf.gcpause",
    "pylibbpf.links",
    "pylibbpf.links.methods",
    "pylibbpf.btf.relo_kind",
]


def _fresh(script: str, **env: str) -> str:
    """What a fresh interpreter running ``script`` (this tree first on its path) prints."""
    environ = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    done = subprocess.run(
        [sys.executable, "-c", script], env=environ, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _loaded_after(code: str, left_out: list[str] = LEFT_OUT) -> list[str]:
    """Which of ``left_out`` a fresh interpreter has imported after running ``code``."""
    script = f"import sys\n{code}\nprint(' '.join(m for m in {left_out!r} if m in sys.modules))"
    return _fresh(script).split()


def test_bpf_object_import_leaves_out_the_enums_and_the_attach_side() -> None:
    assert _loaded_after("import pylibbpf as bpf; bpf.BpfObject") == []


def test_bpf_object_import_leaves_out_what_some_loads_need() -> None:
    assert _loaded_after("import pylibbpf as bpf; bpf.BpfObject", LEFT_OUT + NOT_IMPORTED) == []


@pytest.mark.root  # loads into the kernel
def test_opening_and_loading_a_core_object_leaves_them_out_too(
    bpf_object: Callable[[str], Path],
) -> None:
    """The kernel loaded the object's program (it has an id) and the load path never
    built the enums: they are imported by what shows names, not by what loads. Nor did
    it compile a record's ``__init__``: they come compiled in ``record_inits``."""
    path = bpf_object("core_reads")
    code = (
        "import pylibbpf as bpf\n"
        f"obj = bpf.BpfObject.open({str(path)!r})\n"
        "obj.load()\n"
        "ids = [p.info().id for p in obj.programs.values()]\n"
        "assert ids and all(ids), ids\n"
        "obj.close()\n"
        "from pylibbpf import record_inits, records\n"
        "assert set(records._TEMPLATES) == set(record_inits.TEMPLATES), 'compiled an __init__'"
    )
    assert _loaded_after(code) == []


def test_a_public_enum_is_there_on_first_use() -> None:
    code = "import pylibbpf as bpf\nassert repr(bpf.MapType.HASH) == '<MapType.HASH: 1>'"
    assert _loaded_after(code) == ["pylibbpf.uapi"]


@pytest.mark.parametrize("name", ENUMS)
def test_the_plain_ints_say_what_the_enums_say(name: str) -> None:
    members: type[enum.IntEnum] = getattr(uapi, name)
    numbers = getattr(uapi_values, name)
    plain = {k: v for k, v in vars(numbers).items() if k.isupper()}
    assert plain == {k: int(v) for k, v in members.__members__.items()}
    assert all(type(v) is int for v in plain.values())
    for member in members:
        assert uapi_values.value_name(numbers, member.value) == member.name
    assert uapi_values.value_name(numbers, 1 << 40) is None


def test_map_type_names_for_messages() -> None:
    """One ``map_type_name`` serves ``maps`` and ``map_batch``: the enum's name, or the
    number for a type this pylibbpf does not know."""
    assert uapi_values.map_type_name(uapi_values.MapType.LRU_PERCPU_HASH) == "LRU_PERCPU_HASH"
    assert uapi_values.map_type_name(int(uapi.MapType.RINGBUF)) == "RINGBUF"
    assert uapi_values.map_type_name(999) == "type 999"


def test_the_constants_and_map_type_sets_are_the_same() -> None:
    for name in ("OBJ_NAME_LEN", "LOG_BUF_SIZE_MAX", "ENOTSUPP"):
        assert getattr(uapi_values, name) == getattr(uapi, name)
    for name in ("PERCPU_MAP_TYPES", "FD_VALUE_MAP_TYPES", "KEYLESS_MAP_TYPES"):
        assert getattr(uapi_values, name) == getattr(uapi, name)
        assert uapi.MapType.PERCPU_HASH in uapi_values.PERCPU_MAP_TYPES  # members find ints


def test_the_plain_opcode_parts_are_the_enums_values() -> None:
    """``insn.BPF_LDX`` is ``Class.LDX``, ``insn.BPF_CALL`` is ``Jmp.CALL``…, and
    ``insn.Alu`` is the enum of :mod:`pylibbpf.spec.opcodes`."""
    enums = [opcodes.Class, opcodes.Size, opcodes.Mode, opcodes.Alu, opcodes.Jmp]
    plain = {k: v for k, v in vars(insn).items() if k.startswith("BPF_")}
    assert plain
    for name, value in plain.items():
        found = [e[name[4:]] for e in enums if name[4:] in e.__members__]
        assert len(found) == 1 and found[0] == value, name
    assert insn.Alu is opcodes.Alu and insn.Jmp.CALL == 0x80
    built = insn.assemble(insn.call(1), insn.return_imm(0))
    assert built[0] == (opcodes.Class.JMP | opcodes.Jmp.CALL)  # the opcode byte of the call


@pytest.mark.root  # loads into the kernel
def test_loaded_programs_and_maps_still_show_enum_members(
    bpf_object: Callable[[str], Path],
) -> None:
    """The load path keeps plain numbers; ``type`` and ``expected_attach_type`` are the
    enum members users saw before (reprs, ``.name``)."""
    import pylibbpf as bpf

    with bpf.BpfObject.open(bpf_object("core_reads")) as obj:
        obj.load()
        program = next(iter(obj.programs.values()))
        assert program.info().id  # the kernel holds it
        assert type(program.type) is uapi.ProgType and program.type.name == "TRACEPOINT"
        for map_obj in obj.maps.values():
            assert isinstance(map_obj.type, uapi.MapType), map_obj
            assert map_obj.info().type == map_obj.type  # what the kernel reports
    made = bpf.Map.create(1, 4, 4, 8)
    try:
        assert made.type is uapi.MapType.HASH
    finally:
        made.close()


def test_a_command_builds_its_parser_without_shutil() -> None:
    """argparse's own formatter imports shutil (and with it bz2 and lzma) for the terminal
    width; the CLI's asks ``os``, and the help it prints still fits ``COLUMNS``."""
    script = (
        "import sys\n"
        "from pylibbpf.cli import main\n"
        "try:\n"
        "    main(['prog', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('shutil' in sys.modules)\n"
    )
    lines = _fresh(script, COLUMNS="50").splitlines()
    assert lines[-1] == "False"
    assert lines[0].startswith("usage: pylibbpf prog")
    assert max(len(line) for line in lines[:-1]) <= 50


def test_reading_the_kernels_btf_leaves_out_bpf_and_ctypes() -> None:
    """``btf dump`` reads the kernel's BTF from sysfs: it does not import bpf(2), its attr
    layouts or ctypes (the syscall package hands those on when first asked)."""
    script = (
        "import sys\n"
        "from pylibbpf.btf import Btf, Kind\n"
        "btf = Btf.load_vmlinux()\n"
        "assert btf.find_id('task_struct', Kind.STRUCT), 'no task_struct'\n"
        "print(' '.join(sorted(m for m in sys.modules if m == 'ctypes' or m in (\n"
        "    'pylibbpf.syscall.bpf', 'pylibbpf.syscall.attrs', 'pylibbpf.syscall.elem'))))"
    )
    assert _fresh(script).split() == []


def test_the_syscall_package_hands_on_every_name_it_exports() -> None:
    """Each name in ``pylibbpf.syscall.__all__`` is its home module's object, found on
    first use; a name it does not export is an AttributeError."""
    from pylibbpf import syscall
    from pylibbpf.syscall import attrs, bpf, elem, link_attrs

    homes = (attrs, bpf, elem, link_attrs)
    for name in syscall.__all__:
        value = getattr(syscall, name)
        assert any(getattr(home, name, None) is value for home in homes), name
    with pytest.raises(AttributeError, match="no_such_name"):
        syscall.no_such_name  # noqa: B018


def test_the_stand_ins_name_every_attribute_of_their_mixin() -> None:
    """``Map``'s batch half and ``Program``'s attach methods come in on first use through
    ``records.on_demand``, which must know every attribute the mixin defines."""
    from pylibbpf import maps, program
    from pylibbpf.links.methods import AttachMethods
    from pylibbpf.map_batch import MapBatches
    from pylibbpf.records import CLASS_METADATA

    for names, mixin in (
        (maps.BATCH_ATTRIBUTES, MapBatches),
        (program.ATTACH_METHODS, AttachMethods),
    ):
        assert sorted(names) == sorted(set(vars(mixin)) - CLASS_METADATA)


def test_a_stand_in_brings_its_mixin_on_first_use() -> None:
    """In a fresh interpreter: reading one batch attribute (on the class or an instance)
    imports ``map_batch`` and every attribute then is the mixin's own."""
    code = (
        "import sys; from pylibbpf.maps import Map\n"
        "assert 'pylibbpf.map_batch' not in sys.modules\n"
        "from pylibbpf.program import Program\n"
        "assert Map.lookup_batch.__qualname__ == 'MapBatches.lookup_batch'\n"
        "from pylibbpf.map_batch import MapBatches\n"
        "assert all(getattr(Map, n) is getattr(MapBatches, n) for n in ('keys', 'count'))\n"
        "assert Map.__iter__ is MapBatches.__iter__ and Map._no_batch is False\n"
        "assert 'pylibbpf.links.methods' not in sys.modules\n"
        "assert Program.attach_xdp.__module__ == 'pylibbpf.links.methods'\n"
        "from pylibbpf.maps import BatchData; from pylibbpf import BatchData as B\n"
        "assert B is BatchData\n"
    )
    _fresh(code)
