"""BPF objects from clang: open, adjust, load, run, close — each effect seen through the kernel."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pylibbpf as bpf
from pylibbpf.loader import BpfObject, internal_map_name
from pylibbpf.syscall.system import kernel_version

PACKET = bytes(64)


@pytest.fixture(scope="module")
def loader_path(bpf_object: Callable[[str], Path]) -> Path:
    return bpf_object("loader")


@pytest.fixture
def loader(loader_path: Path, pin_dir: Path) -> Iterator[BpfObject]:
    with BpfObject.open(loader_path, pin_root_path=str(pin_dir)) as obj:
        yield obj


# --------------------------------------------------------------------------- pure (open)


def test_open_needs_no_privileges_and_describes_the_object(loader_path: Path) -> None:
    obj = BpfObject.open(loader_path)
    assert obj.name == "loader"
    assert list(obj.programs)[:3] == ["xdp_compute", "tail_target", "tail_entry"]
    compute = obj.programs["xdp_compute"]
    assert compute.type == bpf.ProgType.XDP and compute.section == "xdp"
    assert compute.expected_attach_type == bpf.AttachType.XDP
    assert {".rodata", ".data", ".bss", ".data.custom", ".rodata.custom", ".kconfig"} <= set(
        obj.maps
    )
    assert obj.maps["results"].max_entries == 16
    assert obj.variables["data_seed"].value == 100
    assert obj.variables["data_cfg"].value.mult == 3
    assert obj.variables["greeting"].value == b"hello"
    assert obj.maps[".rodata"].name == "loader.rodata"
    assert internal_map_name("a_very_long_object", ".rodata") == "a_very_l.rodata"
    assert internal_map_name("x", ".data.custom") == ".data.custom"


def test_bad_objects_raise_object_error(bpf_object: Callable[[str], Path], tmp_path: Path) -> None:
    with pytest.raises(bpf.ObjectError, match="extern 'mystery_function' is neither"):
        BpfObject.open(bpf_object("unknown_extern"))
    with pytest.raises(bpf.ObjectError, match="cannot read BPF object"):
        BpfObject.open(tmp_path / "missing.o")
    host = tmp_path / "host.o"
    source = tmp_path / "host.c"
    source.write_text("int f(void) { return 1; }\n")
    subprocess.run(["gcc", "-c", str(source), "-o", str(host)], check=True)
    with pytest.raises(bpf.ObjectError, match="host: ELF machine is EM_X86_64, not BPF"):
        BpfObject.open(host)
    with pytest.raises(bpf.ObjectError, match="not a valid ELF file"):
        BpfObject.open(b"\x7fELF" + b"\0" * 20)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_mutated_objects_raise_only_object_error(loader_path: Path, data: st.DataObject) -> None:
    blob = bytearray(loader_path.read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    with contextlib.suppress(bpf.ObjectError):
        BpfObject.open(bytes(blob))


# --------------------------------------------------------------------------- kernel


pytestmark_root = pytest.mark.root


@pytestmark_root
def test_subprograms_and_global_data(loader: BpfObject) -> None:
    loader.variables["data_seed"].value = 200  # before load: edits the initial image
    loader.load()
    compute = loader.programs["xdp_compute"]
    assert compute.test_run(PACKET).retval == bpf.XdpAction.PASS
    # static_add(200, 11) + rodata_add 7 + global_mul(5) 15 + bpf_loop sum 45
    assert loader.maps["results"][1] == 200 + 11 + 7 + 15 + 45
    assert loader.variables["bss_counter"].value == 1
    loader.variables["data_seed"].value = 300  # after load: writes the live map memory
    compute.test_run(PACKET)
    assert loader.maps["results"][1] == 300 + 11 + 7 + 15 + 45
    assert loader.variables["bss_counter"].value == 2
    info = loader.maps[".bss"].info()
    assert info.name == "loader.bss" and info.flags & bpf.MapFlags.MMAPABLE


@pytestmark_root
def test_rodata_specialises_the_program(loader_path: Path, pin_dir: Path) -> None:
    with BpfObject.open(loader_path, pin_root_path=str(pin_dir)) as obj:
        obj.variables["rodata_add"].value = 1000
        obj.variables["greeting"].value = b"xyz"  # program returns DROP unless it says 'h...'
        obj.load()
        assert obj.programs["xdp_compute"].test_run(PACKET).retval == bpf.XdpAction.DROP
        assert obj.maps["results"][1] == 100 + 11 + 1000 + 15 + 45
        with pytest.raises(bpf.BpfError, match="'rodata_add' is in .rodata, which is read-only"):
            obj.variables["rodata_add"].value = 1
        with pytest.raises(bpf.BpfError, match="frozen"):
            obj.maps[".rodata"][0] = bytes(4)


@pytestmark_root
def test_tail_call_through_prog_array_with_initial_values(loader: BpfObject) -> None:
    loader.load()
    assert loader.programs["tail_entry"].test_run(PACKET).retval == bpf.XdpAction.DROP
    target_id = loader.programs["tail_target"].info().id
    assert loader.maps["jump_table"][1] == target_id  # read back as the program's id
    del loader.maps["jump_table"][1]
    assert loader.programs["tail_entry"].test_run(PACKET).retval == bpf.XdpAction.PASS


@pytestmark_root
def test_map_in_map_with_initial_values(loader: BpfObject) -> None:
    loader.load()
    via_outer = loader.programs["via_outer"]
    assert loader.maps["outer"][1] == loader.maps["inner_b"].info().id
    loader.maps["inner_b"][0] = bpf.XdpAction.DROP
    assert via_outer.test_run(PACKET).retval == bpf.XdpAction.DROP
    loader.maps["outer"][1] = loader.maps["inner_a"]  # swap the inner map from Python
    loader.maps["inner_a"][0] = bpf.XdpAction.TX
    assert via_outer.test_run(PACKET).retval == bpf.XdpAction.TX


@pytestmark_root
def test_kconfig_and_ksym_externs(loader: BpfObject) -> None:
    loader.load()
    loader.programs["read_externs"].test_run(PACKET)
    seen = {
        name: loader.variables[name].value for name in loader.variables if name.startswith("seen_")
    }
    assert seen["seen_version"] == kernel_version()
    config = {}
    import gzip

    with contextlib.suppress(OSError), gzip.open("/proc/config.gz", "rt") as f:
        config = dict(line.strip().split("=", 1) for line in f if line.startswith("CONFIG_"))
    if config:
        assert seen["seen_hz"] == int(config["CONFIG_HZ"])
        assert seen["seen_bpf_syscall"] == {"y": 1, "m": 2}[config["CONFIG_BPF_SYSCALL"]]
    assert seen["seen_missing"] == 0  # __weak and unset
    with open("/proc/kallsyms") as f:
        address = next(
            int(line.split()[0], 16) for line in f if line.split()[2] == "__x64_sys_getppid"
        )
    assert seen["seen_address"] == address
    assert seen["seen_weak_address"] == 0
    assert loader.variables["CONFIG_HZ"].value == seen["seen_hz"]


@pytestmark_root
def test_kconfig_overrides(loader_path: Path, pin_dir: Path) -> None:
    with BpfObject.open(
        loader_path, pin_root_path=str(pin_dir), kconfig={"CONFIG_HZ": "1234"}
    ) as obj:
        obj.load()
        obj.programs["read_externs"].test_run(PACKET)
        assert obj.variables["seen_hz"].value == 1234


@pytestmark_root
def test_pin_by_name_is_reused_across_objects(loader_path: Path, pin_dir: Path) -> None:
    with BpfObject.open(loader_path, pin_root_path=str(pin_dir)) as first:
        first.load()
        assert (pin_dir / "shared_counts").exists()
        first.programs["count_shared"].test_run(PACKET, repeat=3)
        with BpfObject.open(loader_path, pin_root_path=str(pin_dir)) as second:
            second.load()
            assert second.maps["shared_counts"].info().id == first.maps["shared_counts"].info().id
            second.programs["count_shared"].test_run(PACKET, repeat=2)
            assert first.maps["shared_counts"][0] == 5


@pytestmark_root
def test_incompatible_pin_is_a_clear_error(loader_path: Path, pin_dir: Path) -> None:
    other = bpf.Map.create(bpf.MapType.ARRAY, 4, 4, 8, name="shared_counts")
    other.pin(pin_dir / "shared_counts")
    other.close()
    with BpfObject.open(loader_path, pin_root_path=str(pin_dir)) as obj:
        with pytest.raises(bpf.ObjectError, match="'shared_counts'.*incompatible.*type 2 != 1"):
            obj.load()
        assert not any(m.created and not m.closed for m in obj.maps.values())


@pytestmark_root
def test_typed_map_values_from_btf(loader_path: Path, pin_dir: Path) -> None:
    with BpfObject.open(loader_path, pin_root_path=str(pin_dir)) as obj:
        results = obj.maps["results"]
        for name, program in obj.programs.items():
            # tail_target fills jump_table's slot: it must load too (libbpf's rule)
            program.autoload = name in ("xdp_compute", "tail_target")
        results.max_entries = 4
        obj.load()
        assert not obj.programs["tail_entry"].loaded  # autoload=False: not loaded
        assert results.info().max_entries == 4
        obj.programs["xdp_compute"].test_run(PACKET)
        value = results[1]
        assert isinstance(value, int) and value > 0  # __u64 value from BTF: an int
        cfg = obj.variables["data_cfg"].value
        assert isinstance(cfg, ctypes.Structure) and bytes(cfg.tag)[:3] == b"abc"


@pytestmark_root
def test_verifier_failure_names_the_source_line(bpf_object: Callable[[str], Path]) -> None:
    with BpfObject.open(bpf_object("verifier_fail")) as obj, pytest.raises(bpf.LoadError) as exc:
        obj.load()
    error = exc.value
    assert error.program == "unchecked" and error.errno == errno.EACCES
    message = str(error)
    assert "verifier_fail: program 'unchecked' (XDP)" in message
    assert "invalid mem access 'map_value_or_null'" in message
    assert "verifier_fail.bpf.c" in message and "return *value == 42" in message


@pytestmark_root
def test_close_releases_everything(loader_path: Path, pin_dir: Path) -> None:
    obj = BpfObject.open(loader_path, pin_root_path=str(pin_dir))
    obj.load()
    ids = [m.info().id for m in obj.maps.values() if m.name != "shared_counts"]
    obj.close()
    assert all(m.closed for m in obj.maps.values())
    assert all(not p.loaded for p in obj.programs.values())
    # The kernel frees maps after an RCU grace period: wait for the ids to go away.
    deadline = time.monotonic() + 5
    while set(bpf.syscall.iterate_ids(bpf.syscall.map_get_next_id)) & set(ids):
        assert time.monotonic() < deadline, "maps still exist after close()"
        time.sleep(0.05)
    os.unlink(pin_dir / "shared_counts")


@pytest.mark.root
def test_kfunc_from_vmlinux_or_a_module(bpf_object: Callable[[str], Path]) -> None:
    """bpf_xdp_ct_lookup: built into this host's kernel, in nf_conntrack.ko on Debian's;
    a module kfunc is called through fd_array (insn.off names the module's BTF)."""
    from pylibbpf.btf import Btf, Kind

    in_vmlinux = bool(Btf.load_vmlinux().find_all("bpf_xdp_ct_lookup", Kind.FUNC))
    if not in_vmlinux and "nf_conntrack" not in Btf.module_names():
        subprocess.run(["modprobe", "nf_conntrack"], capture_output=True)
        if "nf_conntrack" not in Btf.module_names():
            pytest.skip("bpf_xdp_ct_lookup is neither in vmlinux nor in a loadable module")
    with BpfObject.open(bpf_object("kfunc_ct")) as obj:
        obj.load()
        assert bool(obj._ksyms.fd_array) == (not in_vmlinux)  # module BTF in fd_array
        assert obj.programs["ct_lookup"].test_run(bytes(64)).retval == 2  # XDP_PASS
        assert obj.variables["lookup_error"].value == -errno.ENOENT  # the kfunc ran
        assert obj.variables["found"].value == 0


@pytest.mark.root
def test_inner_maps_with_special_fields(bpf_object: Callable[[str], Path]) -> None:
    """The inner-map template carries BTF, so an inner map holding a spin lock is accepted
    as a value of the outer map (found by the selftests conformance run)."""
    with BpfObject.open(bpf_object("inner_spin_lock")) as obj:
        try:
            obj.load()
        except bpf.NotSupportedError as error:  # 6.1: ENOTSUPP from MAP_CREATE, as libbpf
            pytest.skip(f"this kernel refuses inner maps holding a bpf_spin_lock: {error}")
        program = obj.programs["bump"]
        assert program.test_run(bytes(64), repeat=5).retval == 2  # XDP_PASS
        count = bytes(obj.maps["inner_a"].lookup(0))[8:16]
        assert int.from_bytes(count, "little") == 5
