"""The runtime half of generated subskeletons (``python -m pylibbpf gen subskeleton``).

A subskeleton is a library's view of a program that linked the library in (libbpf's
``bpftool gen subskeleton`` and ``bpf_object__open_subskeleton``): the code that owns the
library reaches its programs, maps and global variables through the *final* object, which
it did not open. Nothing of the library's layout is assumed: when it binds, each global
and extern variable is found by section and name in the final object (where the linker
put it), and each program and map by name; what is missing, or of another size, is an
``ObjectError`` naming it. Statics are not part of the library's interface: they are left
out, as bpftool does.
"""

from __future__ import annotations

import ctypes
from typing import Any, ClassVar

from .btf.ctype import CStruct
from .errors import ObjectError
from .loader.object import BpfObject
from .skeleton import GlobalSection, SkeletonMaps, SkeletonPrograms, SkeletonStructOps


class SubskeletonSection(GlobalSection[Any]):
    """One of the library's data sections, as laid out in the final object: only the
    library's variables are reachable, each at the offset the final object gives it."""

    __slots__ = ("_bound",)
    # (field in the layout, the variable's C name, its ctypes type), from the library.
    variables: ClassVar[tuple[tuple[str, str, Any], ...]] = ()
    section: ClassVar[str]

    def __init__(self, obj: BpfObject) -> None:
        super().__init__(obj)
        placed = []
        for field, name, ctype in self.variables:
            try:
                variable = obj.find_variable(self.section, name)
            except ObjectError as error:
                raise ObjectError(f"{error}: is the library linked into it?") from None
            if variable.size != ctypes.sizeof(ctype):
                raise ObjectError(
                    f"{obj.name}: {self.section} variable {name!r} is {variable.size} bytes, "
                    f"the library's is {ctypes.sizeof(ctype)}: built from another library?"
                )
            placed.append((variable.offset, field, ctype))
        fields: list[tuple[str, Any]] = []
        position = 0
        for offset, field, ctype in sorted(placed, key=lambda entry: entry[0]):
            if offset > position:
                fields.append((f"_pad0_{len(fields)}", ctypes.c_uint8 * (offset - position)))
            fields.append((field, ctype))
            position = offset + ctypes.sizeof(ctype)
        self._bound: type[Any] = type(
            f"{type(self).__name__}Layout", (CStruct,), {"_pack_": 1, "_fields_": fields}
        )

    def _layout(self) -> type[Any]:
        return self._bound

    def _get(self, field: str) -> Any:
        """A variable's value (a live ctypes view for records and arrays)."""
        return getattr(self._view(), field)

    def _set(self, field: str, value: object) -> None:
        self._store(field, value)


class Subskeleton:
    """Base of every generated subskeleton: construct it over a final object (opened or
    loaded) that linked the library in; it holds no resources of its own."""

    library_name: ClassVar[str]
    sections: ClassVar[dict[str, type[SubskeletonSection]]] = {}  # attribute -> class
    programs_class: ClassVar[type[SkeletonPrograms]]
    maps_class: ClassVar[type[SkeletonMaps]]
    struct_ops_class: ClassVar[type[SkeletonStructOps]] = SkeletonStructOps

    def __init__(self, obj: BpfObject) -> None:
        missing = [
            f"program {name!r}"
            for name in self.programs_class.names.values()
            if name not in obj.programs
        ]
        missing += [
            f"map {name!r}" for name in self.maps_class.names.values() if name not in obj.maps
        ]
        if missing:
            raise ObjectError(
                f"{obj.name}: has no {', '.join(missing)} of library {self.library_name!r}: "
                "is the library linked into it?"
            )
        self.obj = obj
        self.progs = self.programs_class(obj)
        self.maps = self.maps_class(obj)
        self.struct_ops = self.struct_ops_class(obj)
        for attribute, section_class in self.sections.items():
            setattr(self, attribute, section_class(obj))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of library {self.library_name!r} in {self.obj!r}>"
