"""The package's layers (ARCHITECTURE.md): imports point one way, the static import graph
has no cycles, and the pure half imports without the kernel half. Pure: no privileges."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pylibbpf

PACKAGE = Path(pylibbpf.__file__).parent

# Lowest first. A module may import from its own layer or lower ones.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "uapi, errors, logs",
        (
            "pylibbpf.uapi",
            "pylibbpf.uapi_extra",
            "pylibbpf.uapi_values",
            "pylibbpf.errors",
            "pylibbpf.logs",
            "pylibbpf.names",
            "pylibbpf.gcpause",
            "pylibbpf.records",
            "pylibbpf.record_inits",
        ),
    ),
    ("pure half", ("pylibbpf.btf", "pylibbpf.spec")),
    ("syscall", ("pylibbpf.syscall",)),
    (
        "kernel objects",
        (
            "pylibbpf.maps",
            "pylibbpf.arena",
            "pylibbpf.map_batch",
            "pylibbpf.map_elem",
            "pylibbpf.program",
            "pylibbpf.stream",
            "pylibbpf.lines",
            "pylibbpf.ringbuf",
            "pylibbpf.perfbuf",
            "pylibbpf.struct_ops",
            "pylibbpf.links",
        ),
    ),
    ("loader", ("pylibbpf.loader",)),
    (
        "tools",
        (
            "pylibbpf.skeleton",
            "pylibbpf.skelgen",
            "pylibbpf.skelrender",
            "pylibbpf.skelsafe",
            "pylibbpf.subskeleton",
            "pylibbpf.subskelgen",
            "pylibbpf.cli",
            "pylibbpf.introspect",
            "pylibbpf.__main__",
            "pylibbpf.trace",
            "pylibbpf.symbols",
            "pylibbpf.histogram",
            "pylibbpf.vmtest",
        ),
    ),
]
# The flat paths of before the layering: re-exports for old code, imported by nothing here.
COMPAT = {
    f"pylibbpf.{name}"
    for name in [
        *("object", "link", "insn", "disasm", "helpers", "features", "fd", "sysinfo"),
        *("perf", "elf", "sections", "core", "codec", "uprobe", "usdt", "btf.load"),
        "btf.upload",
    ]
}
# Imports inside functions that may point up (ARCHITECTURE.md names them): the Btf
# conveniences that read the running kernel's BTF when called.
LAZY_UPWARD = {("pylibbpf.btf.parse", "pylibbpf.syscall.kernel_btf")}


def layer_of(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer: add it to ARCHITECTURE.md and LAYERS")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, bool]]:
    """(imported pylibbpf module, whether the import is inside a function)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((alias.name, inner) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:
                    target = f"{base}.{alias.name}"
                    found.append((target if target in known else base, inner))
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return [(target, lazy) for target, lazy in found if target.startswith("pylibbpf")]


def graph() -> dict[str, list[tuple[str, bool]]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def test_every_import_points_down() -> None:
    wrong = []
    for source, targets in graph().items():
        if source in COMPAT or source == "pylibbpf":
            continue
        for target, lazy in targets:
            if target in COMPAT:
                wrong.append(f"{source} imports the compatibility module {target}")
            elif (
                target != "pylibbpf"
                and layer_of(target) > layer_of(source)
                and not (lazy and (source, target) in LAZY_UPWARD)
            ):
                wrong.append(
                    f"{source} ({LAYERS[layer_of(source)][0]}) imports {target} "
                    f"({LAYERS[layer_of(target)][0]})"
                )
    assert not wrong, "\n".join(wrong)


def test_module_level_imports_have_no_cycle() -> None:
    """Type-only imports count: a cycle means two modules that cannot be read apart."""
    edges = {
        source: sorted({t for t, lazy in targets if not lazy and t not in COMPAT})
        for source, targets in graph().items()
        if source not in COMPAT and source != "pylibbpf"
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in edges.get(node, []):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                walk(target)
        path.pop()
        state[node] = 2

    for node in edges:
        if node not in state:
            walk(node)


def test_the_pure_half_imports_without_the_kernel_half() -> None:
    pure = sorted(
        name
        for name in modules()
        if name != "pylibbpf" and name not in COMPAT and layer_of(name) <= 1
    )
    script = (
        "import importlib, sys\n"
        f"for name in {pure!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('pylibbpf'))\n"
        "print('\\n'.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
    )
    loaded = result.stdout.split()
    assert set(pure) <= set(loaded)
    kernel_half = [m for m in loaded if m != "pylibbpf" and layer_of(m) >= 2]
    assert not kernel_half, f"importing the pure half loaded {kernel_half}"


def test_import_pylibbpf_loads_no_submodule() -> None:
    """``import pylibbpf`` is cheap: the public names are imported on first use."""
    script = (
        "import sys, pylibbpf\n"
        "print(sorted(m for m in sys.modules if m.startswith('pylibbpf.')))\n"
        "pylibbpf.Btf\n"
        "print('pylibbpf.syscall' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
    )
    submodules, syscall_loaded = result.stdout.splitlines()
    assert submodules == "[]"
    assert syscall_loaded == "False"  # bpf.Btf is the pure half
