"""Fidelity to libbpf 1.5, one test per cause tools/SELFTESTS.md lists (issue #16): what the
kernel reports after pylibbpf's load — map names (MapInfo), errnos, the instructions it
holds — is what it reports after libbpf's. And ``prepare()`` (libbpf 1.6's
``bpf_object__prepare``): maps in the kernel, programs relocated but not loaded."""

from __future__ import annotations

import errno
import os
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import compile_user_program

import pylibbpf as bpf
from pylibbpf.btf import Kind
from pylibbpf.loader import BpfObject, internal_map_name
from pylibbpf.maps import Map
from pylibbpf.spec.insn import decode
from pylibbpf.syscall import features, kernel_btf, system
from pylibbpf.uapi import LinkType

root = pytest.mark.root

PACKET = bytes(64)


def map_names(program: bpf.Program) -> list[str]:
    """The kernel names of the maps a loaded program holds, in the kernel's order."""
    names = []
    for map_id in program.info().map_ids:
        with Map.from_id(map_id) as held:
            names.append(held.info().name)
    return names


def ld_imm64_values(xlated: bytes) -> list[int]:
    """The 64-bit immediates of a translated program's ``ld_imm64`` instructions."""
    insns = decode(xlated)
    return [
        (insn.imm & 0xFFFFFFFF) | (insns[i + 1].imm & 0xFFFFFFFF) << 32
        for i, insn in enumerate(insns)
        if insn.is_ld_imm64() and i + 1 < len(insns)
    ]


# ------------------------------------------------------------------ internal-map-names


def test_internal_map_names_follow_libbpfs_rule() -> None:
    """libbpf keeps a 7-character slot for the section (so at most 8 characters of the
    object name before .bss/.data/.rodata, 7 before .kconfig); a second dot: none."""
    assert internal_map_name("fidelity_globals", ".bss") == "fidelity.bss"
    assert internal_map_name("fidelity_globals", ".data") == "fidelity.data"
    assert internal_map_name("fidelity_globals", ".rodata") == "fidelity.rodata"
    assert internal_map_name("fidelity_globals", ".kconfig") == "fidelit.kconfig"
    assert internal_map_name("short", ".bss") == "short.bss"
    assert internal_map_name("x", ".data.custom") == ".data.custom"
    assert internal_map_name("x", ".rodata.str1.1") == ".rodata.str1.1"
    assert internal_map_name("x", ".rodata.a_long_section") == ".rodata.a_long_"


@root
def test_kernel_map_names_are_libbpfs(bpf_object: Callable[[str], Path]) -> None:
    with BpfObject.open(bpf_object("fidelity_globals")) as obj:
        obj.load()
        names = {section: obj.maps[section].info().name for section in obj.maps}
        assert names[".bss"] == "fidelity.bss"
        assert names[".data"] == "fidelity.data"
        assert names[".rodata"] == "fidelity.rodata"
        assert names[".kconfig"] == "fidelit.kconfig"
        assert names[".data.custom"] == ".data.custom"
        assert names[".rodata.str1.1"] == ".rodata.str1.1"  # bpf_printk's format


# ------------------------------------------------------------------------- rodata-bind


@root
def test_every_read_only_map_is_bound_to_the_program(bpf_object: Callable[[str], Path]) -> None:
    """libbpf binds .rodata and every .rodata.* map (clang's string constants too) to
    each program it loads: the kernel lists them even for a program that uses no map."""
    with BpfObject.open(bpf_object("fidelity_globals")) as obj:
        obj.load()
        assert map_names(obj.programs["nested"]) == ["fidelity.rodata", ".rodata.str1.1"]
        held = map_names(obj.programs["globals"])  # the maps it uses, then the bound ones
    assert set(held) == {
        "fidelity.bss",
        "fidelity.data",
        "fidelity.rodata",
        ".data.custom",
        ".rodata.str1.1",
        "fidelit.kconfig",
    }
    assert len(held) == 6


# -------------------------------------------------------------------------- no-license


@root
def test_an_object_without_license_loads_as_non_gpl(bpf_object: Callable[[str], Path]) -> None:
    with BpfObject.open(bpf_object("no_license")) as obj:
        assert obj.spec.license == ""
        obj.load()
        program = obj.programs["pass_all"]
        assert program.info().gpl_compatible is False
        assert program.test_run(PACKET).retval == 2  # XDP_PASS
    with BpfObject.open(bpf_object("no_license")) as obj:
        obj.programs["gpl_helper"].autoload = True
        with pytest.raises(bpf.LoadError) as failed:
            obj.load()
    assert failed.value.errno == errno.EINVAL
    assert "GPL" in failed.value.log  # "cannot call GPL-restricted function"


# ------------------------------------------------------------------ errno-prepare, -open


@root
def test_missing_kfunc_is_einval_for_the_whole_object(bpf_object: Callable[[str], Path]) -> None:
    """Externs resolve for the whole object before any program loads (libbpf's
    bpf_object__resolve_externs): the kfunc of a program that is not loaded counts."""
    with BpfObject.open(bpf_object("fidelity_no_kfunc")) as obj:
        assert not obj.programs["uses_kfunc"].autoload
        with pytest.raises(bpf.ObjectError, match="pylibbpf_missing_kfunc") as failed:
            obj.load()
        assert failed.value.errno == errno.EINVAL
        assert not obj.programs["plain"].loaded


@root
def test_missing_strong_kernel_symbol_is_esrch(bpf_object: Callable[[str], Path]) -> None:
    with (
        BpfObject.open(bpf_object("fidelity_no_ksym")) as obj,
        pytest.raises(bpf.ObjectError, match="pylibbpf_missing_symbol") as failed,
    ):
        obj.load()
    assert failed.value.errno == errno.ESRCH


@root
def test_missing_struct_ops_type_is_esrch(bpf_object: Callable[[str], Path]) -> None:
    opened = BpfObject.open(bpf_object("struct_ops_errors"))
    spec = opened.spec
    ops = spec.struct_ops["unknown_struct"]
    spec.struct_ops["unknown_struct"] = type(ops)(
        ops.name, ".struct_ops", ops.type_id, ops.data, ops.functions, ops.link
    )
    with BpfObject(spec) as obj, pytest.raises(bpf.ObjectError, match="opz") as failed:
        obj.load()
    assert failed.value.errno == errno.ESRCH


@root
def test_load_time_refusals_have_libbpfs_errno(bpf_object: Callable[[str], Path]) -> None:
    cases = {
        "replacement": "set_attach_target",  # freplace without the program it replaces
        "unused_ssthresh": "not used by any struct_ops",
    }
    for program, message in cases.items():
        with BpfObject.open(bpf_object("fidelity_loading")) as obj:
            obj.maps["unsized"].max_entries = 4096
            obj.programs[program].autoload = True
            with pytest.raises(bpf.LoadError, match=message) as failed:
                obj.load()
            assert failed.value.errno == errno.EINVAL
            assert obj.closed and all(m.closed for m in obj.maps.values())  # undone


def test_open_refusals_have_libbpfs_errno(bpf_object: Callable[[str], Path]) -> None:
    cases = {
        "fidelity_extern_map": (errno.EOPNOTSUPP, "extern 'shared'"),
        "unknown_extern": (errno.ENOENT, "extern 'mystery_function'"),
        "fidelity_bad_pinning": (errno.EINVAL, "pinning 2 is invalid"),
        "fidelity_legacy_maps": (errno.EOPNOTSUPP, "legacy 'maps' section"),
    }
    for name, (expected, message) in cases.items():
        with pytest.raises(bpf.ObjectError, match=message) as failed:
            BpfObject.open(bpf_object(name))
        assert failed.value.errno == expected, name


# --------------------------------------------------------------------- prog-array-init


@root
def test_prog_array_slot_of_a_program_not_loaded_is_ebadf(
    bpf_object: Callable[[str], Path],
) -> None:
    with BpfObject.open(bpf_object("loader")) as obj:
        obj.programs["tail_target"].autoload = False
        with pytest.raises(bpf.BpfError, match=r"slot \[1\] to program 'tail_target'") as failed:
            obj.load()
        assert failed.value.errno == errno.EBADF
        assert not obj.programs["tail_entry"].loaded  # the load was undone


# ------------------------------------------------------------------- ringbuf-zero-size


@root
def test_unsized_ring_buffer_is_einval_until_sized(bpf_object: Callable[[str], Path]) -> None:
    with BpfObject.open(bpf_object("fidelity_loading")) as obj:
        with pytest.raises(bpf.BpfError, match="unsized.*set max_entries") as failed:
            obj.load()
        assert failed.value.errno == errno.EINVAL
    with BpfObject.open(bpf_object("fidelity_loading")) as obj:
        obj.maps["unsized"].max_entries = 5000  # rounded up to whole pages
        obj.programs["uses_ring"].autoload = True
        obj.load()
        assert obj.maps["unsized"].info().max_entries == 8192
        assert obj.programs["uses_ring"].test_run(PACKET).retval == 0


# ---------------------------------------------------------- ksym-func-value, kfunc-flavour


@root
def test_ksym_exists_on_kfuncs(bpf_object: Callable[[str], Path]) -> None:
    """bpf_ksym_exists(kfunc): the kernel gets the kfunc's BTF id (and writes its address
    in the translated program), or 0 for a weak kfunc it does not have."""
    kfunc_address = system.kallsyms_lookup({"bpf_task_from_pid"}).get("bpf_task_from_pid")
    if kfunc_address is None:
        pytest.skip(f"kernel {os.uname().release} has no bpf_task_from_pid kfunc")
    with BpfObject.open(bpf_object("fidelity_externs")) as obj:
        obj.programs["flavours"].autoload = False
        obj.load()
        program = obj.programs["ksym_exists"]
        assert program.test_run(PACKET).retval == 1  # present: yes; missing: no
        assert kfunc_address in ld_imm64_values(program.info(xlated=True).xlated_insns)


@root
def test_kfunc_flavour_resolves_by_essential_name(bpf_object: Callable[[str], Path]) -> None:
    """bpf_task_acquire___one (the kernel's prototype) is bpf_task_acquire, called; the
    ___two flavour has another prototype and stays unresolved, as with libbpf."""
    if kernel_btf.load_vmlinux().find_id("bpf_task_acquire", Kind.FUNC) is None:
        pytest.skip(f"kernel {os.uname().release} has no task kfuncs (Linux 6.2+)")
    with BpfObject.open(bpf_object("fidelity_externs")) as obj:
        obj.programs["ksym_exists"].autoload = False
        obj.variables["target_pid"].value = os.getpid()
        obj.load()
        assert obj.programs["flavours"].test_run(PACKET).retval == 1 | 2


# ---------------------------------------------------------------------- subprog-order


@root
def test_sub_programs_are_laid_out_depth_first(bpf_object: Callable[[str], Path]) -> None:
    """libbpf appends a callee when it meets the first call to it and relocates it at
    once: nested() calls fa() (which calls fc()) then fb(), so the kernel holds nested,
    fa, fc, fb. Each sub-program is recognised by its constant."""
    with BpfObject.open(bpf_object("fidelity_globals")) as obj:
        obj.programs["globals"].autoload = False
        obj.load()
        program = obj.programs["nested"]
        insns = decode(program.info(xlated=True).xlated_insns)
        assert program.test_run(PACKET).retval == ((64 ^ 0xC1C1) + 0xA1A1) + (64 + 0xB1B1)
    where = {imm: i for i, insn in enumerate(insns) for imm in (insn.imm,)}
    assert where[0xA1A1] < where[0xC1C1] < where[0xB1B1]


# -------------------------------------------------------------------------- exceptions


@root
def test_exception_callback_is_appended(bpf_object: Callable[[str], Path]) -> None:
    """The exception_callback decl tag's function is linked in though nothing calls it;
    bpf_throw(21) then returns what the callback makes of the cookie."""
    if kernel_btf.load_vmlinux().find_id("bpf_throw", Kind.FUNC) is None:
        pytest.skip(f"kernel {os.uname().release} has no BPF exceptions (Linux 6.7+)")
    with BpfObject.open(bpf_object("fidelity_exceptions")) as obj:
        obj.load()
        program = obj.programs["thrower"]
        assert program.info().nr_func_info == 2  # the program and its callback
        assert program.test_run(PACKET).retval == 42


# -------------------------------------------------------------------- usdt-uprobe-multi


@root
def test_usdt_attaches_through_one_uprobe_multi_link(bpf_object: Callable[[str], Path]) -> None:
    """Where the kernel has uprobe.multi links, usdt programs load as uprobe.multi
    programs and one link covers every location (libbpf 1.5); otherwise one uprobe per
    location. Either way the probes fire."""
    probed = compile_user_program("probed")
    process = subprocess.Popen([str(probed), "3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        with BpfObject.open(bpf_object("uprobes")) as obj:
            obj.variables["target_tgid"].value = process.pid
            obj.load()
            multi = features.has_uprobe_multi_link()
            program = obj.programs["on_tick"]
            assert program.expected_attach_type == (
                bpf.AttachType.TRACE_UPROBE_MULTI if multi else None
            )
            with program.attach_usdt(str(probed), "pylibbpf", "tick") as link:
                kind = link.info().type
                process.communicate(b"go\n", timeout=30)
            assert obj.variables["usdt_ticks"].value == 3
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert kind == (LinkType.UPROBE_MULTI if multi else LinkType.PERF_EVENT)


# ----------------------------------------------------------------------------- prepare


@root
def test_prepare_creates_maps_and_relocates_without_loading(
    bpf_object: Callable[[str], Path],
) -> None:
    with BpfObject.open(bpf_object("fidelity_loading")) as obj:
        obj.maps["unsized"].max_entries = 4096
        obj.programs["count"].autoload = True
        obj.prepare()
        assert obj.prepared and not obj.loaded
        bss = obj.maps[".bss"]
        assert bss.info().name == "fidelity.bss"  # in the kernel, by its fd
        program = obj.programs["count"]
        assert not program.loaded
        with pytest.raises(bpf.BpfError) as no_fd:
            program.fd  # noqa: B018
        assert no_fd.value.errno == errno.EBADF
        insns = decode(program.insns)
        loads = [insn for insn in insns if insn.is_ld_imm64()]
        assert [(insn.src, insn.imm) for insn in loads] == [(2, bss.fd)]  # final: its fd
        with pytest.raises(bpf.BpfError) as again:
            obj.prepare()
        assert again.value.errno == errno.EALREADY
        obj.load()
        assert obj.loaded and program.loaded
        held = program.info(xlated=True)
        # The kernel holds those instructions, the map's fd shown as its id.
        expected = [insn.with_(imm=bss.info().id) if insn.is_ld_imm64() else insn for insn in insns]
        assert decode(held.xlated_insns) == expected
        assert program.test_run(PACKET).retval == 2  # XDP_PASS
        assert obj.variables["counted"].value == 1


@root
def test_prepare_lets_the_caller_adjust_before_load(bpf_object: Callable[[str], Path]) -> None:
    """Between prepare() and load(), a program's instructions can be changed."""
    with BpfObject.open(bpf_object("fidelity_globals")) as obj:
        obj.programs["nested"].autoload = False
        obj.prepare()
        program = obj.programs["globals"]
        ret = struct.pack("<BBhi", 0xB7, 0, 0, 7) + struct.pack("<BBhi", 0x95, 0, 0, 0)
        program.insns = ret  # r0 = 7; exit
        program.options.func_info = program.options.line_info = b""
        obj.load()
        assert program.test_run(PACKET).retval == 7
