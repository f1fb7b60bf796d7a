"""The ``pylibbpf`` command against the kernel, with bpftool (another loader) as the oracle:
objects bpftool loaded show up with the same ids, names and instructions, map edits made
by one tool are seen by the other, links detach, struct_ops unregister."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pylibbpf import cli
from pylibbpf.loader import BpfObject

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool is not installed"),
]


def pylibbpf(*argv: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pylibbpf", *argv], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def as_json(*argv: str) -> Any:
    return json.loads(pylibbpf("--json", *argv))


def bpftool(*argv: str) -> Any:
    out = subprocess.run(["bpftool", "--json", *argv], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else []  # (nothing attached)


@pytest.fixture
def loaded_by_bpftool(bpf_object: Callable[[str], Path], pin_dir: Path) -> Iterator[dict[str, Any]]:
    """cli_target.bpf.o loaded and pinned by bpftool (libbpf), not by pylibbpf."""
    pin = pin_dir / f"cli_{uuid.uuid4().hex[:6]}"
    subprocess.run(["bpftool", "prog", "load", str(bpf_object("cli_target")), str(pin)], check=True)
    try:
        yield {**bpftool("prog", "show", "pinned", str(pin)), "pin": str(pin)}
    finally:
        pin.unlink(missing_ok=True)


def test_prog_list_and_show_match_bpftool(loaded_by_bpftool: dict[str, Any]) -> None:
    expected = loaded_by_bpftool
    listed = {row["id"]: row for row in as_json("prog", "list")}
    assert listed[expected["id"]]["name"] == expected["name"] == "cli_xdp"
    assert listed[expected["id"]]["type"] == expected["type"] == "xdp"
    assert listed[expected["id"]]["tag"] == expected["tag"]
    assert sorted(listed[expected["id"]]["map_ids"]) == sorted(expected["map_ids"])
    for target in (["name", "cli_xdp"], ["pinned", expected["pin"]], [str(expected["id"])]):
        (shown,) = as_json("prog", "show", *target)
        assert shown["id"] == expected["id"]
        assert shown["xlated_bytes"] == expected["bytes_xlated"]
        assert shown["jited_bytes"] == expected["bytes_jited"]
        assert shown["btf_id"] == expected["btf_id"]
    text = pylibbpf("prog", "list")
    assert f"{expected['id']}: xdp  name cli_xdp  tag {expected['tag']}" in text


def test_prog_dump_xlated_matches_bpftool(loaded_by_bpftool: dict[str, Any]) -> None:
    prog_id = str(loaded_by_bpftool["id"])
    ours = pylibbpf("prog", "dump", "xlated", prog_id).splitlines()
    theirs = subprocess.run(
        ["bpftool", "prog", "dump", "xlated", "id", prog_id], capture_output=True, text=True
    ).stdout
    instructions = [line for line in theirs.splitlines() if re.match(r"^\s*\d+: \(", line)]
    assert ours == instructions  # helper calls named, map references by id, atomics…
    assert any("call __htab_map_lookup_elem#" in line for line in ours)


def test_map_edits_are_seen_by_the_other_tool(loaded_by_bpftool: dict[str, Any]) -> None:
    map_ids = loaded_by_bpftool["map_ids"]
    maps = {row["id"]: row for row in as_json("map", "list")}
    (counts_id,) = [i for i in map_ids if maps[i]["name"] == "cli_counts"]
    assert maps[counts_id]["type"] == "hash"
    assert (maps[counts_id]["key"], maps[counts_id]["value"]) == (4, 16)

    value = [
        "7",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "60",
        "0",
        "0",
        "0",
        "0x70",
        "0x79",
        "0x6c",
        "0",
    ]
    pylibbpf("map", "update", "id", str(counts_id), "key", "60", "value", *value)
    looked_up = bpftool("map", "lookup", "id", str(counts_id), "key", "60", "0", "0", "0")
    assert looked_up["formatted"]["value"] == {"packets": 7, "last_len": 60, "tag": "pyl"}

    subprocess.run(
        ["bpftool", "map", "update", "id", str(counts_id), "key", "9", "0", "0", "0", "value"]
        + ["1"]
        + ["0"] * 7
        + ["9", "0", "0", "0", "0", "0", "0", "0"],
        check=True,
    )
    (found,) = as_json("map", "lookup", str(counts_id), "key", "9")
    assert found["value"] == "01 00 00 00 00 00 00 00 09 00 00 00 00 00 00 00"
    dumped = {row["key"]: row for row in as_json("map", "dump", "name", "cli_counts")}
    assert dumped["3c 00 00 00"]["formatted_value"] == {"packets": 7, "last_len": 60, "tag": "pyl"}
    assert dumped["09 00 00 00"]["formatted_key"] == 9
    assert "Found 2 elements" in pylibbpf("map", "dump", "id", str(counts_id))


def test_bad_targets_are_explained(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["prog", "show", "name", "no_such_program_xyz"]) == 1
    assert "0 programs are named 'no_such_program_xyz'" in capsys.readouterr().err
    assert cli.main(["map", "lookup", "id", "999999999", "key", "1"]) == 1
    assert "map" in capsys.readouterr().err


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
            pylibbpf("link", "detach", str(link_id))  # from another process
            assert bpftool("cgroup", "show", str(cgroup_dir)) == []  # the kernel agrees


def test_struct_ops_list_dump_unregister(bpf_object: Callable[[str], Path]) -> None:
    available = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")
    with BpfObject.open(bpf_object("tcp_cc_plain")) as obj:
        obj.load()
        obj.attach()
        assert "pylibbpf_plain" in available.read_text()
        (entry,) = [e for e in as_json("struct_ops", "list") if e["name"] == "plain"]
        assert entry["ops_name"] == "pylibbpf_plain"
        (dumped,) = as_json("struct_ops", "dump", "pylibbpf_plain")
        assert dumped["name"] == "pylibbpf_plain"
        pylibbpf("struct_ops", "unregister", str(entry["id"]))
        assert "pylibbpf_plain" not in available.read_text()


def test_btf_dump_and_feature_probe(bpf_object: Callable[[str], Path]) -> None:
    header = pylibbpf("btf", "dump", str(bpf_object("cli_target")), "--format", "c")
    assert re.search(r"struct counts \{\s+__u64 packets;", header)
    probes = as_json("feature", "probe")
    assert probes["map_types"]["hash"] and probes["prog_types"]["xdp"]
