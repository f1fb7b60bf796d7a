"""Generate a subskeleton module for a BPF library object: ``python -m pylibbpf gen
subskeleton LIB.o`` (libbpf's ``bpftool gen subskeleton``).

A library linked into several programs cannot know where the linker puts its variables
in each; its subskeleton declares only what the library has (its programs and maps by
name, its global and extern variables per section with their ctypes types) and finds
them at run time in the final object (``subskeleton.py``). Generation is pure and safe as
for skeletons (``skelgen``, ``skelsafe``): names from the object are checked identifiers
or quoted literals, and the finished module must be declarations only. The library is
not embedded: the final object holds it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from .btf import Btf
from .errors import ObjectError
from .loader.object import BpfObject
from .loader.variables import Variable
from .skelgen import (
    SkeletonOptions,
    _attributes,
    _def,
    _enums,
    _header,
    _parts_source,
    _struct_ops_source,
    _variable_ctype,
)
from .skelrender import Names, Renderer, annotation_line, camel, field_name, identifier
from .skelsafe import Ident, check_declarations, doc_text, is_ident, literal
from .subskeleton import Subskeleton, SubskeletonSection

__all__ = ["generate_subskeleton", "subskeleton_for_files"]

_SECTION_TAKEN = frozenset(dir(SubskeletonSection)) | {"section", "variables"}
_SUBSKELETON_TAKEN = frozenset(dir(Subskeleton)) | {"obj", "progs", "maps", "struct_ops"}


@dataclass
class _Section:
    name: str
    attribute: Ident
    variables: list[Variable]


def _sections(lib: BpfObject) -> list[_Section]:
    """The library's sections with global or extern variables (statics are private to
    it, and may share a name with another object's)."""
    sections = []
    taken = set(_SUBSKELETON_TAKEN)
    for name in [*lib.spec.datasecs, ".kconfig"]:
        variables = [
            v for v in lib.section_variables(name) if not v.static and is_ident(field_name(v.name))
        ]
        if variables:
            attribute = identifier(name.lstrip("."), taken)
            taken.add(attribute)
            sections.append(_Section(name, attribute, variables))
    return sections


def _section_source(renderer: Renderer, btf: Btf, section: _Section, name: Ident) -> str:
    entries: list[str] = []
    properties: list[str] = []
    used: set[str] = set()
    attributes: set[str] = set(_SECTION_TAKEN)
    for variable in section.variables:
        ctype = _variable_ctype(btf, variable)
        field = field_name(variable.name, used)
        used.add(field)
        source = renderer.source(ctype)
        entries.append(f"({literal(field)}, {literal(variable.name)}, {source})")
        kind = renderer.annotation(ctype)
        attribute = identifier(variable.name, attributes)
        attributes.add(attribute)
        properties.append(
            "\n".join(
                [
                    "    @property",
                    *_def(attribute, "self", kind),
                    f"        value: {kind} = self._get({literal(field)})",
                    "        return value",
                    "",
                    f"    @{attribute}.setter",
                    *_def(attribute, f"self, value: {kind}", "None"),
                    f"        self._set({literal(field)}, value)",
                ]
            )
        )
    lines = [
        f"class {name}(SubskeletonSection):",
        f'    """The library\'s ``{doc_text(section.name)}`` variables in the final object."""',
        "",
        "    __slots__ = ()",
        f"    section = {literal(section.name)}",
        *_variables_tuple(entries),
        "",
        "\n\n".join(properties),
    ]
    return "\n".join(lines)


def _variables_tuple(entries: list[str]) -> list[str]:
    """``variables = (...)`` laid out as ruff formats it (a lone entry on one line)."""
    if len(entries) == 1 and len(line := f"    variables = ({entries[0]},)") <= 88:
        return [line]
    return ["    variables = (", *(f"        {entry}," for entry in entries), "    )"]


def generate_subskeleton(lib: BpfObject, data: bytes, options: SkeletonOptions) -> str:
    """The subskeleton module's source for an opened library object."""
    btf = lib.spec.btf
    if btf is None:
        raise ObjectError(f"{lib.name}: a subskeleton needs the library's BTF (clang -g)")
    names = Names()
    if options.class_name is not None and not is_ident(options.class_name):
        raise ObjectError(f"--name {options.class_name!r} is not a Python class name")
    class_name = names.claim(options.class_name or f"{camel(lib.name)}Subskel")
    part_names = {part: names.claim(f"{class_name}{part}") for part in ("Programs", "Maps")}
    sections = _sections(lib)
    section_classes = {s.name: names.claim(f"{class_name}{camel(s.attribute)}") for s in sections}
    renderer = Renderer(names)
    blocks: list[str] = []
    roots = [(btf, v.type_id) for s in sections for v in s.variables]
    for enum_name, values in _enums(roots):
        lines = [f"class {names.claim(camel(enum_name))}(enum.IntEnum):"]
        members: set[str] = {"mro", "name", "value"}
        for value_name, value in values:
            member = identifier(value_name, members)
            members.add(member)
            lines.append(f"    {member} = {int(value)}")
        blocks.append("\n".join(lines))
    struct_ops_types: dict[Ident, tuple[str, Ident]] = {}
    for ops_name, ops in sorted(lib.spec.struct_ops.items()):
        with contextlib.suppress(ObjectError):  # no ctypes layout: left out
            taken = set(struct_ops_types) | set(dir(SubskeletonSection))
            attribute = identifier(ops_name, taken)
            struct_ops_types[attribute] = (ops_name, renderer.define(btf.ctype(ops.type_id)))
    section_blocks = [_section_source(renderer, btf, s, section_classes[s.name]) for s in sections]
    blocks.extend(renderer.blocks)
    blocks.extend(section_blocks)
    programs = _attributes(sorted(lib.programs))
    user_maps = sorted(n for n in lib.maps if not n.startswith("."))
    internal = sorted(n for n in lib.maps if n.startswith("."))
    maps = _attributes([*user_maps, *internal], strip=".")
    blocks.append(_parts_source(part_names["Programs"], "SkeletonPrograms", programs, "Program"))
    blocks.append(_parts_source(part_names["Maps"], "SkeletonMaps", maps, "Map"))
    if struct_ops_types:
        part_names["StructOps"] = names.claim(f"{class_name}StructOps")
        blocks.append(_struct_ops_source(part_names["StructOps"], struct_ops_types))
    blocks.append(_subskeleton_source(lib, class_name, part_names, sections, section_classes))
    body = "\n".join(
        f"{line}  # noqa: E501" if len(line) > 88 and "#" not in line else line
        for line in "\n\n\n".join(blocks).splitlines()
    )
    body += "\n"
    title = "BPF subskeleton for library"
    source = _header(lib, data, options, body, title, "gen subskeleton") + body
    check_declarations(source, f"subskeleton of {lib.name!r}")
    return source


def _subskeleton_source(
    lib: BpfObject,
    class_name: Ident,
    part_names: dict[str, Ident],
    sections: list[_Section],
    section_classes: dict[str, Ident],
) -> str:
    lines = [
        f"class {class_name}(Subskeleton):",
        f'    """Library ``{doc_text(lib.name)}``: bind it to an object that linked it in."""',
        "",
        f"    library_name = {literal(lib.name)}",
        f"    programs_class = {part_names['Programs']}",
        f"    maps_class = {part_names['Maps']}",
    ]
    if "StructOps" in part_names:
        lines.append(f"    struct_ops_class = {part_names['StructOps']}")
    if sections:
        lines.append("    sections: ClassVar[dict[str, type[SubskeletonSection]]] = {")
        lines.extend(
            f"        {literal(s.attribute)}: {section_classes[s.name]}," for s in sections
        )
        lines.append("    }")
    lines.append(f"    progs: {part_names['Programs']}")
    lines.append(f"    maps: {part_names['Maps']}")
    if "StructOps" in part_names:
        lines.append(f"    struct_ops: {part_names['StructOps']}")
    lines.extend(f"    {annotation_line(s.attribute, section_classes[s.name])}" for s in sections)
    return "\n".join(lines)


def subskeleton_for_files(
    paths: list[str], output: str | None = None, class_name: str | None = None
) -> str:
    """The subskeleton source for the library at ``paths`` (several objects are linked
    into one library first, as ``gen object`` would)."""
    if not paths:
        raise ObjectError("gen subskeleton: no library object given")
    data = b"".join(Path(p).read_bytes() for p in paths if Path(p).is_file())
    lib = BpfObject.open(paths if len(paths) > 1 else paths[0])
    command = ["python -m pylibbpf gen subskeleton", *(Path(p).name for p in paths)]
    if output:
        command += ["-o", Path(output).name]
    if class_name:
        command += ["--name", class_name]
    options = SkeletonOptions(class_name, None, " ".join(command))
    return generate_subskeleton(lib, data, options)
