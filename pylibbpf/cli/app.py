"""The command line's frame: the registry of commands, the global options (accepted
anywhere, as bpftool's are), bpftool's prefix matching (``pylibbpf p s`` is ``prog
show``), suggestions for misspelt words, output as text or bpftool's JSON, and errors.

A command is one registration and one handler::

    def register(commands: Commands) -> None:
        parser = commands.add("prog", "tracelog", _tracelog, "print the kernel's trace pipe")
        parser.add_argument("--count", type=int, help="stop after this many lines")

    def _tracelog(args: argparse.Namespace) -> int:
        ...
        return 0

``verb=None`` makes a top-level command (``pylibbpf vmtest ...``) whose parser the
registering module fills as it likes; with ``own_options=True`` the words after it are all
its own (``vmtest -j 2`` is its ``--jobs``, not the global ``--json``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from ..errors import BpfError

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any

Handler = Callable[[argparse.Namespace], int]

DESCRIPTION = """\
pylibbpf: look at and change what BPF holds in the kernel (programs, maps, links, BTF,
struct_ops), whoever loaded it, with bpftool's commands and JSON; generate skeletons;
run your tests on other kernels (vmtest). Commands and subcommands may be shortened to a
unique prefix (`pylibbpf p s` is `prog show`); the global options may come anywhere
(vmtest's own options follow it)."""

EPILOG = """\
objects are named as bpftool names them:
  PROG  ID | id ID | name NAME | tag TAG | pinned PATH
  MAP   ID | id ID | name NAME | pinned PATH
  LINK  ID | id ID | pinned PATH
  BTF   ID | id ID
examples:
  pylibbpf prog show name my_prog --json
  pylibbpf prog dump xlated id 42 linum
  pylibbpf map dump pinned /sys/fs/bpf/counts
  pylibbpf btf dump file prog.bpf.o format c
"""


class OnFirstUse:
    """A module imported when a command first uses it: building the parser imports every
    command group, and ``btf dump`` needs only the BTF half, so a command line pays for
    what it runs, not for every command it offers."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


class CliError(BpfError):
    """A usage mistake on the command line (a missing word, an unknown target…)."""


def _terminal_columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` gives it (``COLUMNS``, then
    stdout's terminal, else 80), without importing shutil (which imports bz2 and lzma)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse makes a formatter for every ``add_argument`` and, given no width, asks
    shutil for one: ~3 ms of imports on every command. This one asks ``os``."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        super().__init__(
            prog,
            indent_increment,
            max_help_position,
            _terminal_columns() - 2 if width is None else width,
        )


class _Parser(argparse.ArgumentParser):
    """Shows the usage and the error, as argparse does, but names the program as a whole."""

    def error(self, message: str) -> Any:  # -> NoReturn, typed loosely as argparse does
        self.print_usage(sys.stderr)
        self.exit(2, f"pylibbpf: {message}\n")


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """bpftool's global options. On subcommand parsers they have no default, so a value
    given before the subcommand is not reset by it (``-j prog show`` = ``prog show -j``)."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("global options (anywhere on the line)")
    group.add_argument(
        "-j", "--json", action="store_true", default=default(False), help="JSON output"
    )
    group.add_argument(
        "-p",
        "--pretty",
        action="store_true",
        default=default(False),
        help="human-readable JSON output (implies --json)",
    )
    group.add_argument(
        "-f",
        "--bpffs",
        action="store_true",
        default=default(False),
        help="show the bpffs paths objects are pinned at (prog/map/link show)",
    )
    group.add_argument(
        "-d",
        "--debug",
        action="store_true",
        default=default(False),
        help="print the Python traceback on errors",
    )
    group.add_argument(
        "-B",
        "--base-btf",
        metavar="FILE",
        default=default(None),
        help="base BTF for split BTF (btf dump file): a vmlinux BTF file",
    )
    group.add_argument("-V", "--version", action="version", version=_version())


def _version() -> str:
    from .. import __version__

    return f"pylibbpf {__version__} (Python {sys.version.split()[0]})"


class Commands:
    """Every command group (``prog``, ``map``…) and its verbs, as argparse parsers."""

    def __init__(self) -> None:
        self.parser = _Parser(
            prog="pylibbpf",
            description=DESCRIPTION,
            epilog=EPILOG,
            formatter_class=_Formatter,
        )
        _global_options(self.parser, top=True)
        self._top = self.parser.add_subparsers(dest="object", metavar="OBJECT", required=True)
        self._groups: dict[str, argparse._SubParsersAction[Any]] = {}
        self.verbs: dict[str, list[str]] = {}  # group -> verbs (and aliases), for matching
        self.own_options: set[str] = set()  # top-level commands that parse every word

    def group(self, name: str, help: str) -> None:
        """Declare a command group (``pylibbpf NAME VERB ...``)."""
        parser = self._top.add_parser(name, help=help, description=help, formatter_class=_Formatter)
        _global_options(parser, top=False)
        self._groups[name] = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)
        self.verbs[name] = []

    def add(
        self,
        group: str,
        verb: str | None,
        handler: Handler,
        help: str,
        *,
        aliases: Sequence[str] = (),
        epilog: str | None = None,
        own_options: bool = False,
    ) -> argparse.ArgumentParser:
        """Register ``pylibbpf GROUP VERB``; returns its parser for the arguments.
        ``own_options`` (top-level commands only): no global options after the command,
        whose options may then reuse their letters."""
        options: dict[str, Any] = {
            "help": help,
            "description": help,
            "epilog": epilog,
            "formatter_class": _Formatter,
        }
        if verb is None:
            parser = self._top.add_parser(group, **options)
            self.verbs[group] = []
            if own_options:
                self.own_options.add(group)
        else:
            if group not in self._groups or own_options:
                raise ValueError(f"command group {group!r} is not declared, or has verbs")
            parser = self._groups[group].add_parser(verb, aliases=list(aliases), **options)
            self.verbs[group] += [verb, *aliases]
        if not own_options:
            _global_options(parser, top=False)
        parser.set_defaults(func=handler)
        return parser

    def expand(self, argv: list[str]) -> list[str]:
        """Global options moved to the front (as getopt permutes bpftool's), unique
        prefixes of the group and verb replaced by the full words; an unknown word is an
        error that names the close matches."""
        words = command_words(argv)
        if words:
            command = _match(argv[words[0]], list(self.verbs), "command")
            if command in self.own_options:  # global options only before it
                return [*_globals_first(argv[: words[0]]), command, *argv[words[0] + 1 :]]
        out = _globals_first(argv)
        positions = command_words(out)
        if not positions:
            return out
        first = positions[0]
        out[first] = _match(out[first], list(self.verbs), "command")
        verbs = self.verbs[out[first]]
        if verbs and len(positions) > 1:
            second = positions[1]
            out[second] = _match(out[second], verbs, f"{out[first]} command")
        return out


FLAGS = {"-j", "--json", "-p", "--pretty", "-f", "--bpffs", "-d", "--debug"}
VALUED = {"-B", "--base-btf"}


def command_words(argv: list[str]) -> list[int]:
    """Where the words that are not options are (-B FILE takes a value: FILE is not one)."""
    return [
        i
        for i, word in enumerate(argv)
        if not word.startswith("-") and (i == 0 or argv[i - 1] not in VALUED)
    ]


def _globals_first(argv: list[str]) -> list[str]:
    """``prog show id 5 -j`` -> ``-j prog show id 5``: argparse stops matching a
    subcommand's options once its positional words are taken; bpftool does not."""
    front: list[str] = []
    rest: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--":
            rest += [word, *words]
            break
        if word in FLAGS or word.startswith(("--base-btf=", "--json=")):
            front.append(word)
        elif word in VALUED:
            front += [word, next(words, "")]
        elif len(word) > 2 and word[0] == "-" and word[1] != "-" and set(word[1:]) <= set("jpfd"):
            front.append(word)  # -jp
        else:
            rest.append(word)
    return front + rest


def _match(word: str, choices: list[str], what: str) -> str:
    if word in choices:
        return word
    prefixed = [choice for choice in choices if choice.startswith(word)]
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1:
        raise CliError(f"{what} {word!r} is ambiguous: {', '.join(sorted(prefixed))}")
    import difflib  # (on use: not part of every command's start)

    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else f" (one of {', '.join(choices)})"
    raise CliError(f"unknown {what} {word!r}{hint}")


# ----------------------------------------------------------------- output


def wants_json(args: argparse.Namespace) -> bool:
    """``--json`` or ``--pretty``."""
    return bool(args.json or args.pretty)


def print_json(args: argparse.Namespace, value: Any) -> None:
    """As bpftool: compact with ``--json``, indented with ``--pretty``."""
    import json  # (on use: not part of every command's start)

    if args.pretty:
        print(json.dumps(value, indent=4))
    else:
        print(json.dumps(value, separators=(",", ":")))


def emit(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    text: Callable[[dict[str, Any]], str],
    *,
    single: bool = False,
) -> None:
    """Rows as JSON (one object when ``single``, as bpftool prints one named object) or
    as text, one ``text(row)`` each."""
    if wants_json(args):
        print_json(args, rows[0] if single and len(rows) == 1 else rows)
    else:
        for row in rows:
            print(text(row))


# ----------------------------------------------------------------- running


def run(commands: Commands, argv: Sequence[str] | None) -> int:
    """Parse and run one command line; returns the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        words = commands.expand(words)
    except CliError as error:
        commands.parser.print_usage(sys.stderr)
        print(f"pylibbpf: {error}", file=sys.stderr)
        return 2
    args = commands.parser.parse_args(words)
    try:
        return int(args.func(args))
    except BpfError as error:
        if args.debug:
            import traceback  # (on use: not part of every command's start)

            traceback.print_exc()
        if wants_json(args):
            print_json(args, {"error": str(error)})
        print(f"pylibbpf: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into head & co.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
