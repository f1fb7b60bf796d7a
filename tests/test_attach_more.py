"""The remaining attach kinds, each checked for its effect: sk_lookup steers a connection,
sk_msg drops a socket's sends, a netfilter hook drops a namespace's packets, freplace
changes a loaded program's verdict, a perf_event program counts samples of a counter the
test opened; and bad attach requests are refused with the target and program named."""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from netns import in_netns

import pylibbpf as bpf
from pylibbpf.loader import BpfObject
from pylibbpf.syscall import perf
from pylibbpf.syscall.system import kernel_version

pytestmark = pytest.mark.root


@pytest.fixture
def objects(bpf_object: Callable[[str], Path]) -> Iterator[Callable[..., BpfObject]]:
    """attach_more.bpf.o with only the named programs loaded."""
    opened: list[BpfObject] = []

    def load(*names: str, before_load: Callable[[BpfObject], None] | None = None) -> BpfObject:
        obj = BpfObject.open(bpf_object("attach_more"))
        opened.append(obj)
        for name, program in obj.programs.items():
            program.autoload = name in names
        if before_load is not None:
            before_load(obj)
        obj.load()
        return obj

    yield load
    for obj in reversed(opened):
        obj.close()


def test_sk_lookup_steers_a_connection(
    objects: Callable[..., BpfObject], veth: tuple[str, str]
) -> None:
    _, ns_b = veth
    obj = objects("steer_7200")
    with in_netns(ns_b):
        server = socket.create_server(("10.201.0.2", 7100))
    with server:
        obj.maps["listener"][0] = server.fileno()

        def connect() -> bool:
            with in_netns(ns_b), socket.socket() as client:
                client.settimeout(2)
                try:
                    client.connect(("10.201.0.2", 7200))  # nothing listens on 7200
                except ConnectionRefusedError:
                    return False
                accepted, _ = server.accept()
                accepted.close()
                return True

        assert not connect()
        with obj.programs["steer_7200"].attach_netns(f"/run/netns/{ns_b}") as link:
            assert link.info().type == bpf.LinkType.NETNS
            assert connect()  # steered to the listener on 7100
            assert obj.variables["steered"].value == 1
        assert not connect()


def test_sk_msg_verdict_on_a_sockmap(objects: Callable[..., BpfObject]) -> None:
    obj = objects("drop_msgs")
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        with client, peer:
            client.sendall(b"before")
            assert peer.recv(16) == b"before"
            with obj.programs["drop_msgs"].attach_sockmap(obj.maps["senders"]):
                obj.maps["senders"][1] = client.fileno()  # sockets added after attaching
                with pytest.raises(PermissionError):
                    client.send(b"dropped by sk_msg")
                assert obj.variables["msgs_dropped"].value == 1
                del obj.maps["senders"][1]
            client.sendall(b"after")
            assert peer.recv(16) == b"after"


@pytest.mark.skipif(kernel_version() < (6 << 16 | 4 << 8), reason="netfilter links: 6.4+")
def test_netfilter_hook_drops_a_namespaces_packets(
    objects: Callable[..., BpfObject], veth: tuple[str, str]
) -> None:
    _, ns_b = veth
    obj = objects("nf_drop_all")

    def send() -> bool:
        with in_netns(ns_b), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            try:
                sender.sendto(b"x", ("10.201.0.1", 9))
            except PermissionError:
                return False
            return True

    assert send()
    with in_netns(ns_b):
        link = obj.programs["nf_drop_all"].attach_netfilter(2, 3, -128)  # IPv4 LOCAL_OUT
    with link:
        assert link.info().type == bpf.LinkType.NETFILTER
        assert not send()
        assert obj.variables["nf_dropped"].value >= 1
    assert send()  # another namespace (this test's) was never affected either


def test_freplace_changes_a_loaded_programs_verdict(objects: Callable[..., BpfObject]) -> None:
    target = objects("xdp_target")
    program = target.programs["xdp_target"]
    assert program.test_run(bytes(64)).retval == bpf.XdpAction.PASS

    def aim(obj: BpfObject) -> None:
        obj.programs["new_decide"].set_attach_target(program, "decide")

    try:
        replacement = objects("new_decide", before_load=aim)
    except bpf.BpfPermissionError as error:
        pytest.skip(f"this host refuses freplace programs: {error}")
    with replacement.programs["new_decide"].attach_trace():
        assert program.test_run(bytes(64)).retval == bpf.XdpAction.DROP
    assert program.test_run(bytes(64)).retval == bpf.XdpAction.PASS


def test_freplace_target_errors_name_the_function(objects: Callable[..., BpfObject]) -> None:
    target = objects("xdp_target")

    def aim(obj: BpfObject) -> None:
        obj.programs["new_decide"].set_attach_target(target.programs["xdp_target"], "nope")

    with pytest.raises(bpf.LoadError, match="attach target 'nope'.*'xdp_target' has no function"):
        objects("new_decide", before_load=aim)


def test_perf_event_program_on_a_counter_we_opened(objects: Callable[..., BpfObject]) -> None:
    obj = objects("on_sample")
    attr = perf.PerfEventAttr(
        type=perf.PERF_TYPE_SOFTWARE,
        config=0,
        sample_period=100_000,  # cpu-clock, 100 µs
    )
    counter = perf.perf_event_open(attr, pid=0, cpu=-1, what="cpu-clock of this thread")
    with counter, obj.programs["on_sample"].attach_perf_event(counter.fd):
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:
            pass  # burn CPU: the counter overflows every 100 µs of it
        assert obj.variables["samples"].value > 100


def test_bad_attach_requests_are_refused_with_names(
    objects: Callable[..., BpfObject], veth: tuple[str, str], cgroup_dir: Path
) -> None:
    _, ns_b = veth
    obj = objects("xdp_target")
    program = obj.programs["xdp_target"]
    with pytest.raises(bpf.AttachError, match="network interface 'pylibbpf-nope0' does not"):
        program.attach_xdp("pylibbpf-nope0")
    with pytest.raises(bpf.AttachError, match=r"xdp_target.*cgroup.*CGROUP_INET_EGRESS") as error:
        program.attach_cgroup(cgroup_dir, bpf.AttachType.CGROUP_INET_EGRESS)  # wrong type
    assert error.value.errno == errno.EINVAL
    with in_netns(ns_b), program.attach_xdp("vB"):
        with pytest.raises(bpf.AttachError, match=r"xdp_target.*XDP of 'vB'") as busy:
            program.attach_xdp("vB")  # one XDP link per interface and mode
        assert busy.value.errno == errno.EBUSY
