"""Generate a skeleton module for a BPF object: ``python -m pylibbpf gen skeleton``.

The output is Python source declaring the object's programs, maps, links and global data
with their types; ``skeleton.py`` does the work at run time. Layouts are not re-derived
here: the ctypes classes ``btf.ctype`` builds (and verifies against BTF) are rendered back
as source, so a generated structure has exactly the offsets the BPF program uses. Pure:
parsing only, no syscalls, and the same object and options always give the same text.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import json
import keyword
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .btf import Btf, Kind
from .btf.ctype import BitField
from .errors import ObjectError
from .loader.object import BpfObject
from .loader.variables import Variable

_SIMPLE: dict[Any, tuple[str, str]] = {  # ctypes type -> (source, annotation)
    ctypes.c_bool: ("ctypes.c_bool", "bool"),
    ctypes.c_char: ("ctypes.c_char", "bytes"),
    ctypes.c_float: ("ctypes.c_float", "float"),
    ctypes.c_double: ("ctypes.c_double", "float"),
    ctypes.c_longdouble: ("ctypes.c_longdouble", "float"),
}
for _bits in (8, 16, 32, 64):
    for _sign in ("", "u"):
        _name = f"c_{_sign}int{_bits}"
        _SIMPLE[getattr(ctypes, _name)] = (f"ctypes.{_name}", "int")

# Names the generated module imports or its base classes define.
_MODULE_NAMES = {
    "Any",
    "BitField",
    "ClassVar",
    "GlobalSection",
    "Link",
    "Map",
    "Program",
    "Skeleton",
    "SkeletonLinks",
    "SkeletonMaps",
    "SkeletonPrograms",
    "SkeletonStructOps",
    "base64",
    "ctypes",
    "enum",
}
_PART_ATTRIBUTES = {"names", "attached", "raw", "section", "layout", "obj"}


@dataclass(frozen=True)
class SkeletonOptions:
    class_name: str | None = None
    object_path: str | None = None  # reference this path instead of embedding the bytes
    command: str = ""  # how it was generated, for the header
    types: tuple[str, ...] = ()  # named BTF types to generate as well


def _q(text: str) -> str:
    """A string literal the way ruff formats it (double quotes)."""
    return json.dumps(text)


def _def(name: str, params: str, returns: str) -> list[str]:
    """A method signature, split the way ruff formats one that is too long. C names
    (``CONFIG_HZ``) are kept as they are, against pep8-naming."""
    noqa = "  # noqa: N802" if name != name.lower() else ""
    line = f"    def {name}({params}) -> {returns}:"
    if len(line) <= 88:
        return [line + noqa]
    return [f"    def {name}({noqa}", f"        {params}", f"    ) -> {returns}:"]


def _annotation_line(name: str, annotation: str) -> str:
    """``name: annotation``, keeping C's names against the linters that would object."""
    codes = []
    if name.lower() != name and name.lstrip("_")[:1].islower():
        codes.append("N815")  # mixedCase in a class
    if name in ("l", "O", "I"):
        codes.append("E741")
    return f"{name}: {annotation}" + (f"  # noqa: {', '.join(codes)}" if codes else "")


def _natural(name: str) -> tuple[Any, ...]:
    """The order ruff wants ``__slots__`` in: CONSTANTS, Classes, the rest; digits as
    numbers."""
    group = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    parts = tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name) if p)
    return (group, tuple((isinstance(p, int), p) for p in parts))


def field_name(name: str) -> str:
    """A C member name as a ctypes field: ``in`` and ``global`` get a trailing ``_``
    (ctypes fields are found by position, so the name is ours to choose)."""
    return f"{name}_" if keyword.iskeyword(name) else name


def camel(name: str) -> str:
    """``task_struct`` → ``TaskStruct``: a C name as a Python class name."""
    parts = [part for part in re.split(r"[^0-9A-Za-z]+", name) if part]
    text = "".join(part[0].upper() + part[1:] for part in parts) or "Anon"
    return f"T{text}" if text[0].isdigit() else text


def identifier(name: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A C or section name as a Python attribute: not a keyword, not a reserved name."""
    text = re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_") or "anon"
    if text[0].isdigit():
        text = f"_{text}"
    while keyword.iskeyword(text) or text in taken:
        text += "_"
    return text


class _Names:
    """Unique module-level class names."""

    def __init__(self) -> None:
        self.taken = set(_MODULE_NAMES)

    def claim(self, wanted: str) -> str:
        name, counter = wanted, 2
        while name in self.taken or keyword.iskeyword(name):
            name, counter = f"{wanted}{counter}", counter + 1
        self.taken.add(name)
        return name


class _Renderer:
    """ctypes types → source, with each structure defined once, before its first use."""

    def __init__(self, names: _Names) -> None:
        self.names = names
        self.defined: dict[Any, str] = {}
        self.blocks: list[str] = []

    def source(self, ctype: Any) -> str:
        if ctype in _SIMPLE:
            return _SIMPLE[ctype][0]
        if issubclass(ctype, ctypes.Array):
            return f"{self.source(ctype._type_)} * {ctype._length_}"
        return self.define(ctype)

    def element_type(self, ctype: Any) -> str:
        """The ctypes class as a typing expression (``ctypes.Array[ctypes.c_uint32]``)."""
        if ctype in _SIMPLE:
            return _SIMPLE[ctype][0]
        if issubclass(ctype, ctypes.Array):
            return f"ctypes.Array[{self.element_type(ctype._type_)}]"
        return self.define(ctype)

    def annotation(self, ctype: Any) -> str:
        """What reading a member of this type gives back in Python."""
        if ctype in _SIMPLE:
            return _SIMPLE[ctype][1]
        if issubclass(ctype, ctypes.Array) and ctype._type_ is ctypes.c_char:
            return "bytes"
        return self.element_type(ctype)

    def define(self, record: Any) -> str:
        if record in self.defined:
            return self.defined[record]
        if not issubclass(record, ctypes.Structure | ctypes.Union):
            raise ObjectError(f"no source form for ctypes type {record!r}")
        name = self.names.claim(camel(record.__name__))
        self.defined[record] = name
        fields = [self._field(field) for field in record._fields_]
        base = "ctypes.Structure" if issubclass(record, ctypes.Structure) else "ctypes.Union"
        lines = [f"class {name}({base}):"]
        if "_pack_" in record.__dict__:
            lines.append(f"    _pack_ = {record._pack_}")
        anonymous = list(record.__dict__.get("_anonymous_", ()))
        if len(anonymous) == 1:
            lines.append(f"    _anonymous_ = ({_q(anonymous[0])},)")
        elif anonymous:  # ruff's format: a magic trailing comma keeps one per line
            lines.append("    _anonymous_ = (")
            lines.extend(f"        {_q(a)}," for a in anonymous)
            lines.append("    )")
        lines.append("    _fields_ = [")
        lines.extend(f"        {field}," for field in fields)
        lines.append("    ]")
        lines.extend(f"    {line}" for line in self._annotations(record, anonymous))
        for attribute, value in record.__dict__.items():
            if isinstance(value, BitField):
                lines.append(
                    f"    {field_name(attribute)} = BitField({_q(value.storage)}, {value.shift}, "
                    f"{value.bits}, {value.signed})"
                )
        self.blocks.append("\n".join(lines))
        return name

    def _field(self, field: tuple[Any, ...]) -> str:
        name, ctype, *bits = field
        suffix = f", {bits[0]}" if bits else ""
        return f"({_q(field_name(name))}, {self.source(ctype)}{suffix})"

    def _annotations(self, record: Any, anonymous: list[str]) -> list[str]:
        lines = []
        for name, ctype, *_ in record._fields_:
            if name.startswith(("_pad", "_bits")):
                continue
            if not re.fullmatch(r"_anon\d+", name):  # ours, not C's: left unannotated
                lines.append(_annotation_line(field_name(name), self.annotation(ctype)))
            if name in anonymous:  # ctypes promotes the members of anonymous members
                lines.extend(self._annotations(ctype, list(ctype.__dict__.get("_anonymous_", ()))))
        return lines


@dataclass
class _Section:
    name: str
    attribute: str
    size: int
    variables: list[Variable]


def _sections(obj: BpfObject) -> list[_Section]:
    by_section: dict[str, list[Variable]] = {}
    for variable in obj.variables.values():
        by_section.setdefault(variable.section, []).append(variable)
    sections = []
    taken = {"obj", "progs", "maps", "links"}
    for name in [*obj.spec.datasecs, ".kconfig"]:
        # Function-scope statics (``func.___fmt``) are not part of the interface: padding.
        named = [v for v in by_section.get(name, []) if v.name.isidentifier()]
        variables = sorted(named, key=lambda v: v.offset)
        if not variables:
            continue
        attribute = identifier(name.lstrip("."), taken)
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


def _enums(btf: Btf, roots: list[int]) -> list[tuple[str, list[tuple[str, int]]]]:
    found: dict[str, list[tuple[str, int]]] = {}
    for root in roots:
        for t in btf.walk(root):
            if t.kind in (Kind.ENUM, Kind.ENUM64) and t.name and t.values:
                found.setdefault(t.name, [(v.name, v.value) for v in t.values])
    return sorted(found.items())


def _extra_types(obj: BpfObject, btf: Btf, requested: tuple[str, ...]) -> list[int]:
    """Type ids to generate besides the globals': map keys and values, and the named types
    asked for (``--type event``: records a ring buffer carries have no map type)."""
    ids = []
    for spec in obj.spec.maps.values():
        ids += [type_id for type_id in (spec.key_type_id, spec.value_type_id) if type_id]
    for name in requested:
        matches = [
            t.id
            for t in btf.find_all(name)
            if t.kind in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.TYPEDEF)
        ]
        if not matches:
            raise ObjectError(
                f"{obj.name}: no struct, union, enum or typedef named {name!r} in its BTF "
                "(is it used by the program, and compiled with -g?)"
            )
        ids.append(matches[0])
    return ids


def generate(obj: BpfObject, data: bytes, options: SkeletonOptions) -> str:
    """The skeleton module's source for an opened (not loaded) object."""
    btf = obj.spec.btf
    names = _Names()
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
    renderer = _Renderer(names)
    blocks: list[str] = []

    roots = [v.type_id for s in sections for v in s.variables]
    extra = _extra_types(obj, btf, options.types) if btf is not None else []
    for enum_name, values in _enums(btf, roots + extra) if btf is not None else []:
        lines = [f"class {names.claim(camel(enum_name))}(enum.IntEnum):"]
        members: set[str] = set()
        for value_name, value in values:
            member = identifier(value_name, members)
            members.add(member)
            lines.append(f"    {member} = {value}")
        blocks.append("\n".join(lines))

    for type_id in extra:
        assert btf is not None
        if btf.resolve(type_id).kind in (Kind.STRUCT, Kind.UNION):
            with contextlib.suppress(ObjectError):  # no ctypes layout: left out
                renderer.define(btf.ctype(btf.resolve(type_id).id))
    struct_ops_types: dict[str, tuple[str, str]] = {}  # attribute -> (variable, class)
    for ops_name, ops in sorted(obj.spec.struct_ops.items()):
        assert btf is not None
        with contextlib.suppress(ObjectError):  # no ctypes layout: left out
            attribute = identifier(ops_name, set(struct_ops_types))
            struct_ops_types[attribute] = (ops_name, renderer.define(btf.ctype(ops.type_id)))
    section_blocks = []
    for section in sections:
        assert btf is not None
        wrapper, layout = section_classes[section.name]
        section_blocks.append(_section_source(renderer, btf, section, wrapper, layout))
    blocks.extend(renderer.blocks)
    blocks.extend(section_blocks)

    programs = {identifier(n, _PART_ATTRIBUTES): n for n in sorted(obj.programs)}
    user_maps = sorted(n for n in obj.maps if not n.startswith("."))
    internal = sorted(n for n in obj.maps if n.startswith("."))
    maps: dict[str, str] = {}
    for map_name in [*user_maps, *internal]:
        maps[identifier(map_name.lstrip("."), set(maps) | _PART_ATTRIBUTES)] = map_name
    linkable = [n for n in sorted(obj.programs) if obj.spec.programs[n].section_def is not None]
    linkable += sorted(obj.spec.struct_ops)
    links: dict[str, str] = {}
    for link_name in linkable:
        links[identifier(link_name, set(links) | _PART_ATTRIBUTES)] = link_name
    blocks.append(_parts_source(part_names["Programs"], "SkeletonPrograms", programs, "Program"))
    blocks.append(_parts_source(part_names["Maps"], "SkeletonMaps", maps, "Map"))
    blocks.append(_parts_source(part_names["Links"], "SkeletonLinks", links, "Link | None"))
    if struct_ops_types:
        part_names["StructOps"] = names.claim(f"{class_name}StructOps")
        blocks.append(_struct_ops_source(part_names["StructOps"], struct_ops_types))
    blocks.append(_skeleton_source(obj, class_name, part_names, sections, section_classes, options))
    if options.object_path is None:
        blocks.append(_embedded(class_name, data))
    body = "\n".join(
        f"{line}  # noqa: E501" if len(line) > 88 and "#" not in line else line
        for line in "\n\n\n".join(blocks).splitlines()
    )
    body += "\n"
    return _header(obj, data, options, body) + body


def _section_source(
    renderer: _Renderer, btf: Btf, section: _Section, wrapper: str, layout: str
) -> str:
    fields: list[str] = []
    annotations: list[str] = []
    properties: list[str] = []
    position = 0
    for index, variable in enumerate(section.variables):
        if variable.offset < position:
            continue  # overlapping (a static and a global at one offset): keep the first
        if variable.offset > position:
            fields.append(f'("_pad{index}", ctypes.c_uint8 * {variable.offset - position})')
        ctype = _variable_ctype(btf, variable)
        name = field_name(variable.name)
        fields.append(f"({_q(name)}, {renderer.source(ctype)})")
        kind = renderer.annotation(ctype)
        annotations.append(_annotation_line(name, kind))
        attribute = identifier(variable.name, _PART_ATTRIBUTES)
        properties.append(
            "\n".join(
                [
                    "    @property",
                    *_def(attribute, "self", kind),
                    f"        return self._view().{name}",
                    "",
                    f"    @{attribute}.setter",
                    *_def(attribute, f"self, value: {kind}", "None"),
                    f"        self._store({_q(name)}, value)",
                ]
            )
        )
        position = variable.offset + variable.size
    if section.size > position:
        fields.append(f'("_pad_end", ctypes.c_uint8 * {section.size - position})')
    layout_lines = [f"class {layout}(ctypes.Structure):", "    _pack_ = 1", "    _fields_ = ["]
    layout_lines.extend(f"        {field}," for field in fields)
    layout_lines.append("    ]")
    layout_lines.extend(f"    {line}" for line in annotations)
    wrapper_lines = [
        f"class {wrapper}(GlobalSection[{layout}]):",
        f'    """``{section.name}``: {_section_note(section.name)}"""',
        "",
        "    __slots__ = ()",
        f"    section = {_q(section.name)}",
        f"    layout = {layout}",
        "",
        "\n\n".join(properties),
    ]
    return "\n".join(layout_lines) + "\n\n\n" + "\n".join(wrapper_lines)


def _section_note(section: str) -> str:
    if section.startswith(".rodata") or section == ".kconfig":
        return "settable before load, read-only (frozen) after."
    if section.startswith(".bss"):
        return "zeroed at load, then the live map memory."
    return "the initial values before load, then the live map memory."


def _parts_source(name: str, base: str, parts: dict[str, str], kind: str) -> str:
    lines = [f"class {name}({base}):"]
    if parts:
        if len(parts) == 1:
            lines.append(f"    __slots__ = ({_q(next(iter(parts)))},)")
        else:
            lines.append("    __slots__ = (")
            lines.extend(f"        {_q(attribute)}," for attribute in sorted(parts, key=_natural))
            lines.append("    )")
        lines.append("    names: ClassVar[dict[str, str]] = {")
        lines.extend(
            f"        {_q(attribute)}: {_q(target)}," for attribute, target in parts.items()
        )
        lines.append("    }")
        lines.extend(f"    {_annotation_line(attribute, kind)}" for attribute in parts)
    else:
        lines.append("    __slots__ = ()")
    return "\n".join(lines)


def _struct_ops_source(name: str, types: dict[str, tuple[str, str]]) -> str:
    lines = [
        f"class {name}(SkeletonStructOps):",
        '    """struct_ops variables: edit plain members (``name``…) before load."""',
        "",
        "    __slots__ = ()",
    ]
    for attribute, (variable, cls) in types.items():
        lines += [
            "",
            "    @property",
            *_def(attribute, "self", cls),
            f"        value: {cls} = self._value({_q(variable)})",
            "        return value",
        ]
    return "\n".join(lines)


def _skeleton_source(
    obj: BpfObject,
    class_name: str,
    part_names: dict[str, str],
    sections: list[_Section],
    section_classes: dict[str, tuple[str, str]],
    options: SkeletonOptions,
) -> str:
    lines = [
        f"class {class_name}(Skeleton):",
        f'    """BPF object ``{obj.name}``: open(), load(), attach(), destroy()."""',
        "",
        f"    object_name = {_q(obj.name)}",
    ]
    if options.object_path is not None:
        path_line = f"    object_path = {_q(options.object_path)}"
        if len(path_line) > 88:  # how ruff wraps a string that cannot be split
            path_line = f"    object_path = (\n        {_q(options.object_path)}\n    )"
        lines.append(path_line)
        lines.append("    generated_from = __file__")
    lines.append(f"    programs_class = {part_names['Programs']}")
    lines.append(f"    maps_class = {part_names['Maps']}")
    lines.append(f"    links_class = {part_names['Links']}")
    if "StructOps" in part_names:
        lines.append(f"    struct_ops_class = {part_names['StructOps']}")
    if sections:
        lines.append("    sections: ClassVar[dict[str, type[GlobalSection[Any]]]] = {")
        lines.extend(f"        {_q(s.attribute)}: {section_classes[s.name][0]}," for s in sections)
        lines.append("    }")
    lines.append(f"    progs: {part_names['Programs']}")
    lines.append(f"    maps: {part_names['Maps']}")
    lines.append(f"    links: {part_names['Links']}")
    if "StructOps" in part_names:
        lines.append(f"    struct_ops: {part_names['StructOps']}")
    lines.extend(
        f"    {_annotation_line(s.attribute, section_classes[s.name][0])}" for s in sections
    )
    return "\n".join(lines)


def _embedded(class_name: str, data: bytes) -> str:
    text = base64.b64encode(data).decode()
    chunks = [text[i : i + 76] for i in range(0, len(text), 76)]
    body = "\n".join(f'    "{chunk}"' for chunk in chunks)
    return f"{class_name}.object_data = base64.b64decode(\n{body}\n)"


def _header(obj: BpfObject, data: bytes, options: SkeletonOptions, body: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    command = options.command or f"python -m pylibbpf gen skeleton {obj.name}.bpf.o"
    stdlib = [f"import {m}" for m in ("base64", "ctypes", "enum") if f"{m}." in body]
    typing = [name for name in ("Any", "ClassVar") if re.search(rf"\b{name}\b", body)]
    if typing:
        stdlib.append(f"from typing import {', '.join(typing)}")
    bases = [
        "GlobalSection",
        "Skeleton",
        "SkeletonLinks",
        "SkeletonMaps",
        "SkeletonPrograms",
        "SkeletonStructOps",
    ]
    pylibbpf = [
        *(["from pylibbpf.btf.ctype import BitField"] if "BitField(" in body else []),
        *(["from pylibbpf.link import Link"] if ": Link" in body else []),
        *(["from pylibbpf.maps import Map"] if ": Map" in body else []),
        *(["from pylibbpf.program import Program"] if ": Program" in body else []),
        "from pylibbpf.skeleton import (",
        *(f"    {b}," for b in bases if f"{b}[" in body or f"({b})" in body),
        ")",
    ]
    lines, line = [], "   "
    for word in command.split(" "):  # the shell command, wrapped to the line length
        if len(line) + len(word) > 82:
            lines.append(line + " \\")
            line = "       "
        line += f" {word}"
    docstring = [
        f'"""BPF skeleton for ``{obj.name}``.',
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
