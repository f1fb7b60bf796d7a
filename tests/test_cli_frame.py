"""The command line's frame, privilege-free: a verb is one registration and one handler,
global options work anywhere, unique prefixes expand, misspelt words get suggestions,
JSON is bpftool's (compact with -j, indented with -p)."""

from __future__ import annotations

import argparse
import json

import pytest

from pylibbpf import __version__, cli
from pylibbpf.cli.app import Commands, emit, run


def commands_with_a_test_verb(seen: list[argparse.Namespace]) -> Commands:
    commands = cli.build_parser()

    def handler(args: argparse.Namespace) -> int:
        seen.append(args)
        emit(args, [{"id": 1, "name": args.target}], lambda row: f"{row['id']}: {row['name']}")
        return 0

    parser = commands.add("prog", "echo", handler, "a verb another module registers")
    parser.add_argument("target")
    return commands


def test_a_registered_verb_runs_with_global_options_anywhere(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[argparse.Namespace] = []
    commands = commands_with_a_test_verb(seen)
    assert run(commands, ["prog", "echo", "x"]) == 0
    assert capsys.readouterr().out == "1: x\n"
    for argv in (
        ["-j", "prog", "echo", "x"],
        ["prog", "echo", "x", "--json"],
        ["prog", "-j", "echo", "x"],
        ["p", "ec", "x", "-j"],
    ):
        assert run(commands, argv) == 0
        assert capsys.readouterr().out == '[{"id":1,"name":"x"}]\n'  # bpftool's compact form
    assert run(commands, ["prog", "echo", "x", "-p"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"id": 1, "name": "x"}]
    assert all(args.func.__name__ == "handler" for args in seen)


def test_a_top_level_command_registers_without_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    commands = cli.build_parser()
    parser = commands.add("boot", None, lambda args: print(args.kernel) or 0, "VMs")
    parser.add_argument("--kernel", default="6.1")
    assert run(commands, ["boot", "--kernel", "6.12"]) == 0
    assert capsys.readouterr().out == "6.12\n"


def test_a_command_with_its_own_options_reuses_global_letters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """After such a command every word is its own: -j is its option, -- and what follows
    reach it untouched; global options still work before it."""
    commands = cli.build_parser()

    def handler(args: argparse.Namespace) -> int:
        print(args.jobs, args.rest, args.debug, args.json)
        return 0

    parser = commands.add("boot", None, handler, "VMs", own_options=True)
    parser.add_argument("-j", "--jobs", type=int, default=0)
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    assert run(commands, ["boot", "-j", "2", "--", "-p", "x"]) == 0
    assert capsys.readouterr().out == "2 ['--', '-p', 'x'] False False\n"
    assert run(commands, ["-d", "bo", "-j", "3"]) == 0  # a prefix, a global option before
    assert capsys.readouterr().out == "3 [] True False\n"
    with pytest.raises(ValueError, match="has verbs"):
        commands.add("prog", "x", handler, "a verb cannot own the options", own_options=True)


def test_misspelt_and_ambiguous_words_are_explained(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["prgo", "show"]) == 2
    assert "unknown command 'prgo'; did you mean prog?" in capsys.readouterr().err
    assert cli.main(["map", "l", "id", "1"]) == 2
    assert "map command 'l' is ambiguous: list, lookup" in capsys.readouterr().err
    assert cli.main(["map", "updat", "id", "1"]) == 1  # a prefix: `map update` ran
    assert "expected: MAP key DATA value VALUE" in capsys.readouterr().err
    assert cli.main(["btf", "shwo"]) == 2
    assert "did you mean show?" in capsys.readouterr().err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"pylibbpf {__version__} (Python ")
    with pytest.raises(SystemExit):
        cli.main(["prog", "dump", "--help"])
    help_text = capsys.readouterr().out
    assert "PROG is ID | id ID | name NAME | tag TAG | pinned PATH" in help_text
    assert "linum" in help_text and "capstone" in help_text


def test_a_command_named_in_full_registers_its_group_alone() -> None:
    """``pylibbpf btf dump ...`` builds the btf parsers only (a quick command should not
    import every group); a prefix, or no command, still gets every group."""
    full = cli.build_parser()
    assert set(full.verbs) == set(cli.COMMAND_MODULES)
    for command in cli.COMMAND_MODULES:
        alone = cli.parser_for(["-j", command, "x"])
        assert alone.verbs == {command: full.verbs[command]}
        assert alone.own_options == full.own_options & {command}
    for argv in (["b", "dump"], ["-B", "btf", "dump"], ["--json"], []):
        assert set(cli.parser_for(argv).verbs) == set(full.verbs)


@pytest.mark.parametrize(
    ("path", "cause"), [("/nonexistent/btf", "No such file or directory"), ("/", "Is a directory")]
)
def test_btf_dump_of_a_file_it_cannot_read_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], path: str, cause: str
) -> None:
    """A path that cannot be read: one line naming it and the cause, exit status 1 (it was
    a FileNotFoundError traceback)."""
    assert cli.main(["btf", "dump", "file", path, "format", "c"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"pylibbpf: cannot read BTF file {path!r}: {cause}\n"
