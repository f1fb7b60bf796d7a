"""struct_ops end to end: BPF TCP congestion controls registered from Python, carrying real
traffic over loopback in a private network namespace (``unshare --net``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pylibbpf as bpf
from pylibbpf import features
from pylibbpf.btf import Btf, Kind
from pylibbpf.loader import BpfObject
from pylibbpf.syscall.system import kernel_version

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is missing"),
]

AVAILABLE = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")
HELPER = Path(__file__).with_name("tcp_transfer.py")


def available() -> list[str]:
    return AVAILABLE.read_text().split()


def wait_gone(name: str) -> None:
    """Unregistering through a closed link completes in a kernel work item."""
    deadline = time.monotonic() + 5
    while name in available():
        assert time.monotonic() < deadline, f"{name} is still registered"
        time.sleep(0.05)


def cwnd_offset() -> int:
    info = Btf.load_vmlinux().find("tcp_info", Kind.STRUCT)
    return next(m.bit_offset // 8 for m in info.members if m.name == "tcpi_snd_cwnd")


def transfer(cc: str, mib: int = 8) -> dict[str, object]:
    out = subprocess.run(
        ["unshare", "--net", sys.executable, str(HELPER), cc, str(mib), str(cwnd_offset())],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


needs_links = pytest.mark.skipif(
    not features.has_struct_ops_link(), reason="this kernel has no struct_ops links (6.4+)"
)


@pytest.fixture
def cc_object(bpf_object: Callable[[str], Path]) -> Iterator[BpfObject]:
    """Link-based congestion controls (fixed10, fixed20: both named pylibbpf_fixed)."""
    if not features.has_struct_ops_link():
        pytest.skip("this kernel has no struct_ops links (6.4+)")
    with BpfObject.open(bpf_object("tcp_cc")) as obj:
        obj.load()
        yield obj
    wait_gone("pylibbpf_fixed")


@pytest.fixture
def plain_object(bpf_object: Callable[[str], Path]) -> Iterator[BpfObject]:
    """Plain struct_ops maps (registered by update): every kernel with struct_ops."""
    with BpfObject.open(bpf_object("tcp_cc_plain")) as obj:
        obj.load()
        yield obj
    wait_gone("pylibbpf_plain")


def test_bpf_congestion_control_carries_real_traffic(cc_object: BpfObject) -> None:
    assert "pylibbpf_fixed" not in available()
    with cc_object.maps["fixed10"].attach_struct_ops() as link:
        assert link.info().type == bpf.LinkType.STRUCT_OPS
        assert "pylibbpf_fixed" in available()
        result = transfer("pylibbpf_fixed")
        assert result["first"] == {"cc": "pylibbpf_fixed", "snd_cwnd": 10}
        assert cc_object.variables["calls10"].value > 0  # the BPF cong_avoid ran
        assert cc_object.variables["inits"].value >= 1
        assert cc_object.variables["calls20"].value == 0
    wait_gone("pylibbpf_fixed")


def test_attach_skips_struct_ops_maps_with_autoattach_off(cc_object: BpfObject) -> None:
    """fixed10 and fixed20 share a name, so attach() would register both and the kernel
    refuse the second; with fixed20's autoattach off it registers fixed10 alone."""
    from pylibbpf.struct_ops import registered_state

    cc_object.maps["fixed20"].autoattach = False
    attached = cc_object.attach_named()
    assert sorted(attached) == ["fixed10"]
    assert registered_state(cc_object.maps["fixed10"]) == "ready"
    assert registered_state(cc_object.maps["fixed20"]) == "init"  # never written
    assert transfer("pylibbpf_fixed", mib=1)["first"] == {"cc": "pylibbpf_fixed", "snd_cwnd": 10}
    for link in attached.values():
        link.close()
    wait_gone("pylibbpf_fixed")


def test_update_map_swaps_the_implementation_mid_connection(cc_object: BpfObject) -> None:
    link = cc_object.maps["fixed10"].attach_struct_ops()
    child = subprocess.Popen(
        [
            "unshare",
            "--net",
            sys.executable,
            str(HELPER),
            "pylibbpf_fixed",
            "16",
            str(cwnd_offset()),
            "--pause",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "paused"  # a connection is open and sending
        link.update_map(cc_object.maps["fixed20"])  # atomic swap under the same name
        assert "pylibbpf_fixed" in available()
        child.stdin.write("go\n")
        child.stdin.flush()
        result = json.loads(child.stdout.readline())
        assert child.wait(timeout=120) == 0
    finally:
        if child.poll() is None:
            child.kill()
        link.close()
    assert result["first"]["snd_cwnd"] == 10
    # the connection that was open across the swap kept going (on the implementation it
    # started with); a new one gets the new implementation
    assert result["first_after"]["cc"] == "pylibbpf_fixed"
    assert result["second"] == {"cc": "pylibbpf_fixed", "snd_cwnd": 20}
    assert cc_object.variables["calls20"].value > 0


def test_plain_struct_ops_map_registers_by_update(plain_object: BpfObject) -> None:
    with plain_object.maps["plain"].attach_struct_ops():
        assert "pylibbpf_plain" in available()
        assert transfer("pylibbpf_plain", mib=2)["first"] == {
            "cc": "pylibbpf_plain",
            "snd_cwnd": 10,
        }
        assert plain_object.variables["calls"].value > 0
    assert "pylibbpf_plain" not in available()  # key 0 deleted: unregistered at once


@needs_links
def test_registration_outlives_the_object_only_when_pinned(
    bpf_object: Callable[[str], Path], pin_dir: Path
) -> None:
    with BpfObject.open(bpf_object("tcp_cc")) as obj:
        obj.load()
        obj.maps["fixed10"].attach_struct_ops().pin(pin_dir / "cc_link")
    assert "pylibbpf_fixed" in available()  # object closed, pin holds the registration
    (pin_dir / "cc_link").unlink()
    wait_gone("pylibbpf_fixed")
    with BpfObject.open(bpf_object("tcp_cc")) as obj:
        obj.load()
        obj.maps["fixed10"].attach_struct_ops()
    wait_gone("pylibbpf_fixed")  # not pinned: closing the object unregistered it


def test_missing_mandatory_callback_is_explained(bpf_object: Callable[[str], Path]) -> None:
    with BpfObject.open(bpf_object("tcp_cc_plain")) as obj:
        obj.load()
        assert not obj.maps["incomplete"].created  # '?' sections are not auto-created
    obj = BpfObject.open(bpf_object("tcp_cc_plain"))
    try:
        obj.spec.struct_ops["incomplete"] = _autocreated(obj.spec.struct_ops["incomplete"])
        obj = BpfObject(obj.spec)
        obj.load()
        with pytest.raises(
            bpf.BpfError,
            match=r"'incomplete' \(struct tcp_congestion_ops\): "
            r"registration failed.*callbacks left NULL: .*ssthresh",
        ):
            obj.maps["incomplete"].attach_struct_ops()
        assert "pylibbpf_broken" not in available()
    finally:
        obj.close()


def _autocreated(spec: object) -> object:
    import dataclasses

    return dataclasses.replace(spec, section=".struct_ops")  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        (
            "unknown_struct",
            r"no struct_ops type 'struct tcp_congestion_opz'; close matches: "
            r"tcp_congestion_ops",
        ),
        (
            "extra_member",
            r"'extra_member'.*member 'pylibbpf_extra' \(set to program 'undo'\) does "
            r"not exist in this kernel's struct",
        ),
        (
            "wrong_program",
            r"'wrong_program': program 'not_struct_ops' is in section 'xdp', not a "
            r"SEC\(\"struct_ops\"\) program",
        ),
    ],
)
def test_struct_ops_errors_name_the_struct_and_member(
    bpf_object: Callable[[str], Path], variable: str, message: str
) -> None:
    opened = BpfObject.open(bpf_object("struct_ops_errors"))
    spec = opened.spec
    spec.struct_ops[variable] = _autocreated(spec.struct_ops[variable])  # type: ignore[assignment]
    with BpfObject(spec) as obj, pytest.raises(bpf.ObjectError, match=message):
        obj.load()


def test_registered_state_is_readable(cc_object: BpfObject, plain_object: BpfObject) -> None:
    from pylibbpf.struct_ops import registered_state

    fixed, plain = cc_object.maps["fixed10"], plain_object.maps["plain"]
    assert registered_state(fixed) == registered_state(plain) == "init"  # nothing written yet
    with fixed.attach_struct_ops(), plain.attach_struct_ops():
        assert registered_state(fixed) == "ready"  # link-based: live through its link
        assert registered_state(plain) == "inuse"  # plain: registered by the update itself
        listed = {entry.name: entry for entry in list_struct_ops()}
        assert listed["fixed10"].kernel_type == "tcp_congestion_ops"
        assert listed["fixed10"].ops_name == "pylibbpf_fixed" and listed["fixed10"].link_based
        assert listed["plain"].refcnt >= 1


def list_struct_ops() -> list[object]:
    from pylibbpf.struct_ops import list_registered

    return list(list_registered())


@pytest.mark.parametrize(
    ("source", "variable", "name"),
    [
        ("bpf_cubic", "cubic", "bpf_cubic"),
        ("bpf_dctcp", "dctcp", "bpf_dctcp"),
    ],
)
def test_kernel_selftest_congestion_controls(
    selftest_object: Callable[[str], Path], source: str, variable: str, name: str
) -> None:
    """The kernel's own BPF congestion controls (tools/testing/selftests/bpf/progs)."""
    if kernel_version() < (6 << 16 | 12 << 8):
        pytest.skip("these are 6.12's selftests; older verifiers reject them (as with libbpf)")
    with BpfObject.open(selftest_object(source)) as obj:
        obj.load()
        with obj.maps[variable].attach_struct_ops():
            assert name in available()
            result = transfer(name, mib=8)
            assert result["first"]["cc"] == name
            assert result["first"]["snd_cwnd"] > 0
    wait_gone(name)
