"""The ``pylibbpf`` command against the kernel, with bpftool (another loader and another
reader) as the oracle: on the same objects, ``prog/map/link/btf show --json`` carry every
key bpftool prints with the same value form, ``prog dump xlated`` prints the same source
lines and instructions, ``btf dump`` the same text; map edits made by one tool are seen by
the other, links detach, struct_ops unregister."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from pylibbpf import cli
from pylibbpf.loader import BpfObject
from pylibbpf.uapi import AttachType, LinkType, MapType, ProgType

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool is not installed"),
]


def pylibbpf(*argv: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pylibbpf", *argv], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def as_json(*argv: str) -> Any:
    return json.loads(pylibbpf("--json", *argv))


def bpftool_text(*argv: str) -> str:
    out = subprocess.run(["bpftool", *argv], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def bpftool(*argv: str) -> Any:
    out = bpftool_text("--json", *argv)
    return json.loads(out) if out.strip() else []  # (nothing attached)


# bpftool names types through its libbpf; a type newer than that libbpf is a number there
# and a name here ("tcx" where Debian's bpftool 7.1 prints 11).
ENUMS: dict[str, dict[str, Any]] = {
    "prog": {"type": ProgType},
    "map": {"type": MapType, "owner_prog_type": ProgType},
    "link": {"type": LinkType, "attach_type": AttachType, "prog_type": ProgType},
}


def assert_like_bpftool(kind: str, theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    """Every key bpftool printed is there, with the same value in the same form."""
    for key, value in theirs.items():
        assert key in ours, f"{kind}: bpftool prints {key!r}, pylibbpf does not: {ours}"
        mine = ours[key]
        if isinstance(value, int) and isinstance(mine, str) and key in ENUMS[kind]:
            assert mine == ENUMS[kind][key](value).name.lower()
            continue
        assert type(mine) is type(value), f"{kind} {key}: {mine!r} vs bpftool's {value!r}"
        if key == "loaded_at":  # both compute boot time + load time, each at its moment
            assert abs(mine - value) <= 1
        elif key in ("prog_ids", "map_ids"):
            assert sorted(mine) == sorted(value)
        else:
            assert mine == value, f"{kind} {key}: {mine!r} vs bpftool's {value!r}"


@pytest.fixture
def loaded_by_bpftool(bpf_object: Callable[[str], Path], pin_dir: Path) -> Iterator[dict[str, Any]]:
    """cli_target.bpf.o loaded and pinned by bpftool (libbpf), not by pylibbpf."""
    pin = pin_dir / f"cli_{uuid.uuid4().hex[:6]}"
    subprocess.run(["bpftool", "prog", "load", str(bpf_object("cli_target")), str(pin)], check=True)
    try:
        yield {**bpftool("prog", "show", "pinned", str(pin)), "pin": str(pin)}
    finally:
        pin.unlink(missing_ok=True)


def test_prog_show_matches_bpftool(loaded_by_bpftool: dict[str, Any]) -> None:
    expected = loaded_by_bpftool
    prog_id = str(expected["id"])
    listed = {row["id"]: row for row in as_json("prog", "list")}
    assert_like_bpftool("prog", bpftool("prog", "show", "id", prog_id), listed[expected["id"]])
    for target in (["name", "cli_xdp"], ["pinned", expected["pin"]], ["id", prog_id]):
        theirs, ours = bpftool("prog", "show", *target), as_json("prog", "show", *target)
        if target[0] == "name":  # others may load a cli_xdp too, even between the two calls
            ours, theirs = (
                next(
                    r
                    for r in (rows if isinstance(rows, list) else [rows])
                    if r["id"] == expected["id"]
                )
                for rows in (ours, theirs)
            )
        assert_like_bpftool("prog", theirs, ours)
    # --bpffs: where it is pinned, as bpftool -f finds it
    assert_like_bpftool(
        "prog",
        bpftool("-f", "prog", "show", "id", prog_id),
        as_json("-f", "prog", "show", "id", prog_id),
    )
    # the text too, line for line (loaded_at aside: seconds may tick between the two)
    ours = pylibbpf("prog", "show", "id", prog_id).splitlines()
    theirs = bpftool_text("prog", "show", "id", prog_id).splitlines()
    assert [re.sub(r"loaded_at \S+", "", line) for line in ours] == [
        re.sub(r"loaded_at \S+", "", line) for line in theirs
    ]
    assert as_json("prog", "show", "tag", expected["tag"])["id"] == expected["id"]


def test_map_show_dump_lookup_match_bpftool(loaded_by_bpftool: dict[str, Any]) -> None:
    for map_id in map(str, loaded_by_bpftool["map_ids"]):
        assert_like_bpftool(
            "map", bpftool("map", "show", "id", map_id), as_json("map", "show", "id", map_id)
        )
        assert pylibbpf("map", "show", "id", map_id) == bpftool_text("map", "show", "id", map_id)
        assert as_json("map", "dump", "id", map_id) == bpftool("map", "dump", "id", map_id)
    maps = {row["id"]: row for row in as_json("map", "list")}
    (counts,) = [i for i in loaded_by_bpftool["map_ids"] if maps[i]["name"] == "cli_counts"]
    pylibbpf("map", "update", "id", str(counts), "key", "9", "value", "hex", "05", *["00"] * 15)
    assert as_json("map", "lookup", "id", str(counts), "key", "9") == bpftool(
        "map", "lookup", "id", str(counts), "key", "9", "0", "0", "0"
    )


def test_btf_show_and_dump_match_bpftool(loaded_by_bpftool: dict[str, Any]) -> None:
    btf_id = str(loaded_by_bpftool["btf_id"])
    ours = {row["id"]: row for row in as_json("btf", "show")}
    for theirs in bpftool("btf", "show"):
        if theirs["id"] in ours and theirs["id"] == int(btf_id):  # (others come and go)
            assert_like_bpftool_btf(theirs, ours[theirs["id"]])
    assert_like_bpftool_btf(
        bpftool("btf", "show", "id", btf_id), as_json("btf", "show", "id", btf_id)
    )
    assert pylibbpf("btf", "dump", "id", btf_id) == bpftool_text("btf", "dump", "id", btf_id)
    assert as_json("btf", "dump", "id", btf_id) == bpftool("btf", "dump", "id", btf_id)
    assert pylibbpf("btf", "dump", "prog", "id", str(loaded_by_bpftool["id"])) == pylibbpf(
        "btf", "dump", "id", btf_id
    )
    assert as_json("prog", "show", str(loaded_by_bpftool["id"]))["id"] == loaded_by_bpftool["id"]


def assert_like_bpftool_btf(theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    for key, value in theirs.items():
        assert key in ours and type(ours[key]) is type(value), (key, ours)
        assert (sorted(ours[key]) if isinstance(value, list) else ours[key]) == (
            sorted(value) if isinstance(value, list) else value
        )


def test_prog_dump_xlated_matches_bpftool(loaded_by_bpftool: dict[str, Any]) -> None:
    prog_id = str(loaded_by_bpftool["id"])
    for options in ([], ["linum"], ["opcodes"]):
        ours = pylibbpf("prog", "dump", "xlated", "id", prog_id, *options)
        theirs = bpftool_text("prog", "dump", "xlated", "id", prog_id, *options)
        assert ours == theirs  # prototype, source lines, helper names, map ids, atomics…
        assert as_json("prog", "dump", "xlated", "id", prog_id, *options) == bpftool(
            "prog", "dump", "xlated", "id", prog_id, *options
        )
    assert "; __sync_fetch_and_add(&cli_runs, 1);" in ours
    assert "int cli_xdp(struct xdp_md * ctx):" in ours
    assert any("call __htab_map_lookup_elem#" in line for line in ours.splitlines())


def test_prog_dump_jited(loaded_by_bpftool: dict[str, Any], tmp_path: Path) -> None:
    prog_id = str(loaded_by_bpftool["id"])
    pylibbpf("prog", "dump", "jited", "id", prog_id, "file", str(tmp_path / "image"))
    assert len((tmp_path / "image").read_bytes()) == loaded_by_bpftool["bytes_jited"]
    (function,) = as_json("prog", "dump", "jited", "id", prog_id, "opcodes")
    assert function["proto"] == "int cli_xdp(struct xdp_md * ctx)"
    assert function["name"] == f"bpf_prog_{loaded_by_bpftool['tag']}_cli_xdp"  # kallsyms
    image = b"".join(bytes(int(b, 16) for b in insn["opcodes"]) for insn in function["insns"])
    assert image == (tmp_path / "image").read_bytes()
    # the same C lines, in the same order, as the translated dump shows
    xlated = [e["src"] for e in as_json("prog", "dump", "xlated", "id", prog_id) if "src" in e]
    jited = [insn["src"] for insn in function["insns"] if "src" in insn]
    assert jited and set(jited) <= set(xlated)
    if "operation" in function["insns"][0]:  # capstone is installed
        assert "\tpushq\t%rbp" in pylibbpf("prog", "dump", "jited", "id", prog_id)


def test_prog_dump_jited_without_capstone(
    loaded_by_bpftool: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "capstone", None)  # import capstone -> ImportError
    assert cli.main(["prog", "dump", "jited", "id", str(loaded_by_bpftool["id"])]) == 0
    out = capsys.readouterr()
    assert "capstone is not installed" in out.err
    assert re.search(r"^   0:\t([0-9a-f]{2} ){15}[0-9a-f]{2}$", out.out, re.M)


def test_global_options_anywhere_prefixes_and_suggestions(
    loaded_by_bpftool: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    prog_id = str(loaded_by_bpftool["id"])
    first = json.loads(pylibbpf("-j", "prog", "show", "id", prog_id))
    assert json.loads(pylibbpf("prog", "show", "id", prog_id, "--json"))["id"] == first["id"]
    assert json.loads(pylibbpf("prog", "--json", "show", "id", prog_id))["id"] == first["id"]
    pretty = pylibbpf("p", "s", "id", prog_id, "-p")  # prefixes, as bpftool's
    assert json.loads(pretty)["id"] == first["id"] and "\n    " in pretty
    assert pylibbpf("prog", "dump", "x", "id", prog_id) == pylibbpf(
        "prog", "dump", "xlated", prog_id
    )
    assert pylibbpf("--version").startswith("pylibbpf 0.")
    assert cli.main(["prog", "show", "name", "cli_xpd"]) == 1
    assert "no program is named 'cli_xpd'; did you mean cli_xdp?" in capsys.readouterr().err
    assert cli.main(["prgo", "show"]) == 2
    assert "unknown command 'prgo'; did you mean prog?" in capsys.readouterr().err
    assert cli.main(["map", "lookup", "id", "999999999", "key", "1"]) == 1
    assert "map id 999999999" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["map", "dump", "--help"])
    assert "MAP is ID | id ID | name NAME | pinned PATH" in capsys.readouterr().out


def test_link_show_matches_bpftool(
    bpf_object: Callable[[str], Path], cgroup_dir: Path, veth: tuple[str, str], pin_dir: Path
) -> None:
    from netns import in_netns

    with ExitStack() as stack:
        kinds = stack.enter_context(BpfObject.open(bpf_object("attach_kinds")))
        wanted = ("cg_drop_all", "list_tasks", "on_sys_enter_btf", "xdp_drop_all", "tc_drop_all")
        for name, program in kinds.programs.items():
            program.autoload = name in wanted
        kinds.load()
        # attach.bpf.o pins a map by name: under the test's own directory, not /sys/fs/bpf.
        tracepoints = stack.enter_context(
            BpfObject.open(bpf_object("attach"), pin_root_path=str(pin_dir))
        )
        for program in tracepoints.programs.values():
            program.autoload = "no_such" not in program.section
        tracepoints.load()
        programs = kinds.programs
        links = [
            programs["cg_drop_all"].attach_cgroup(cgroup_dir),
            programs["list_tasks"].attach_iter(),
            programs["on_sys_enter_btf"].attach(),
            *(p.attach() for p in tracepoints.programs.values() if p.loaded),
        ]
        with in_netns(veth[0]):  # the interface lives there; both tools look from there
            links += [
                programs["xdp_drop_all"].attach_xdp("vA"),
                programs["tc_drop_all"].attach_tc("vA", "ingress"),
            ]
            for link in links:
                stack.enter_context(link)
            seen = set()
            for link in links:
                info = link.info()
                assert isinstance(info.type, LinkType)  # a name, not a number
                theirs = bpftool("link", "show", "id", str(info.id))
                ours = as_json("link", "show", "id", str(info.id))
                assert_like_bpftool("link", theirs, ours)
                seen.add(ours["type"])
            listed = {row["id"]: row for row in as_json("link", "list")}
            assert all(link.info().id in listed for link in links)
        assert {"cgroup", "iter", "raw_tracepoint", "perf_event", "xdp", "tcx"} <= seen


def test_map_edits_are_seen_by_the_other_tool(loaded_by_bpftool: dict[str, Any]) -> None:
    map_ids = loaded_by_bpftool["map_ids"]
    maps = {row["id"]: row for row in as_json("map", "list")}
    (counts_id,) = [i for i in map_ids if maps[i]["name"] == "cli_counts"]
    assert maps[counts_id]["type"] == "hash"
    assert (maps[counts_id]["bytes_key"], maps[counts_id]["bytes_value"]) == (4, 16)

    value = ["7", "0", "0", "0", "0", "0", "0", "0", "60", "0", "0", "0", "0x70", "0x79", "0x6c"]
    pylibbpf("map", "update", "id", str(counts_id), "key", "60", "value", *value, "0")
    looked_up = bpftool("map", "lookup", "id", str(counts_id), "key", "60", "0", "0", "0")
    assert looked_up["formatted"]["value"] == {"packets": 7, "last_len": 60, "tag": "pyl"}

    subprocess.run(
        ["bpftool", "map", "update", "id", str(counts_id), "key", "9", "0", "0", "0", "value"]
        + ["1"]
        + ["0"] * 7
        + ["9", "0", "0", "0", "0", "0", "0", "0"],
        check=True,
    )
    found = as_json("map", "lookup", str(counts_id), "key", "9")
    assert found["value"] == ["0x01"] + ["0x00"] * 7 + ["0x09"] + ["0x00"] * 7
    dumped = {tuple(row["key"]): row for row in as_json("map", "dump", "id", str(counts_id))}
    assert dumped[("0x3c", "0x00", "0x00", "0x00")]["formatted"]["value"] == {
        "packets": 7,
        "last_len": 60,
        "tag": "pyl",
    }
    assert dumped[("0x09", "0x00", "0x00", "0x00")]["formatted"]["key"] == 9
    assert "Found 2 elements" in pylibbpf("map", "dump", "id", str(counts_id))
    pylibbpf("map", "delete", "id", str(counts_id), "key", "9")
    assert bpftool("map", "dump", "id", str(counts_id))[0]["formatted"]["key"] == 60


def test_link_list_and_detach(bpf_object: Callable[[str], Path], cgroup_dir: Path) -> None:
    with BpfObject.open(bpf_object("attach_kinds")) as obj:
        for name, program in obj.programs.items():
            program.autoload = name == "cg_drop_all"
        obj.load()
        program = obj.programs["cg_drop_all"]
        with program.attach_cgroup(cgroup_dir) as link:
            link_id = link.info().id
            listed = {row["id"]: row for row in as_json("link", "list")}
            assert listed[link_id]["type"] == "cgroup"
            assert listed[link_id]["prog_id"] == program.info().id
            # Who holds it (bpftool's pids column; Debian's bpftool is built without it):
            assert {"pid": os.getpid(), "comm": Path("/proc/self/comm").read_text().strip()} in (
                listed[link_id]["pids"]
            )
            attached = bpftool("cgroup", "show", str(cgroup_dir))
            assert [p["id"] for p in attached] == [program.info().id]
            pylibbpf("link", "detach", "id", str(link_id))  # from another process
            assert bpftool("cgroup", "show", str(cgroup_dir)) == []  # the kernel agrees


def test_struct_ops_list_dump_unregister(bpf_object: Callable[[str], Path]) -> None:
    available = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")
    with BpfObject.open(bpf_object("tcp_cc_plain")) as obj:
        obj.load()
        obj.attach()
        assert "pylibbpf_plain" in available.read_text()
        (entry,) = [e for e in as_json("struct_ops", "list") if e["name"] == "plain"]
        assert entry["ops_name"] == "pylibbpf_plain"
        dumped = as_json("struct_ops", "dump", "pylibbpf_plain")
        assert dumped["name"] == "pylibbpf_plain"
        pylibbpf("struct_ops", "unregister", str(entry["id"]))
        assert "pylibbpf_plain" not in available.read_text()


def test_btf_dump_file_and_feature_probe(bpf_object: Callable[[str], Path]) -> None:
    obj_path = str(bpf_object("cli_target"))
    header = pylibbpf("btf", "dump", "file", obj_path, "format", "c")
    assert re.search(r"struct counts \{\s+__u64 packets;", header)
    assert pylibbpf("btf", "dump", obj_path, "--format", "c") == header  # the older form
    assert pylibbpf("btf", "dump", "file", obj_path) == bpftool_text(
        "btf", "dump", "file", obj_path
    )
    probes = as_json("feature", "probe")
    assert probes["map_types"]["hash"] and probes["prog_types"]["xdp"]
    with BpfObject.open(bpf_object("attach_kinds")) as obj:  # does a tp_btf program load?
        for name, program in obj.programs.items():
            program.autoload = name == "on_sys_enter_btf"
        try:
            obj.load()
            tp_btf_loads = True
        except Exception:
            tp_btf_loads = False
    assert probes["prog_types"]["tracing"] == tp_btf_loads
