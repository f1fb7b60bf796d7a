"""Generate a skeleton module for a BPF object: ``python -m pylibbpf gen skeleton``.

The output is Python source declaring the object's programs, maps, links and global data
with their types; ``skeleton.py`` does the work at run time. Layouts are not re-derived
here: the ctypes classes ``btf.ctype`` builds (and verifies against BTF) are rendered back
as source (``skelrender``), so a generated structure has exactly the offsets the BPF
program uses. A type ``--type`` asks for that is not in BTF (clang leaves out types used
only through a pointer cast) comes from the object's DWARF instead.

Pure and safe: parsing only, no syscalls, the same object and options always give the
same text, and nothing in the object becomes code (``skelsafe``: names are checked
identifiers or quoted literals, and the finished module is verified to be declarations
only). The object is embedded without its DWARF (``spec.strip``): ``.BTF.ext`` keeps the
line info verifier messages quote.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .btf import Btf, Kind
from .btf.dwarf import named_type
from .errors import ObjectError
from .loader.object import BpfObject
from .loader.variables import Variable
from .skeleton import (
    GlobalSection,
    Skeleton,
    SkeletonLinks,
    SkeletonMaps,
    SkeletonPrograms,
    SkeletonStructOps,
)
from .skelrender import (
    Names,
    Renderer,
    annotation_line,
    camel,
    field_name,
    fields_tuple,
    identifier,
)
from .skelsafe import Ident, check_declarations, doc_text, ident, is_ident, literal
from .spec.strip import strip_debug

__all__ = ["SkeletonOptions", "field_name", "generate", "skeleton_for_file"]

# What each generated class inherits: attributes there are not free for the object's names.
_PART_TAKEN = frozenset(dir(SkeletonPrograms)) | frozenset(dir(SkeletonMaps))
_PART_TAKEN |= frozenset(dir(SkeletonLinks)) | {"attached", "layout", "names", "obj", "raw"}
_PART_TAKEN |= {"section"}
_SECTION_TAKEN = frozenset(dir(GlobalSection)) | _PART_TAKEN
_SKELETON_TAKEN = frozenset(dir(Skeleton)) | {"obj", "progs", "maps", "links", "struct_ops"}
_OPS_TAKEN = frozenset(dir(SkeletonStructOps))
_ENUM_TAKEN = frozenset({"mro", "name", "value"})
# The runtime classes a generated module may derive from, by the module defining them.
_RUNTIME_BASES = {
    "pylibbpf.skeleton": [
        "GlobalSection",
        "Skeleton",
        "SkeletonLinks",
        "SkeletonMaps",
        "SkeletonPrograms",
        "SkeletonStructOps",
    ],
    "pylibbpf.subskeleton": ["Subskeleton", "SubskeletonSection"],
}


@dataclass(frozen=True)
class SkeletonOptions:
    """How ``gen skeleton`` writes a module: class name, embedded bytes or a path,
    the command for its header, extra types to generate."""

    class_name: str | None = None
    object_path: str | None = None  # reference this path instead of embedding the bytes
    command: str = ""  # how it was generated, for the header
    types: tuple[str, ...] = ()  # named BTF types to generate as well


def _def(name: Ident, params: str, returns: str) -> list[str]:
    """A method signature, split the way ruff formats one that is too long. C names
    (``CONFIG_HZ``) are kept as they are, against pep8-naming."""
    noqa = "  # noqa: N802" if name != name.lower() else ""
    line = f"    def {name}({params}) -> {returns}:"
    if len(line) <= 88:
        return [line + noqa]
    return [f"    def {name}({noqa}", f"        {params}", f"    ) -> {returns}:"]


def _natural(name: str) -> tuple[Any, ...]:
    """The order ruff wants ``__slots__`` in: CONSTANTS, Classes, the rest; digits as
    numbers."""
    group = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    parts = tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name) if p)
    return (group, tuple((isinstance(p, int), p) for p in parts))


@dataclass
class _Section:
    name: str
    attribute: Ident
    size: int
    variables: list[Variable]


def _sections(obj: BpfObject) -> list[_Section]:
    sections = []
    taken = set(_SKELETON_TAKEN)
    arena = [obj.spec.arena.name] if obj.spec.arena is not None else []
    for name in [*obj.spec.datasecs, ".kconfig", *arena]:
        # Function-scope statics (``func.___fmt``) are not part of the interface: padding.
        named = [v for v in obj.section_variables(name) if is_ident(field_name(v.name))]
        variables = sorted(named, key=lambda v: v.offset)
        if not variables:
            continue
        # __arena globals are ``skel.arena`` as in libbpf's skeletons (.addr_space.1).
        attribute = identifier("arena" if name in arena else name.lstrip("."), taken)
        taken.add(attribute)
        size = len(obj.section_memory(name))
        sections.append(_Section(name, attribute, size, variables))
    return sections


def _variable_ctype(btf: Btf, variable: Variable) -> Any:
    try:
        ctype = btf.ctype(variable.type_id)
    except ObjectError:
        return ctypes.c_uint8 * variable.size  # no ctypes layout: its raw bytes
    return ctype if ctypes.sizeof(ctype) == variable.size else ctypes.c_uint8 * variable.size


def _enums(roots: list[tuple[Btf, int]]) -> list[tuple[str, list[tuple[str, int]]]]:
    found: dict[str, list[tuple[str, int]]] = {}
    for btf, root in roots:
        for t in btf.walk(root):
            if t.kind in (Kind.ENUM, Kind.ENUM64) and t.name and t.values:
                found.setdefault(t.name, [(v.name, v.value) for v in t.values])
    return sorted(found.items())


def _extra_types(
    obj: BpfObject, btf: Btf | None, data: bytes, requested: tuple[str, ...]
) -> list[tuple[Btf, int]]:
    """Types to generate besides the globals': map keys and values, and the named types
    asked for (``--type event``: records a ring buffer carries have no map type), from
    BTF or, when clang left them out of it, from DWARF."""
    ids: list[tuple[Btf, int]] = []
    for spec in obj.spec.maps.values():
        if btf is not None:
            ids += [(btf, i) for i in (spec.key_type_id, spec.value_type_id) if i]
    for name in requested:
        ids.append(named_type(data, btf, name, obj.name))
    return ids


def generate(obj: BpfObject, data: bytes, options: SkeletonOptions) -> str:
    """The skeleton module's source for an opened (not loaded) object."""
    btf = obj.spec.btf
    names = Names()
    if options.class_name is not None and not is_ident(options.class_name):
        raise ObjectError(f"--name {options.class_name!r} is not a Python class name")
    class_name = names.claim(options.class_name or f"{camel(obj.name)}Skel")
    part_names = {
        part: names.claim(f"{class_name}{part}") for part in ("Programs", "Maps", "Links")
    }
    sections = _sections(obj) if btf is not None else []
    section_classes = {
        s.name: (
            names.claim(f"{class_name}{camel(s.attribute)}"),
            names.claim(f"_{camel(s.attribute)}Layout"),
        )
        for s in sections
    }
    renderer = Renderer(names)
    blocks: list[str] = []

    roots = [(btf, v.type_id) for s in sections for v in s.variables if btf is not None]
    extra = _extra_types(obj, btf, data, options.types)
    for enum_name, values in _enums(roots + extra):
        lines = [f"class {names.claim(camel(enum_name))}(enum.IntEnum):"]
        members: set[str] = set(_ENUM_TAKEN)
        for value_name, value in values:
            member = identifier(value_name, members)
            members.add(member)
            lines.append(f"    {member} = {int(value)}")
        blocks.append("\n".join(lines))

    for type_btf, type_id in extra:
        if type_btf.resolve(type_id).kind in (Kind.STRUCT, Kind.UNION):
            with contextlib.suppress(ObjectError):  # no ctypes layout: left out
                renderer.define(type_btf.ctype(type_btf.resolve(type_id).id))
    struct_ops_types: dict[Ident, tuple[str, Ident]] = {}  # attribute -> (variable, class)
    for ops_name, ops in sorted(obj.spec.struct_ops.items()):
        assert btf is not None
        with contextlib.suppress(ObjectError):  # no ctypes layout: left out
            attribute = identifier(ops_name, set(struct_ops_types) | _OPS_TAKEN)
            struct_ops_types[attribute] = (ops_name, renderer.define(btf.ctype(ops.type_id)))
    section_blocks = []
    for section in sections:
        assert btf is not None
        wrapper, layout = section_classes[section.name]
        section_blocks.append(_section_source(renderer, btf, section, wrapper, layout))
    blocks.extend(renderer.blocks)
    blocks.extend(section_blocks)

    programs = _attributes(sorted(obj.programs))
    user_maps = sorted(n for n in obj.maps if not n.startswith("."))
    internal = sorted(n for n in obj.maps if n.startswith("."))
    maps = _attributes([*user_maps, *internal], strip=".")
    linkable = [n for n in sorted(obj.programs) if obj.spec.programs[n].section_def is not None]
    links = _attributes(linkable + sorted(obj.spec.struct_ops))
    blocks.append(_parts_source(part_names["Programs"], "SkeletonPrograms", programs, "Program"))
    blocks.append(_parts_source(part_names["Maps"], "SkeletonMaps", maps, "Map"))
    blocks.append(_parts_source(part_names["Links"], "SkeletonLinks", links, "Link | None"))
    if struct_ops_types:
        part_names["StructOps"] = names.claim(f"{class_name}StructOps")
        blocks.append(_struct_ops_source(part_names["StructOps"], struct_ops_types))
    blocks.append(_skeleton_source(obj, class_name, part_names, sections, section_classes, options))
    if options.object_path is None:
        blocks.append(_embedded(class_name, _without_dwarf(data, obj.name)))
    body = "\n".join(
        f"{line}  # noqa: E501" if len(line) > 88 and "#" not in line else line
        for line in "\n\n\n".join(blocks).splitlines()
    )
    body += "\n"
    source = _header(obj, data, options, body) + body
    check_declarations(source, f"skeleton of {obj.name!r}")
    return source


def _without_dwarf(data: bytes, name: str) -> bytes:
    """The object to embed: DWARF dropped, or as it is when it cannot be rewritten."""
    try:
        return strip_debug(data, name)
    except ObjectError:
        return data


def _attributes(targets: list[str], strip: str = "") -> dict[Ident, str]:
    """Attribute -> name in the object, each attribute unique and none a base-class one."""
    out: dict[Ident, str] = {}
    for target in targets:
        out[identifier(target.lstrip(strip), set(out) | _PART_TAKEN)] = target
    return out


def _section_source(
    renderer: Renderer, btf: Btf, section: _Section, wrapper: Ident, layout: Ident
) -> str:
    fields: list[str] = []
    annotations: list[str] = []
    properties: list[str] = []
    taken = {field_name(v.name) for v in section.variables}  # padding must not reuse one
    attributes: set[str] = set(_SECTION_TAKEN)
    position = 0

    def pad(label: str, size: int) -> None:
        name = f"_pad0_{label}"
        while name in taken:
            name += "_"
        fields.append(f"({literal(name)}, ctypes.c_uint8 * {size})")

    used: set[str] = set()
    for index, variable in enumerate(section.variables):
        if variable.offset < position:
            continue  # overlapping (a static and a global at one offset): keep the first
        if variable.offset > position:
            pad(str(index), variable.offset - position)
        ctype = _variable_ctype(btf, variable)
        name = ident(field_name(variable.name, used))
        used.add(name)
        fields.append(f"({literal(name)}, {renderer.source(ctype)})")
        kind = renderer.annotation(ctype)
        annotations.append(annotation_line(name, kind))
        attribute = identifier(variable.name, attributes)
        attributes.add(attribute)
        properties.append(
            "\n".join(
                [
                    "    @property",
                    *_def(attribute, "self", kind),
                    f"        return self._view().{name}",
                    "",
                    f"    @{attribute}.setter",
                    *_def(attribute, f"self, value: {kind}", "None"),
                    f"        self._store({literal(name)}, value)",
                ]
            )
        )
        position = variable.offset + variable.size
    if section.size > position:
        pad("end", section.size - position)
    layout_lines = [f"class {layout}(CStruct):", "    _pack_ = 1", *fields_tuple(fields)]
    layout_lines.extend(f"    {line}" for line in annotations)
    wrapper_lines = [
        f"class {wrapper}(GlobalSection[{layout}]):",
        f'    """``{doc_text(section.name)}``: {_section_note(section.name)}"""',
        "",
        "    __slots__ = ()",
        f"    section = {literal(section.name)}",
        f"    layout = {layout}",
        "",
        "\n\n".join(properties),
    ]
    return "\n".join(layout_lines) + "\n\n\n" + "\n".join(wrapper_lines)


def _section_note(section: str) -> str:
    if section == ".addr_space.1":
        return "the __arena globals: their initial values, then the arena's last pages."
    if section.startswith(".rodata") or section == ".kconfig":
        return "settable before load, read-only (frozen) after."
    if section.startswith(".bss"):
        return "zeroed at load, then the live map memory."
    return "the initial values before load, then the live map memory."


def _parts_source(name: Ident, base: str, parts: dict[Ident, str], kind: str) -> str:
    lines = [f"class {name}({base}):"]
    if parts:
        if len(parts) == 1:
            lines.append(f"    __slots__ = ({literal(next(iter(parts)))},)")
        else:
            lines.append("    __slots__ = (")
            lines.extend(
                f"        {literal(attribute)}," for attribute in sorted(parts, key=_natural)
            )
            lines.append("    )")
        lines.append("    names: ClassVar[dict[str, str]] = {")
        lines.extend(
            f"        {literal(attribute)}: {literal(target)},"
            for attribute, target in parts.items()
        )
        lines.append("    }")
        lines.extend(f"    {annotation_line(attribute, kind)}" for attribute in parts)
    else:
        lines.append("    __slots__ = ()")
    return "\n".join(lines)


def _struct_ops_source(name: Ident, types: dict[Ident, tuple[str, Ident]]) -> str:
    lines = [
        f"class {name}(SkeletonStructOps):",
        '    """struct_ops variables: edit plain members (``name``...) before load."""',
        "",
        "    __slots__ = ()",
    ]
    for attribute, (variable, cls) in types.items():
        lines += [
            "",
            "    @property",
            *_def(attribute, "self", cls),
            f"        value: {cls} = self._value({literal(variable)})",
            "        return value",
        ]
    return "\n".join(lines)


def _skeleton_source(
    obj: BpfObject,
    class_name: Ident,
    part_names: dict[str, Ident],
    sections: list[_Section],
    section_classes: dict[str, tuple[Ident, Ident]],
    options: SkeletonOptions,
) -> str:
    lines = [
        f"class {class_name}(Skeleton):",
        f'    """BPF object ``{doc_text(obj.name)}``: open(), load(), attach(), destroy()."""',
        "",
        f"    object_name = {literal(obj.name)}",
    ]
    if options.object_path is not None:
        path_line = f"    object_path = {literal(options.object_path)}"
        if len(path_line) > 88:  # how ruff wraps a string that cannot be split
            path_line = f"    object_path = (\n        {literal(options.object_path)}\n    )"
        lines.append(path_line)
        lines.append("    generated_from = __file__")
    lines.append(f"    programs_class = {part_names['Programs']}")
    lines.append(f"    maps_class = {part_names['Maps']}")
    lines.append(f"    links_class = {part_names['Links']}")
    if "StructOps" in part_names:
        lines.append(f"    struct_ops_class = {part_names['StructOps']}")
    if sections:
        lines.append("    sections: ClassVar[dict[str, type[GlobalSection[Any]]]] = {")
        lines.extend(
            f"        {literal(s.attribute)}: {section_classes[s.name][0]}," for s in sections
        )
        lines.append("    }")
    lines.append(f"    progs: {part_names['Programs']}")
    lines.append(f"    maps: {part_names['Maps']}")
    lines.append(f"    links: {part_names['Links']}")
    if "StructOps" in part_names:
        lines.append(f"    struct_ops: {part_names['StructOps']}")
    lines.extend(
        f"    {annotation_line(s.attribute, section_classes[s.name][0])}" for s in sections
    )
    return "\n".join(lines)


def _embedded(class_name: Ident, data: bytes) -> str:
    text = base64.b64encode(data).decode()
    chunks = [text[i : i + 76] for i in range(0, len(text), 76)]
    body = "\n".join(f'    "{chunk}"' for chunk in chunks)
    return f"{class_name}.object_data = base64.b64decode(\n{body}\n)"


def _header(
    obj: BpfObject,
    data: bytes,
    options: SkeletonOptions,
    body: str,
    title: str = "BPF skeleton for",
    default_command: str = "gen skeleton",
) -> str:
    digest = hashlib.sha256(data).hexdigest()
    command = doc_text(options.command or f"python -m pylibbpf {default_command} {obj.name}.bpf.o")
    stdlib = [f"import {m}" for m in ("base64", "ctypes", "enum") if f"{m}." in body]
    typing = [name for name in ("Any", "ClassVar") if re.search(rf"\b{name}\b", body)]
    if typing:
        stdlib.append(f"from typing import {', '.join(typing)}")
    records = [n for n in ("BitField", "CStruct", "CUnion") if f"{n}(" in body or f"({n})" in body]
    pylibbpf = [
        *([f"from pylibbpf.btf.ctype import {', '.join(records)}"] if records else []),
        *(["from pylibbpf.link import Link"] if re.search(r": Link\b", body) else []),
        *(["from pylibbpf.maps import Map"] if re.search(r": Map\b", body) else []),
        *(["from pylibbpf.program import Program"] if re.search(r": Program\b", body) else []),
    ]
    for module, bases in _RUNTIME_BASES.items():
        used = [b for b in bases if f"{b}[" in body or f"({b})" in body]
        if used:
            pylibbpf += [f"from {module} import (", *(f"    {b}," for b in used), ")"]
    lines, line = [], "   "
    for word in command.split(" "):  # the shell command, wrapped to the line length
        if len(line) + len(word) > 82:
            lines.append(line + " \\")
            line = "       "
        line += f" {word}"
    docstring = [
        f'"""{title} ``{doc_text(obj.name)}``.',
        "",
        "Generated by pylibbpf: do not edit.",
        "",
        "Regenerate with:",
        *lines,
        line,
        "",
        f"Object sha256: {digest}",
        '"""',
    ]
    return "\n".join(
        [
            *docstring,
            "",
            "from __future__ import annotations",
            "",
            *stdlib,
            "",
            *pylibbpf,
            "",
            "",
            "",
        ]
    )


def skeleton_for_file(
    path: str,
    output: str | None = None,
    class_name: str | None = None,
    reference: bool = False,
    types: tuple[str, ...] = (),
) -> str:
    """The skeleton source for the object at ``path``; with ``reference`` the module loads
    the object from ``path`` (relative to ``output``) instead of embedding it."""
    data = Path(path).read_bytes() if Path(path).is_file() else b""
    obj = BpfObject.open(path)  # a clear ObjectError for unreadable or bad objects
    command = ["python -m pylibbpf gen skeleton", Path(path).name]
    if output:
        command += ["-o", Path(output).name]
    if class_name:
        command += ["--name", class_name]
    for type_name in types:
        command += ["--type", type_name]
    object_path = None
    if reference:
        command.append("--reference")
        base = Path(output).resolve().parent if output else Path.cwd()
        object_path = os.path.relpath(Path(path).resolve(), base)
    options = SkeletonOptions(class_name, object_path, " ".join(command), tuple(types))
    return generate(obj, data, options)
