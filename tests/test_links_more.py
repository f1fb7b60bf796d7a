"""The newer attach kinds, each checked for what the kernel did: uprobe.session and
kprobe.session pair each entry with its return (or not, as the entry run decided) and carry
a cookie between them; task and cgroup iterators narrowed by their parameters visit only
the asked-for tasks and cgroups, in the asked-for order; an sk_msg program on a sockmap
link drops a socket's sends until the link closes; struct_ops maps with autoattach off
are left out of attach(); PROG_ASSOC_STRUCT_OPS is refused where the kernel lacks it.
kprobe tests run in the VM suite (the host has no kprobes)."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import compile_user_program

import pylibbpf as bpf
from pylibbpf import introspect
from pylibbpf.errors import AttachError, NotSupportedError
from pylibbpf.links.tracing import IterLink
from pylibbpf.loader import BpfObject
from pylibbpf.syscall import features, perf
from pylibbpf.uapi import CgroupIterOrder

pytestmark = pytest.mark.root


@pytest.fixture
def objects(bpf_object: Callable[[str], Path]) -> Iterator[Callable[..., BpfObject]]:
    """``objects(name, *programs, tgid=...)``: tests/bpf/<name>.bpf.o with only the named
    programs loaded (and ``target_tgid`` set, for the session programs)."""
    opened: list[BpfObject] = []

    def load(name: str, *programs: str, tgid: int | None = None) -> BpfObject:
        obj = BpfObject.open(bpf_object(name))
        opened.append(obj)
        for program_name, program in obj.programs.items():
            program.autoload = program_name in programs
        if tgid is not None:
            obj.variables["target_tgid"].value = tgid
        obj.load()
        return obj

    yield load
    for obj in reversed(opened):
        obj.close()


def counters(obj: BpfObject) -> tuple[int, int, int]:
    values = (obj.variables[name].value for name in ("entries", "returns", "cookie_sum"))
    return tuple(int(v) for v in values)  # type: ignore[return-value]


# ----------------------------------------------------------------- sessions


def test_uprobe_session_pairs_entries_with_returns(objects: Callable[..., BpfObject]) -> None:
    """probed.c calls add_numbers(i, 10 i) for i = 1..4; entry n stores cookie 100 n and
    returns n & 1, so the odd entries skip their return probe."""
    if not features.has_uprobe_session():
        pytest.skip("this kernel has no uprobe.session (6.13+)")
    binary = compile_user_program("probed")
    process = subprocess.Popen([str(binary), "4"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        obj = objects("sessions", "on_add_session", tgid=process.pid)
        program = obj.programs["on_add_session"]
        assert program.expected_attach_type == bpf.AttachType.TRACE_UPROBE_SESSION
        with program.attach_uprobe_multi(str(binary), "add_numbers") as link:
            assert link.info().type == bpf.LinkType.UPROBE_MULTI
            out, _ = process.communicate(b"go\n", timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0 and out.split()[1] == b"0"
    assert counters(obj) == (4, 2, 200 + 400)
    assert obj.variables["return_value_sum"].value == 2 * 11 + 4 * 11


@pytest.mark.parametrize(
    ("program", "has_it", "since"),
    [
        ("on_add_session", features.has_uprobe_session, "6.13"),
        ("on_getpgid_session", features.has_kprobe_session, "6.10"),
    ],
)
def test_session_programs_load_where_the_kernel_has_them(
    objects: Callable[..., BpfObject], program: str, has_it: Callable[[], bool], since: str
) -> None:
    if has_it():
        obj = objects("sessions", program, tgid=os.getpid())
        assert obj.programs[program].info().type == bpf.ProgType.KPROBE
    else:
        with pytest.raises(NotSupportedError, match=rf"programs \(Linux {since}\+\)"):
            objects("sessions", program, tgid=os.getpid())


def test_session_probes_refuse_retprobe(
    objects: Callable[..., BpfObject],
) -> None:
    if not features.has_uprobe_session():
        pytest.skip("this kernel has no uprobe.session (6.13+)")
    obj = objects("sessions", "on_add_session", tgid=os.getpid())
    program = obj.programs["on_add_session"]
    binary = str(compile_user_program("probed"))
    with pytest.raises(AttachError, match="retprobe does not apply"):
        program.attach_uprobe_multi(binary, "add_numbers", retprobe=True)


def test_kprobe_session_pairs_entries_with_returns(objects: Callable[..., BpfObject]) -> None:
    """kprobe.session on the function behind getpgid (6.10+): runs in the VM suite."""
    if not features.has_kprobe_session():
        pytest.skip("this kernel has no kprobe.session (6.10+)")
    try:
        perf.pmu("kprobe")
    except bpf.NotSupportedError:
        pytest.skip("this kernel has no kprobes (no kprobe PMU); covered in the VM suite")
    from pylibbpf.links.kprobe import syscall_function

    obj = objects("sessions", "on_getpgid_session", tgid=os.getpid())
    results: list[tuple[int, int, int]] = []

    def call_four_times() -> None:  # one thread, so that the entries are numbered in order
        with obj.programs["on_getpgid_session"].attach_kprobe_multi(
            syscall_function("getpgid")
        ) as link:
            assert link.info().type == bpf.LinkType.KPROBE_MULTI
            for _ in range(4):
                os.getpgid(0)
        results.append(counters(obj))

    thread = threading.Thread(target=call_four_times)
    thread.start()
    thread.join()
    assert results == [(4, 2, 200 + 400)]
    assert obj.variables["return_value_sum"].value == 2 * os.getpgid(0)


# ----------------------------------------------------------------- iterators


def tasks_seen(link: bpf.Link) -> set[tuple[int, int]]:
    assert isinstance(link, IterLink)
    with link.open_iter() as listing:
        return {
            (int(tgid), int(tid))
            for tgid, tid in (line.split() for line in listing.read().decode().splitlines())
        }


def test_task_iterator_by_tid_pid_and_pidfd(objects: Callable[..., BpfObject]) -> None:
    obj = objects("iter_params", "each_task")
    program = obj.programs["each_task"]
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    try:
        tids = {int(t) for t in os.listdir("/proc/self/task")}
        helper_tid = helper.native_id
        assert helper_tid in tids and len(tids) >= 2
        with program.attach_iter(tid=helper_tid) as link:
            assert tasks_seen(link) == {(os.getpid(), helper_tid)}
        with program.attach_iter(pid=os.getpid()) as link:
            assert tasks_seen(link) == {(os.getpid(), tid) for tid in tids}
        pidfd = os.pidfd_open(os.getpid())
        try:
            with program.attach(pidfd=pidfd) as link:  # auto-attach takes the parameters
                assert tasks_seen(link) == {(os.getpid(), tid) for tid in tids}
        finally:
            os.close(pidfd)
        with program.attach_iter() as link:  # every task
            seen = tasks_seen(link)
            assert {(os.getpid(), tid) for tid in tids} <= seen and len(seen) > len(tids)
    finally:
        stop.set()
        helper.join()
    with pytest.raises(AttachError, match="one of tid, pid or pidfd"):
        program.attach_iter(tid=1, pid=1)
    with pytest.raises(AttachError, match="parameters of different iterators"):
        program.attach_iter(pid=1, order="self_only")


@pytest.fixture
def cgroup_tree(cgroup_dir: Path) -> Iterator[list[Path]]:
    """cgroup_dir/a, cgroup_dir/a/b and cgroup_dir/c, removed again after the test."""
    made = [cgroup_dir / "a", cgroup_dir / "a" / "b", cgroup_dir / "c"]
    try:
        for path in made:
            path.mkdir()
        yield [cgroup_dir, *made]
    finally:
        for path in reversed(made):
            if path.exists():
                path.rmdir()


def test_cgroup_iterator_walks_in_the_asked_order(
    objects: Callable[..., BpfObject], cgroup_tree: list[Path]
) -> None:
    obj = objects("iter_params", "each_cgroup")
    program = obj.programs["each_cgroup"]
    root, a, b, c = cgroup_tree
    ino = {path: path.stat().st_ino for path in cgroup_tree}  # a cgroup's id is its inode

    def walk(**params: object) -> list[int]:
        with program.attach_iter(**params) as link, link.open_iter() as listing:  # type: ignore[arg-type]
            return [int(line) for line in listing.read().decode().split()]

    pre = walk(cgroup=root, order="descendants_pre")
    assert sorted(pre) == sorted(ino.values())
    assert pre[0] == ino[root] and pre.index(ino[a]) < pre.index(ino[b])
    assert pre.index(ino[c]) > 0
    post = walk(cgroup=str(root), order=CgroupIterOrder.DESCENDANTS_POST)
    assert sorted(post) == sorted(ino.values())
    assert post[-1] == ino[root] and post.index(ino[b]) < post.index(ino[a])
    assert walk(cgroup_id=ino[b], order="self_only") == [ino[b]]
    up = walk(cgroup=b, order="ancestors_up")
    assert up[:3] == [ino[b], ino[a], ino[root]]
    with pytest.raises(AttachError, match="'sideways' is not one of self_only"):
        walk(cgroup=root, order="sideways")


# ----------------------------------------------------------------- sockmap links


@pytest.mark.parametrize("legacy", [False, True], ids=["link", "prog_attach"])
def test_sk_msg_on_a_sockmap_link(bpf_object: Callable[[str], Path], legacy: bool) -> None:
    if not legacy and not features.has_sockmap_link():
        pytest.skip("this kernel has no sockmap links (6.10+)")
    with BpfObject.open(bpf_object("attach_more")) as obj:
        for name, program in obj.programs.items():
            program.autoload = name == "drop_msgs"
        obj.load()
        senders = obj.maps["senders"]
        with socket.create_server(("127.0.0.1", 0)) as server:
            client = socket.create_connection(server.getsockname())
            peer, _ = server.accept()
            with client, peer:
                link = obj.programs["drop_msgs"].attach_sockmap(senders, legacy=legacy)
                with link:
                    if legacy:
                        with pytest.raises(NotSupportedError):
                            link.info()
                    else:
                        info = link.info()
                        assert info.type == bpf.LinkType.SOCKMAP
                        assert info.prog_id == obj.programs["drop_msgs"].info().id
                        row = next(r for r in introspect.links() if r.id == info.id)
                        assert row.details == {
                            "map_id": senders.info().id,
                            "attach_type": "sk_msg_verdict",
                        }
                    senders[1] = client.fileno()
                    with pytest.raises(PermissionError):
                        client.send(b"dropped by sk_msg")
                    assert obj.variables["msgs_dropped"].value == 1
                    del senders[1]
                senders[1] = client.fileno()  # back in the map, but the program is gone
                client.sendall(b"after")
                assert peer.recv(16) == b"after"
                del senders[1]


# ----------------------------------------------------------------- struct_ops


def test_prog_assoc_struct_ops_needs_its_kernel(objects: Callable[..., BpfObject]) -> None:
    obj = objects("iter_params", "each_task")
    if features.has_prog_assoc_struct_ops():
        pytest.skip("this kernel has PROG_ASSOC_STRUCT_OPS: see test_struct_ops.py")
    with pytest.raises(NotSupportedError, match=r"PROG_ASSOC_STRUCT_OPS \(Linux 6.19\)") as err:
        obj.programs["each_task"].assoc_struct_ops(object())  # refused before the map is read
    assert err.value.errno == errno.EOPNOTSUPP
