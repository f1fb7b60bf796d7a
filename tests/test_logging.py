"""Logging (issue #21): what a real load, attach and failed load tell the ``pylibbpf``
loggers, each message checked against what the kernel then did; silent by default;
``set_print`` as libbpf's ``libbpf_set_print``; nothing on the map element paths."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from netns import in_netns, udp_reaches

import pylibbpf as bpf
from pylibbpf import BpfObject
from pylibbpf.btf import Btf, Kind
from pylibbpf.syscall import features

ROOT = Path(__file__).resolve().parent.parent


def messages(caplog: pytest.LogCaptureFixture, logger: str, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == level]


def one(found: list[str], pattern: str) -> re.Match[str]:
    matches = [m for m in (re.search(pattern, text) for text in found) if m is not None]
    assert len(matches) == 1, (pattern, found)
    return matches[0]


@pytest.mark.root
def test_a_load_logs_the_object_its_maps_and_co_re_relocations(
    bpf_object: Callable[[str], Path], pin_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pylibbpf")
    path = bpf_object("logging")
    with BpfObject.open(path, pin_root_path=str(pin_dir)) as obj:
        info = messages(caplog, "pylibbpf.loader.object", logging.INFO)
        one(info, rf"object 'logging' opened from {re.escape(repr(str(path)))}: ")
        obj.variables["target_tgid"].value = os.getpid()
        obj.load()
        created = messages(caplog, "pylibbpf.loader.maps", logging.DEBUG)
        for name, kind in (("log_seen", "HASH"), ("log_pinned", "ARRAY")):
            match = one(created, rf"map '{name}': created (\w+) map .* fd (\d+)$")
            assert match.group(1) == kind
            assert int(match.group(2)) == obj.maps[name].fd  # the fd the map has
        pinned = str(pin_dir / "log_pinned")
        one(messages(caplog, "pylibbpf.loader.maps", logging.INFO), rf"pinned at '{pinned}'")
        assert os.path.exists(pinned)

        core = messages(caplog, "pylibbpf.loader.programs", logging.DEBUG)
        one(core, r"program 'log_core': 1 CO-RE relocations applied$")
        match = one(core, r"FIELD_BYTE_OFFSET of struct task_struct::tgid: (\d+) -> (\d+)$")
        task = Btf.load_vmlinux().find("task_struct", Kind.STRUCT)
        tgid = next(m for m in task.members if m.name == "tgid")
        assert int(match.group(2)) == tgid.bit_offset // 8  # the running kernel's offset
        one(
            messages(caplog, "pylibbpf.loader.object", logging.INFO),
            r"object 'logging' loaded: 2 programs, 4 maps \(reused pinned: none\)",
        )

        link = obj.programs["log_core"].attach()
        assert link is not None
        with link:
            os.getppid()
        # The program read the tgid at the logged offset: it found this process's.
        assert obj.maps["log_seen"][0] == os.getpid()
        first_id = obj.maps["log_pinned"].info().id

        caplog.clear()
        with BpfObject.open(path, pin_root_path=str(pin_dir)) as again:
            again.load()
            reused = messages(caplog, "pylibbpf.loader.maps", logging.INFO)
            one(reused, rf"map 'log_pinned': reused pinned map at '{pinned}'")
            assert not any("pinned at" in text for text in reused)
            one(
                messages(caplog, "pylibbpf.loader.object", logging.INFO),
                r"reused pinned: log_pinned\)",
            )
            assert again.maps["log_pinned"].info().id == first_id  # the same kernel map
            assert again.maps["log_pinned"][0] == 1  # counted by the first object's program


@pytest.mark.root
@pytest.mark.parametrize("tcx", [None, False], ids=["default", "tcx=False"])
def test_the_tc_attach_route_is_logged(
    bpf_object: Callable[[str], Path],
    veth: tuple[str, str],
    pin_dir: Path,
    caplog: pytest.LogCaptureFixture,
    tcx: bool | None,
) -> None:
    ns_a, ns_b = veth
    caplog.set_level(logging.INFO, logger="pylibbpf")
    with BpfObject.open(bpf_object("logging"), pin_root_path=str(pin_dir)) as obj:
        obj.programs["log_core"].autoload = False
        obj.load()
        with in_netns(ns_b):
            link = obj.programs["log_tc"].attach_tc("vB", "ingress", tcx=tcx)
        with link:
            assert udp_reaches(ns_a, ns_b)
            assert obj.variables["tc_packets"].value > 0  # the route taken carries traffic
            routes = messages(caplog, "pylibbpf.links.tc", logging.INFO)
            if tcx is None and features.has_tcx():
                one(routes, r"program 'log_tc': tc ingress of 'vB' through a tcx link$")
                assert link.info().type == bpf.LinkType.TCX
            else:
                reason = "tcx=False" if tcx is False else "this kernel has no tcx links"
                one(routes, rf"through netlink, a clsact qdisc's filter \({reason}\)$")
                with pytest.raises(bpf.NotSupportedError):
                    link.info()  # no bpf_link behind a netlink filter


@pytest.mark.root
def test_a_rejected_program_logs_the_whole_verifier_log(
    bpf_object: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pylibbpf")
    with BpfObject.open(bpf_object("verifier_fail")) as obj, pytest.raises(bpf.LoadError) as info:
        obj.load()
    (warning,) = messages(caplog, "pylibbpf.program", logging.WARNING)
    head, _, rest = warning.partition("\n-- BEGIN PROG LOAD LOG --\n")
    assert head == "program 'unchecked' (XDP): load failed [EACCES]"
    logged, _, tail = rest.partition("\n-- END PROG LOAD LOG --")
    assert tail == ""
    assert logged == info.value.log.rstrip("\n")  # all of what the kernel said
    assert "invalid mem access 'map_value_or_null'" in logged


@pytest.mark.root
def test_silent_by_default_and_basic_config_shows_it(bpf_object: Callable[[str], Path]) -> None:
    """Without the NullHandler, Python's last-resort handler would print the warning."""
    script = (
        "import sys, logging, pylibbpf as bpf\n"
        "if sys.argv[2] == 'configured': logging.basicConfig(level=logging.WARNING)\n"
        "obj = bpf.BpfObject.open(sys.argv[1])\n"
        "try:\n"
        "    obj.load()\n"
        "except bpf.LoadError:\n"
        "    print('rejected')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    path = str(bpf_object("verifier_fail"))
    runs = {
        mode: subprocess.run(
            [sys.executable, "-c", script, path, mode],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        for mode in ("default", "configured")
    }
    assert runs["default"].stdout == runs["configured"].stdout == "rejected\n"
    assert runs["default"].stderr == ""
    assert "WARNING:pylibbpf.program:program 'unchecked' (XDP): load failed" in (
        runs["configured"].stderr
    )
    assert "-- BEGIN PROG LOAD LOG --" in runs["configured"].stderr


def test_set_print_replaces_the_handlers_as_libbpf_set_print(
    bpf_object: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Opening touches no kernel: this runs without privileges."""
    caplog.set_level(logging.DEBUG)
    package = logging.getLogger("pylibbpf")
    before = (package.level, package.propagate, list(package.handlers))
    path = bpf_object("verifier_fail")
    got: list[tuple[int, str]] = []
    warnings: list[tuple[int, str]] = []

    def callback(level: int, message: str) -> None:
        got.append((level, message))

    assert bpf.set_print(callback) is None
    try:
        BpfObject.open(path)
        assert got == [
            (
                logging.INFO,
                f"object 'verifier_fail' opened from {str(path)!r}: "
                "programs unchecked, maps values",
            )
        ]
        assert not [r for r in caplog.records if r.name.startswith("pylibbpf")]  # replaced
        assert bpf.set_print(lambda *a: warnings.append(a), level=logging.WARNING) is callback
        BpfObject.open(path)
        assert warnings == [] and len(got) == 1  # INFO is below the level asked for
    finally:
        previous = bpf.set_print(None)
    assert previous is not None and previous is not callback
    assert (package.level, package.propagate, list(package.handlers)) == before
    BpfObject.open(path)
    assert any(r.name == "pylibbpf.loader.object" for r in caplog.records)  # logging again


@pytest.mark.root
def test_map_element_operations_never_log(caplog: pytest.LogCaptureFixture) -> None:
    """The per-element paths stay free of logging calls, even with DEBUG on."""
    caplog.set_level(logging.DEBUG, logger="pylibbpf")
    with bpf.Map.create(
        bpf.MapType.HASH, 4, 8, 16, name="log_hot", key_type=int, value_type=int
    ) as counts:
        caplog.clear()
        for key in range(16):
            counts[key] = key * 3
        assert sum(counts[key] for key in range(16)) == 3 * sum(range(16))
        assert counts.lookup(99) is None
        del counts[0]
        assert sorted(counts) == list(range(1, 16))
    assert [r.getMessage() for r in caplog.records] == []
