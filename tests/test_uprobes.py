"""uprobes, uretprobes, uprobe.multi and USDT, each checked for what the BPF program saw
in a real process (tests/programs/probed.c) or in this one (libc's getpid)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import compile_user_program

from pylibbpf.errors import AttachError, NotSupportedError
from pylibbpf.loader import BpfObject
from pylibbpf.spec.elfsym import parse_target, resolve
from pylibbpf.spec.usdt import parse_args, read_notes
from pylibbpf.syscall import perf as perf_module
from pylibbpf.syscall.system import kernel_version


@pytest.fixture(scope="module")
def probed() -> Path:
    return compile_user_program("probed")


class Probed:
    """probed.c, started and waiting for "go" so that probes can be attached first."""

    def __init__(self, binary: Path, rounds: int) -> None:
        self.process = subprocess.Popen(
            [str(binary), str(rounds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.pid = self.process.pid

    def run(self) -> tuple[int, int]:
        out, _ = self.process.communicate(b"go\n", timeout=30)
        total, guarded = out.split()
        return int(total), int(guarded)


@pytest.fixture
def uprobes(
    bpf_object: Callable[[str], Path], probed: Path
) -> Iterator[Callable[[int], BpfObject]]:
    """Open and load uprobes.bpf.o filtered to one process id."""
    opened: list[BpfObject] = []

    def load(tgid: int) -> BpfObject:
        obj = BpfObject.open(bpf_object("uprobes"))
        opened.append(obj)
        obj.variables["target_tgid"].value = tgid
        obj.load()
        return obj

    yield load
    for obj in opened:
        obj.close()


def value(obj: BpfObject, name: str) -> object:
    return obj.variables[name].value


# ----------------------------------------------------------------- privilege-free


def test_targets_and_usdt_notes_parse(probed: Path) -> None:
    assert parse_target("/usr/bin/x:main+0x10") == ("/usr/bin/x", "main", 16)
    assert parse_target("libc.so.6:malloc") == ("libc.so.6", "malloc", 0)
    assert parse_target("/bin/true:0x1234") == ("/bin/true", None, 0x1234)
    assert parse_args("-4@%edx -8@8(%rsp) 4@$77 1@-3(%r12)", "t") == (
        parse_args("-4@%edx", "t")[0],
        *parse_args("-8@8(%rsp)", "t"),
        *parse_args("4@$77", "t"),
        *parse_args("1@-3(%r12)", "t"),
    )
    reg, deref, const = parse_args("-4@%edx -8@8(%rsp) 4@$77", "t")
    assert (reg.kind, reg.register, reg.size) == ("reg", "dx", -4)
    assert (deref.kind, deref.register, deref.value, deref.size) == ("deref", "sp", 8, -8)
    assert (const.kind, const.value, const.size) == ("const", 77, 4)
    (sib,) = parse_args("-4@32(%rsp,%rax,4)", "t")
    assert (sib.kind, sib.register, sib.index, sib.scale, sib.value) == ("sib", "sp", "ax", 4, 32)
    with pytest.raises(NotSupportedError, match=r"8@counter\(%rip\)"):
        parse_args("8@counter(%rip)", "probe x")  # symbol-relative: not a form libbpf reads
    notes = {(n.provider, n.name): n for n in read_notes(str(probed))}
    assert set(notes) == {("pylibbpf", n) for n in ("tick", "guarded", "indexed")}
    assert len(notes["pylibbpf", "tick"].args) == 3
    assert all(n.semaphore for n in notes.values())
    path, offset = resolve(str(probed), "add_numbers")
    assert path == str(probed) and offset > 0


def test_bad_targets_are_named() -> None:
    with pytest.raises(AttachError, match="no-such-binary-here") as error:
        resolve("no-such-binary-here", "main")
    assert error.value.errno == errno.ENOENT
    with pytest.raises(AttachError, match=r"'no_such_function' not found in .*libc\.so\.6"):
        resolve("libc.so.6", "no_such_function")
    with pytest.raises(AttachError, match="/etc/passwd as an ELF"):
        resolve("/etc/passwd", "main")


# ----------------------------------------------------------------- kernel


@pytest.mark.root
def test_uprobe_and_uretprobe_see_arguments_and_return_value(
    uprobes: Callable[[int], BpfObject], probed: Path
) -> None:
    target = Probed(probed, rounds=4)
    obj = uprobes(target.pid)
    with (
        obj.programs["on_add"].attach_uprobe(str(probed), "add_numbers"),
        obj.programs["on_add_return"].attach_uprobe(str(probed), "add_numbers", retprobe=True),
    ):
        target.run()
    assert value(obj, "add_calls") == 4
    assert value(obj, "add_arg_sum") == sum(11 * i for i in range(1, 5))
    assert value(obj, "add_returns") == 4
    assert value(obj, "add_last_ret") == 44


@pytest.mark.root
def test_pid_filter_limits_the_probe_to_one_process(
    uprobes: Callable[[int], BpfObject], probed: Path
) -> None:
    watched, other = Probed(probed, rounds=2), Probed(probed, rounds=2)
    obj = uprobes(watched.pid)
    with obj.programs["on_add"].attach_uprobe(str(probed), "add_numbers", pid=other.pid):
        watched.run()
        other.run()
    assert value(obj, "add_calls") == 0  # the BPF filter wants `watched`, the probe `other`
    control = Probed(probed, rounds=2)
    obj = uprobes(control.pid)
    with obj.programs["on_add"].attach_uprobe(str(probed), "add_numbers", pid=control.pid):
        control.run()
    assert value(obj, "add_calls") == 2


@pytest.mark.root
def test_libc_probes_auto_attach_from_section_names(
    uprobes: Callable[[int], BpfObject],
) -> None:
    obj = uprobes(os.getpid())
    links = obj.attach()  # only the two libc sections name a target
    assert sorted(link.description.split(" on ")[1].split(" ")[0] for link in links) == [
        "uprobe",
        "uretprobe",
    ]
    for _ in range(5):
        os.getpid()
    assert value(obj, "getpid_calls") >= 5
    assert value(obj, "getpid_ret") == os.getpid()


@pytest.mark.root
@pytest.mark.skipif(kernel_version() < (6 << 16 | 6 << 8), reason="uprobe.multi needs 6.6+")
def test_uprobe_multi_covers_a_glob(uprobes: Callable[[int], BpfObject], probed: Path) -> None:
    target = Probed(probed, rounds=3)
    obj = uprobes(target.pid)
    with (
        obj.programs["on_multi"].attach_uprobe_multi(str(probed), "multi_*"),
        obj.programs["on_multi_return"].attach_uprobe_multi(
            str(probed), ["multi_one", "multi_two"], retprobe=True
        ),
    ):
        target.run()
    assert value(obj, "multi_calls") == 6
    assert value(obj, "multi_arg_sum") == 2 * (1 + 2 + 3)
    assert value(obj, "multi_returns") == 6


@pytest.mark.root
def test_usdt_arguments_cookie_and_semaphore(
    uprobes: Callable[[int], BpfObject], probed: Path
) -> None:
    target = Probed(probed, rounds=3)
    obj = uprobes(target.pid)
    with (
        obj.programs["on_tick"].attach_usdt(str(probed), "pylibbpf", "tick", cookie=0xFEED),
        obj.programs["on_guarded"].attach_usdt(str(probed), "pylibbpf", "guarded"),
    ):
        _, guarded_seen_by_program = target.run()
    ticks = obj.variables["tick_args"].value
    assert [list(row) for row in ticks] == [[1, -1000, 77], [2, -2000, 77], [3, -3000, 77]]
    assert value(obj, "usdt_ticks") == 3
    assert value(obj, "tick_argc") == 3
    assert value(obj, "tick_cookie") == 0xFEED
    # The kernel raised the semaphore while attached, so the guarded probe ran.
    assert guarded_seen_by_program == 3
    assert value(obj, "guarded") == 3
    assert Probed(probed, rounds=2).run()[1] == 0  # detached: the semaphore is back at 0


@pytest.mark.root
def test_usdt_errors_name_the_probe(uprobes: Callable[[int], BpfObject], probed: Path) -> None:
    obj = uprobes(1)
    with pytest.raises(AttachError, match=r"no such probe; it has pylibbpf:guarded, pylibbpf:ind"):
        obj.programs["on_tick"].attach_usdt(str(probed), "pylibbpf", "nope")


@pytest.mark.root
def test_legacy_tracefs_uprobe_when_the_pmu_is_missing(
    uprobes: Callable[[int], BpfObject], probed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pmu = perf_module.pmu

    def no_uprobe_pmu(name: str) -> tuple[int, int]:
        if name == "uprobe":
            raise NotSupportedError("no uprobe PMU (test)", errno.ENOTSUP)
        return real_pmu(name)

    monkeypatch.setattr(perf_module, "pmu", no_uprobe_pmu)
    events = Path("/sys/kernel/tracing/uprobe_events")
    if not events.exists():
        pytest.skip("tracefs uprobe_events is not available")
    target = Probed(probed, rounds=2)
    obj = uprobes(target.pid)
    with obj.programs["on_add"].attach_uprobe(str(probed), "add_numbers"):
        assert f"pylibbpf_{os.getpid()}_" in events.read_text()
        target.run()
    assert value(obj, "add_calls") == 2
    assert f"pylibbpf_{os.getpid()}_" not in events.read_text()  # removed with the link


@pytest.mark.root
def test_usdt_scaled_index_argument(bpf_object: Callable[[str], Path], probed: Path) -> None:
    """`-4@32(%rsp,%rax,4)`: read through the newer usdt.bpf.h (BPF_USDT_ARG_SIB)."""
    target = Probed(probed, rounds=3)
    with BpfObject.open(bpf_object("usdt_sib")) as obj:
        obj.variables["target_tgid"].value = target.pid
        obj.load()
        with obj.programs["on_indexed"].attach_usdt(str(probed), "pylibbpf", "indexed"):
            target.run()
        assert obj.variables["hits"].value == 3
        assert list(obj.variables["values"].value)[:3] == [101, 102, 103]  # table[i & 7]


@pytest.mark.root
def test_usdt_scaled_index_with_an_older_header_is_explained(
    uprobes: Callable[[int], BpfObject], probed: Path
) -> None:
    obj = uprobes(1)  # built with Debian's usdt.bpf.h (libbpf 1.1): no SIB argument kind
    with pytest.raises(NotSupportedError, match=r"base\+index\*scale.*BPF_USDT_ARG_SIB"):
        obj.programs["on_tick"].attach_usdt(str(probed), "pylibbpf", "indexed")
