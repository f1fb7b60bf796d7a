"""Maps, links and the loader against a fake bpf(2) (``tests/fakekernel.py``), through the
``override_syscall`` seam: pylibbpf's own logic — what it asks the kernel for, in which
order, what it keeps and releases — tested without privileges or a kernel. Nothing here
claims kernel behaviour; the kernel tests do that."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from fakekernel import fake_kernel

import pylibbpf as bpf
from pylibbpf.spec.insn import assemble, return_imm
from pylibbpf.uapi import Cmd

PASS = assemble(return_imm(2))


def test_map_create_and_elements_go_through_the_seam() -> None:
    with fake_kernel() as kernel:
        counts = bpf.Map.create(
            bpf.MapType.HASH, 4, 8, 2, name="fake_counts", key_type=int, value_type=int
        )
        (created,) = (o for o in kernel.objects.values() if o.kind == "map")
        assert (created.name, created.key_size, created.value_size) == ("fake_counts", 4, 8)
        counts[1] = 10
        counts[2] = 20
        assert dict(counts.items()) == {1: 10, 2: 20}
        assert created.elements[(1).to_bytes(4, "little")] == (10).to_bytes(8, "little")
        with pytest.raises(bpf.MapFullError, match="map 'fake_counts'.*full"):
            counts[3] = 30
        del counts[1]
        assert 1 not in counts and counts.count() == 1
        counts.freeze()
        with pytest.raises(bpf.BpfError, match="frozen"):
            counts[2] = 21
        assert kernel.open_objects() == [created]
        counts.close()
        assert kernel.open_objects() == []
        with pytest.raises(bpf.BpfError, match="map 'fake_counts' is closed"):
            counts[2]


def test_pin_and_unpin_behave_alike_for_maps_programs_and_links(tmp_path: Path) -> None:
    root = tmp_path / "pins"  # missing: pin() creates it, as libbpf does
    with fake_kernel():
        map_ = bpf.Map.create(bpf.MapType.ARRAY, 4, 4, 1, name="pinned")
        program = bpf.Program.from_insns(PASS, bpf.ProgType.XDP, name="pinned_prog")
        link = program.attach_raw_tracepoint("sys_enter")
        for thing, opener, name in (
            (map_, bpf.Map.from_pinned, "map"),
            (program, bpf.Program.from_pinned, "prog"),
            (link, bpf.Link.from_pinned, "link"),
        ):
            path = root / name
            thing.pin(path)
            assert thing.pin_path == str(path) and path.exists()
            again = opener(path)
            assert again.pin_path == str(path)  # from_pinned remembers where
            again.unpin()
            assert not path.exists() and again.pin_path is None
            with pytest.raises(bpf.BpfError, match="is not pinned") as not_pinned:
                again.unpin()
            assert not_pinned.value.errno == errno.ENOENT
            with pytest.raises(bpf.BpfError, match="nothing pinned at") as gone:
                thing.unpin()  # removed through the other handle
            assert gone.value.errno == errno.ENOENT
            again.close()
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        for thing in (link, program, map_):
            thing.close()


def test_links_without_a_kernel() -> None:
    with fake_kernel() as kernel:
        first = bpf.Program.from_insns(PASS, bpf.ProgType.RAW_TRACEPOINT, name="first")
        second = bpf.Program.from_insns(PASS, bpf.ProgType.RAW_TRACEPOINT, name="second")
        with first.attach_raw_tracepoint("sys_enter") as link:
            assert link.info().prog_id == first.id
            link.update_program(second)
            assert link.info().prog_id == second.id
            assert Cmd.LINK_UPDATE in kernel.calls
        assert not any(obj.kind == "link" for obj in kernel.open_objects())
        xdp = bpf.Program.from_insns(PASS, bpf.ProgType.XDP, name="xdp_fake")
        with xdp.attach_xdp("lo") as link:  # a bpf_link: LINK_CREATE, no netlink
            assert kernel.calls[-1] == Cmd.LINK_CREATE
            link.detach()
        for program in (first, second, xdp):
            program.close()
        assert kernel.open_objects() == []


def test_load_creates_what_the_object_declares(
    bpf_object: Callable[[str], Path], tmp_path: Path
) -> None:
    path = bpf_object("rollback")
    pins = tmp_path / "pins"
    with fake_kernel() as kernel:
        obj = bpf.BpfObject.open(path, pin_root_path=str(pins))
        assert not kernel.calls  # open() asks the kernel nothing
        obj.programs["bad"].autoload = False
        obj.load()
        maps = {o.name: o for o in kernel.objects.values() if o.kind == "map"}
        assert {"kept", "scratch", "rollback.rodata", "rollback.bss"} <= set(maps)
        rodata = maps["rollback.rodata"]
        assert rodata.frozen and rodata.flags & bpf.MapFlags.RDONLY_PROG
        assert rodata.flags & bpf.MapFlags.MMAPABLE
        assert obj.variables["answer"].value == 42  # the image, through the mmapped "map"
        assert (pins / "kept").exists() and kernel.pins[str(pins / "kept")] == maps["kept"].id
        loaded = {o.name for o in kernel.objects.values() if o.kind == "prog"}
        assert "good" in loaded and "bad" not in loaded
        obj.close()
        assert kernel.open_objects() == []
        os.unlink(pins / "kept")


def test_maps_and_programs_release_their_fds_on_close(
    bpf_object: Callable[[str], Path], tmp_path: Path
) -> None:
    with fake_kernel() as kernel:
        with bpf.BpfObject.open(bpf_object("rollback"), pin_root_path=str(tmp_path)) as obj:
            obj.programs["bad"].autoload = False
            obj.load()
            assert kernel.open_objects()
        assert kernel.open_objects() == []


def test_a_failed_load_undoes_what_it_did(
    bpf_object: Callable[[str], Path], tmp_path: Path
) -> None:
    pins = tmp_path / "pins"
    with fake_kernel(reject=("bad",)) as kernel:
        obj = bpf.BpfObject.open(bpf_object("rollback"), pin_root_path=str(pins))
        with pytest.raises(bpf.LoadError, match="program 'bad'") as failure:
            obj.load()
        assert "R0 !read_ok" in failure.value.log
        made = {o.name for o in kernel.objects.values()}
        assert {"kept", "good", "btf"} <= made  # it got that far…
        assert kernel.open_objects() == []  # …and released all of it
        assert not pins.exists()  # the pin and the pin root it made are gone
