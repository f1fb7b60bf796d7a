"""The runtime half of generated skeletons (``python -m pylibbpf gen skeleton``).

A generated module declares, for one BPF object, which programs, maps, links and global
data sections exist and with which types; the classes here do the work, so that generated
code is declarations only. Every part is a ``__slots__`` class with declared attributes:
a misspelt name is an ``AttributeError`` at run time and an error under mypy.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from typing_extensions import Self  # (typing.Self: Python 3.11+)

from .btf.ctype import items, show, to_plain
from .links.base import Link
from .loader.object import BpfObject
from .names import NameNotFoundError

LayoutT = TypeVar("LayoutT", bound=ctypes.Structure)


class GlobalSection(Generic[LayoutT]):
    """One data section (``.bss``, ``.data``, ``.rodata``, ``.data.*``, ``.kconfig``…) as a
    ctypes structure: over the initial image before load, over the mmapped map after.

    Reads and writes of scalars always hit the current memory. Nested structs and arrays
    come back as ctypes views sharing that memory, so ``skel.bss.stats.calls`` is live too;
    without mmap (kernels before 5.5, or a section holding a spin lock) the section is read
    and written through map lookups instead, and a nested view is then a snapshot: assign
    the whole member to write it.
    """

    __slots__ = ("_cached", "_obj")
    section: ClassVar[str]
    layout: ClassVar[type[Any]]

    def __init__(self, obj: BpfObject) -> None:
        self._obj = obj
        self._cached: tuple[Any, Any] | None = None  # (memory, view over it)

    def _layout(self) -> type[Any]:
        """The section's ctypes layout (a subskeleton's is built when it binds)."""
        return self.layout

    def _view(self) -> LayoutT:
        memory = self._obj.section_memory(self.section)
        cached = self._cached
        if cached is not None and cached[0] is memory:
            return cast(LayoutT, cached[1])
        layout = self._layout()
        size = ctypes.sizeof(layout)
        try:
            view = layout.from_buffer(memory)
        except TypeError:  # read-only mapping (.rodata after load) or a lookup window
            return cast(LayoutT, layout.from_buffer_copy(bytes(memory[0:size])))
        self._cached = (memory, view)
        return cast(LayoutT, view)

    def _store(self, name: str, value: object) -> None:
        self._obj.check_section_writable(self.section, f"{self.section} variable {name!r}")
        memory = self._obj.section_memory(self.section)
        view = self._view()
        setattr(view, name, value)
        if not (self._cached is not None and self._cached[0] is memory):
            memory[0 : ctypes.sizeof(view)] = bytes(view)  # a copy: write it back

    if not TYPE_CHECKING:  # (hidden from mypy, which must keep rejecting unknown names)

        def __getattr__(self, name: str) -> Any:
            # Only for names that are not variables of this section: say which ones are.
            raise NameNotFoundError(f"{self.section} variable", name, _fields(self.layout))

        def __setattr__(self, name: str, value: Any) -> None:
            if name not in GlobalSection.__slots__ and not hasattr(type(self), name):
                raise NameNotFoundError(f"{self.section} variable", name, _fields(self.layout))
            object.__setattr__(self, name, value)

    def raw(self) -> bytes:
        """The whole section as bytes (a snapshot)."""
        return bytes(self._view())

    def asdict(self) -> dict[str, Any]:
        """The section's variables as plain Python (a snapshot), ready for JSON."""
        return {name: to_plain(value) for name, value in items(self._view())}

    def __repr__(self) -> str:
        view = self._view()
        members = ", ".join(f"{name}={show(value)}" for name, value in items(view))
        return f"<{self.section} {members}>"


def _fields(layout: Any) -> list[str]:
    return [name for name, *_ in getattr(layout, "_fields_", ()) if not name.startswith("_")]


class SkeletonParts:
    """Named handles (programs, maps or links) declared by the generated subclass."""

    __slots__ = ()
    names: ClassVar[dict[str, str]] = {}  # attribute -> name in the object
    kind: ClassVar[str] = "part"  # what the parts are, for error messages

    if not TYPE_CHECKING:  # (hidden from mypy, which must keep rejecting unknown names)

        def __getattr__(self, name: str) -> Any:
            # Only for names the generated class does not declare: say which ones it does.
            raise NameNotFoundError(f"skeleton {self.kind}", name, self.names)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {', '.join(self.names)}>"


class SkeletonPrograms(SkeletonParts):
    """The object's programs as attributes (``skel.progs.<name>``)."""

    __slots__ = ()
    kind = "program"

    def __init__(self, obj: BpfObject) -> None:
        for attribute, name in self.names.items():
            setattr(self, attribute, obj.programs[name])


class SkeletonMaps(SkeletonParts):
    """The object's maps as attributes (``skel.maps.<name>``)."""

    __slots__ = ()
    kind = "map"

    def __init__(self, obj: BpfObject) -> None:
        for attribute, name in self.names.items():
            setattr(self, attribute, obj.maps[name])


class SkeletonLinks(SkeletonParts):
    """One slot per auto-attachable program and struct_ops map; ``None`` until attached."""

    __slots__ = ()
    kind = "link"

    def __init__(self) -> None:
        for attribute in self.names:
            setattr(self, attribute, None)

    def attached(self) -> dict[str, Link]:
        """The links made so far, by attribute name."""
        found = ((name, getattr(self, name)) for name in self.names)
        return {name: link for name, link in found if link is not None}


class SkeletonStructOps:
    """The object's struct_ops variables as ctypes structs, editable until load (a
    congestion control's ``name``, flags…), as libbpf's ``skel->struct_ops``."""

    __slots__ = ("_obj",)

    def __init__(self, obj: BpfObject) -> None:
        self._obj = obj

    def _value(self, name: str) -> Any:
        return self._obj.struct_ops_value(name)


class Skeleton:
    """Base of every generated skeleton: open → (edit rodata/maps) → load → attach."""

    object_name: ClassVar[str]
    object_path: ClassVar[str | None] = None  # set when the object is referenced, not embedded
    object_data: ClassVar[bytes | None] = None
    sections: ClassVar[dict[str, type[GlobalSection[Any]]]] = {}  # attribute -> class
    programs_class: ClassVar[type[SkeletonPrograms]]
    maps_class: ClassVar[type[SkeletonMaps]]
    links_class: ClassVar[type[SkeletonLinks]]
    struct_ops_class: ClassVar[type[SkeletonStructOps]] = SkeletonStructOps
    generated_from: ClassVar[str] = ""  # the generated module's file, for object_path

    def __init__(self, obj: BpfObject) -> None:
        self.obj = obj
        self.progs = self.programs_class(obj)
        self.maps = self.maps_class(obj)
        self.links = self.links_class()
        self.struct_ops = self.struct_ops_class(obj)
        for attribute, section_class in self.sections.items():
            setattr(self, attribute, section_class(obj))

    @classmethod
    def _source(cls) -> bytes | str:
        if cls.object_data is not None:
            return cls.object_data
        assert cls.object_path is not None
        base = Path(cls.generated_from).parent
        return os.fspath(base / cls.object_path)

    @classmethod
    def open(
        cls,
        *,
        btf_custom_path: str | None = None,
        kconfig: dict[str, str] | None = None,
        pin_root_path: str = "/sys/fs/bpf",
        token_path: str | None = None,
    ) -> Self:
        """Parse the object (no privileges needed): rodata, map sizes and autoload can
        still be changed before ``load()``; ``token_path`` as in ``BpfObject.open``."""
        obj = BpfObject.open(
            cls._source(),
            name=cls.object_name,
            btf_custom_path=btf_custom_path,
            kconfig=kconfig,
            pin_root_path=pin_root_path,
            token_path=token_path,
        )
        return cls(obj)

    @classmethod
    def open_and_load(cls, **options: Any) -> Self:
        """``open()`` then ``load()``; on failure the object is released."""
        skeleton = cls.open(**options)
        try:
            skeleton.load()
        except BaseException:
            skeleton.destroy()
            raise
        return skeleton

    def load(self) -> None:
        """Create the maps and load the programs (``BpfObject.load``)."""
        self.obj.load()

    def attach(self) -> None:
        """Attach every program with an auto-attach section and register struct_ops maps;
        the links land in ``links.<name>``. Already attached ones are left as they are."""
        names = self.links_class.names
        done = {names[attribute] for attribute in self.links.attached()}
        by_name = {name: attribute for attribute, name in names.items()}
        for name, link in self.obj.attach_named(skip=done).items():
            setattr(self.links, by_name[name], link)

    def detach(self) -> None:
        """Close every link ``attach()`` made (unregistering struct_ops maps)."""
        for attribute, link in self.links.attached().items():
            link.close()
            if link in self.obj.links:
                self.obj.links.remove(link)
            setattr(self.links, attribute, None)

    def destroy(self) -> None:
        """Detach and close the object: programs unload, maps go when unpinned."""
        self.detach()
        self.obj.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.destroy()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.obj!r}>"
