"""Attach order at multi-program hooks, checked by its effect: at tcx and netkit the first
program with a verdict decides whether real UDP traffic between two private namespaces
gets through, so placing a program by anchor changes a packet's fate; at a cgroup hook
every program runs and each notes when. A stale expected revision is refused (ESTALE),
and query() reports the order the kernel keeps. netkit needs a kernel built with it
(the host's is not: the test runs in the VM suite on 6.12)."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from netns import in_netns, udp_reaches

import pylibbpf as bpf
from pylibbpf import introspect
from pylibbpf.errors import AttachError, NotSupportedError
from pylibbpf.links.order import Anchor, query
from pylibbpf.loader import BpfObject
from pylibbpf.syscall import features
from pylibbpf.uapi import AttachFlags, AttachType

root = pytest.mark.root


@pytest.fixture
def order(bpf_object: Callable[[str], Path]) -> Iterator[Callable[..., BpfObject]]:
    """order.bpf.o with only the named programs loaded."""
    opened: list[BpfObject] = []

    def load(*names: str) -> BpfObject:
        obj = BpfObject.open(bpf_object("order"))
        opened.append(obj)
        for name, program in obj.programs.items():
            program.autoload = name in names
        obj.load()
        return obj

    yield load
    for obj in reversed(opened):
        obj.close()


def ids(obj: BpfObject, *names: str) -> list[int]:
    return [obj.programs[name].info().id for name in names]


# ----------------------------------------------------------------- privilege-free


def test_anchors_encode_libbpfs_flags() -> None:
    assert Anchor.first().encode() == (AttachFlags.BEFORE, 0)
    assert Anchor.last().encode() == (AttachFlags.AFTER, 0)
    assert Anchor.before_id(7).encode() == (AttachFlags.BEFORE | AttachFlags.ID, 7)
    assert Anchor.after_id(9, link=True).encode() == (
        AttachFlags.AFTER | AttachFlags.ID | AttachFlags.LINK,
        9,
    )
    assert str(Anchor.after_id(9, link=True)) == "after link id 9"
    with pytest.raises(AttachError, match="a program or a link"):
        Anchor.before(42)  # type: ignore[arg-type]


class Stub:
    """Just enough of a program for the argument checks that come before any syscall."""

    def __init__(self, section: str, attach_type: int | None = None) -> None:
        self.name, self.section, self.type, self.fd = "stub", section, 0, -1
        self.expected_attach_type = attach_type
        self.obj = None

    def fileno(self) -> int:
        return -1


def test_auto_attach_options_go_where_they_are_understood() -> None:
    from pylibbpf.links.auto import attach_from_section

    with pytest.raises(AttachError, match=r"take no attach options \(interface\)"):
        attach_from_section(Stub("tp/syscalls/sys_enter_getpid"), interface="lo")
    with pytest.raises(AttachError, match="does not auto-attach, so it takes no options"):
        attach_from_section(Stub("socket"), anchor=Anchor.first())
    with pytest.raises(AttachError, match="unexpected keyword argument 'colour'"):
        attach_from_section(Stub("iter/task"), colour="blue")
    # Without the hook, the hook-less sections stay for an explicit attach (obj.attach()).
    assert attach_from_section(Stub("tc/ingress", AttachType.TCX_INGRESS)) is None
    assert attach_from_section(Stub("netkit/peer", AttachType.NETKIT_PEER)) is None
    assert attach_from_section(Stub("cgroup/sock_create")) is None
    with pytest.raises(AttachError, match="which netkit side, primary or peer"):
        from pylibbpf.links.netkit import attach_netkit

        attach_netkit(Stub("classifier"), "lo")


# ----------------------------------------------------------------- tcx


@root
def test_tcx_order_by_anchor_decides_a_packets_fate(
    order: Callable[..., BpfObject], veth: tuple[str, str]
) -> None:
    if not features.has_tcx():
        pytest.skip("this kernel has no tcx links (6.6+)")
    ns_a, ns_b = veth
    obj = order("tc_pass", "tc_drop", "tc_next")
    passing, dropping = obj.programs["tc_pass"], obj.programs["tc_drop"]
    with in_netns(ns_b):
        drop_link = dropping.attach_tc("vB", "ingress")
        first = query("vB", "ingress")
    with drop_link:
        assert first.prog_ids == ids(obj, "tc_drop")
        assert first.link_ids == [drop_link.info().id]
        row = next(r for r in introspect.links() if r.id == drop_link.info().id)
        with in_netns(ns_b):
            assert row.details == {
                "ifindex": socket.if_nametoindex("vB"),
                "attach_type": "tcx_ingress",
            }
            assert (
                row.describe() == f"ifindex vB({row.details['ifindex']})  attach_type tcx_ingress"
            )
        assert not udp_reaches(ns_a, ns_b)

        # PASS placed before DROP: the packet gets through, DROP never sees it.
        with in_netns(ns_b):
            pass_link = passing.attach_tc(
                "vB", anchor=Anchor.before(drop_link), expected_revision=first.revision
            )
            second = query("vB", "ingress")
        with pass_link:
            assert second.prog_ids == ids(obj, "tc_pass", "tc_drop")
            assert second.revision > first.revision
            dropped = obj.variables["drop_seen"].value
            assert udp_reaches(ns_a, ns_b)
            assert obj.variables["drop_seen"].value == dropped

            # The hook moved on since `first`: attaching against it is refused.
            with in_netns(ns_b), pytest.raises(AttachError) as stale:
                obj.programs["tc_next"].attach_tc(
                    "vB", anchor=Anchor.first(), expected_revision=first.revision
                )
            assert stale.value.errno == errno.ESTALE
            assert f"no longer at revision {first.revision}" in str(stale.value)
            with in_netns(ns_b):
                assert query("vB", "ingress").prog_ids == second.prog_ids

        # Reordered: PASS after DROP (anchored on the program this time) comes too late.
        with in_netns(ns_b):
            pass_link = passing.attach_tc("vB", anchor=Anchor.after(dropping))
            assert query("vB", "ingress").prog_ids == ids(obj, "tc_drop", "tc_pass")
        with pass_link:
            passed = obj.variables["pass_seen"].value
            assert not udp_reaches(ns_a, ns_b)
            assert obj.variables["pass_seen"].value == passed

        # NEXT first, then PASS ahead of DROP by the link's id: NEXT hands the packet on.
        with in_netns(ns_b):
            next_link = obj.programs["tc_next"].attach_tc("vB", anchor=Anchor.first())
            pass_link = passing.attach_tc(
                "vB", anchor=Anchor.before_id(drop_link.info().id, link=True)
            )
            assert query("vB", "ingress").prog_ids == ids(obj, "tc_next", "tc_pass", "tc_drop")
        with next_link, pass_link:
            assert udp_reaches(ns_a, ns_b)
            assert obj.variables["next_seen"].value > 0
    with in_netns(ns_b):
        assert query("vB", "ingress").prog_ids == []


@root
def test_tcx_anchor_on_a_program_elsewhere_is_named(
    order: Callable[..., BpfObject], veth: tuple[str, str]
) -> None:
    if not features.has_tcx():
        pytest.skip("this kernel has no tcx links (6.6+)")
    _, ns_b = veth
    obj = order("tc_pass", "tc_drop")
    with in_netns(ns_b), pytest.raises(AttachError) as missing:
        obj.programs["tc_pass"].attach_tc("vB", anchor=Anchor.before(obj.programs["tc_drop"]))
    assert missing.value.errno == errno.ENOENT
    assert "anchor before 'tc_drop': not attached at this hook" in str(missing.value)
    with in_netns(ns_b), pytest.raises(NotSupportedError, match="clsact filters"):
        obj.programs["tc_pass"].attach_tc("vB", tcx=False, anchor=Anchor.first())


# ----------------------------------------------------------------- netkit


@root
def test_netkit_primary_and_peer_drop_each_direction(
    order: Callable[..., BpfObject], netkit: tuple[str, str]
) -> None:
    ns_a, ns_b = netkit
    obj = order("nk_primary_drop", "nk_peer_drop")
    assert udp_reaches(ns_a, ns_b) and udp_reaches(ns_b, ns_a, address="10.201.0.1")
    with in_netns(ns_a):
        link = obj.programs["nk_primary_drop"].attach(interface="nkA")  # netkit/primary
    with link:
        assert link.info().type == bpf.LinkType.NETKIT
        row = next(r for r in introspect.links() if r.id == link.info().id)
        assert row.type == "netkit" and row.details["attach_type"] == "netkit_primary"
        assert not udp_reaches(ns_a, ns_b)  # what A sends into the pair
        assert udp_reaches(ns_b, ns_a, address="10.201.0.1")
    assert udp_reaches(ns_a, ns_b)
    with in_netns(ns_a):
        link = obj.programs["nk_peer_drop"].attach_netkit("nkA")  # the side: its section
        assert query("nkA", "peer").prog_ids == ids(obj, "nk_peer_drop")
    with link:
        assert not udp_reaches(ns_b, ns_a, address="10.201.0.1")  # what the peer sends
        assert udp_reaches(ns_a, ns_b)
    with in_netns(ns_b), pytest.raises(AttachError, match="is a netkit peer") as peer:
        obj.programs["nk_peer_drop"].attach_netkit("nkB")
    assert peer.value.errno == errno.EACCES


@root
def test_netkit_order_by_anchor(order: Callable[..., BpfObject], netkit: tuple[str, str]) -> None:
    ns_a, ns_b = netkit
    obj = order("nk_primary_drop", "nk_primary_pass")
    with in_netns(ns_a):
        drop_link = obj.programs["nk_primary_drop"].attach_netkit("nkA")
        revision = query("nkA", "primary").revision
        pass_link = obj.programs["nk_primary_pass"].attach_netkit(
            "nkA", anchor=Anchor.before(drop_link), expected_revision=revision
        )
        assert query("nkA", "primary").prog_ids == ids(obj, "nk_primary_pass", "nk_primary_drop")
    with drop_link, pass_link:
        assert udp_reaches(ns_a, ns_b)
    with in_netns(ns_a):
        drop_link = obj.programs["nk_primary_drop"].attach_netkit("nkA")
        pass_link = obj.programs["nk_primary_pass"].attach_netkit("nkA", "primary")
        with pytest.raises(AttachError) as stale:
            obj.programs["nk_primary_pass"].attach_netkit("nkA", expected_revision=revision)
        assert stale.value.errno == errno.ESTALE
    with drop_link, pass_link:
        assert not udp_reaches(ns_a, ns_b)


@root
def test_netkit_refuses_a_device_of_another_kind(
    order: Callable[..., BpfObject], veth: tuple[str, str]
) -> None:
    if not features.has_netkit():
        pytest.skip("this kernel has no netkit links (6.7+)")
    _, ns_b = veth
    obj = order("nk_primary_drop")
    with in_netns(ns_b), pytest.raises(AttachError, match="'vB' is not a netkit device"):
        obj.programs["nk_primary_drop"].attach_netkit("vB")


# ----------------------------------------------------------------- cgroup


@root
def test_cgroup_order_by_anchor(order: Callable[..., BpfObject], cgroup_dir: Path) -> None:
    """Both programs run at socket creation; the anchor decides which runs first."""
    obj = order("cg_first", "cg_second")
    first, second = obj.programs["cg_first"], obj.programs["cg_second"]
    hook = AttachType.CGROUP_INET_SOCK_CREATE
    script = (
        "import os, socket\n"
        f"open({str(cgroup_dir / 'cgroup.procs')!r}, 'w').write(str(os.getpid()))\n"
        "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()\n"
    )

    def run_order() -> list[str]:
        for name in ("tick", "first_at", "second_at"):
            obj.variables[name].value = 0
        subprocess.run([sys.executable, "-c", script], check=True)
        at = {name: obj.variables[f"{name}_at"].value for name in ("first", "second")}
        assert all(at.values())
        return sorted(at, key=lambda name: at[name])

    if not features.has_cgroup_mprog():
        with pytest.raises(NotSupportedError, match="Linux 6.15"):
            second.attach_cgroup(cgroup_dir, anchor=Anchor.first())
        pytest.skip("this kernel cannot order cgroup programs (6.15+)")
    with first.attach_cgroup(cgroup_dir) as first_link:
        revision = query(cgroup_dir, hook).revision
        with second.attach_cgroup(cgroup_dir, anchor=Anchor.before(first_link)) as second_link:
            assert query(cgroup_dir, hook).prog_ids == ids(obj, "cg_second", "cg_first")
            assert run_order() == ["second", "first"]
        assert second_link.closed
        with pytest.raises(AttachError) as stale:  # attached and detached since
            second.attach_cgroup(cgroup_dir, expected_revision=revision)
        assert stale.value.errno == errno.ESTALE
        with pytest.raises(AttachError, match="anchored by that link"):
            second.attach_cgroup(cgroup_dir, anchor=Anchor.after(first))
        with second.attach_cgroup(
            cgroup_dir, anchor=Anchor.after(first_link), expected_revision=revision + 2
        ):
            assert query(cgroup_dir, hook).prog_ids == ids(obj, "cg_first", "cg_second")
            assert run_order() == ["first", "second"]
        # PROG_ATTACH (no link) takes the same anchors.
        with second.attach_cgroup(cgroup_dir, legacy=True, anchor=Anchor.first()):
            assert query(cgroup_dir, hook).prog_ids == ids(obj, "cg_second", "cg_first")
            assert run_order() == ["second", "first"]
    assert query(cgroup_dir, hook).prog_ids == []
