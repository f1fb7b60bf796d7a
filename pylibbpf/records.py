"""``@dataclass`` for the classes on the import path of ``bpf.BpfObject``, at a fraction of
the cost: the standard one imports ``inspect`` (with ``ast``, ``dis``, ``tokenize``) and
compiles each generated method on its own, which for the forty-odd spec, BTF and
syscall records was half of what ``import pylibbpf`` cost.

The classes made here behave as dataclasses do for what this package asks of them
(``frozen``, ``slots``, ``repr``, ``eq``, defaults, ``field(default_factory=...)``,
``field(init=False)``, ``__post_init__``, inheritance): the same ``__init__``,
``__repr__``, ``__eq__`` and ``__hash__``, and frozen instances refuse assignment with
``dataclasses.FrozenInstanceError``. They also *are* dataclasses to the standard module:
``dataclasses.fields``, ``asdict``, ``replace`` and ``is_dataclass`` work on them, the
module being imported only when one of those asks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from types import CodeType, FunctionType

TYPE_CHECKING = False  # (typing is for the type checker: not imported at run time)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")


if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda decorated: decorated


_MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "MISSING"})()
_FACTORY: Any = type("_Factory", (), {"__repr__": lambda self: "<factory>"})()  # as dataclasses


class _Field:
    """What ``field()`` said about one attribute."""

    __slots__ = ("default", "default_factory", "init")

    def __init__(self, default: Any, default_factory: Any, init: bool) -> None:
        self.default = default
        self.default_factory = default_factory
        self.init = init


def field(*, default: Any = _MISSING, default_factory: Any = _MISSING, init: bool = True) -> Any:
    """As ``dataclasses.field`` (the arguments this package uses)."""
    return _Field(default, default_factory, init)


class _DataclassFields:
    """``__dataclass_fields__``, built (with ``dataclasses`` imported) on first access."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type) -> dict[str, Any]:
        import dataclasses

        built: dict[str, Any] = {}
        for name, spec in owner.__record_fields__.items():  # type: ignore[attr-defined]
            made: Any = dataclasses.field(
                default=dataclasses.MISSING if spec.default is _MISSING else spec.default,
                default_factory=(
                    dataclasses.MISSING
                    if spec.default_factory is _MISSING
                    else spec.default_factory
                ),
                init=spec.init,
            )
            made.name = name
            made.type = owner.__record_types__.get(name, "Any")  # type: ignore[attr-defined]
            made._field_type = dataclasses._FIELD  # type: ignore[attr-defined]  # (what fields() keeps)
            built[name] = made
        type.__setattr__(owner, "__dataclass_fields__", built)  # once per class
        return built


def _frozen_error(name: str) -> Exception:
    import dataclasses

    return dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _methods(
    names: list[str],
    specs: dict[str, _Field],
    types: dict[str, str],
    options: tuple[bool, bool, bool, bool],
) -> dict[str, Any]:
    """The methods: ``__init__`` compiled when first looked up (it is the hot one: BTF
    parsing makes a record per type; a class never instantiated never compiles it), the
    others closures over the field names."""
    frozen, repr_, eq, _ = options
    methods: dict[str, Any] = {"__init__": _LazyInit(names, specs, types, options)}
    values = _values_of(names)
    if repr_:

        def __repr__(self: Any) -> str:
            shown = ", ".join(f"{n}={v!r}" for n, v in zip(names, values(self), strict=True))
            return f"{self.__class__.__qualname__}({shown})"

        methods["__repr__"] = __repr__
    if eq:

        def __eq__(self: Any, other: object) -> bool:
            if other.__class__ is self.__class__:
                return bool(values(self) == values(other))
            return NotImplemented

        methods["__eq__"] = __eq__
        if frozen:

            def __hash__(self: Any) -> int:
                return hash(values(self))

            methods["__hash__"] = __hash__
    if frozen:
        methods.update(__setattr__=_refuse_setattr, __delattr__=_refuse_delattr)
    return methods


class _LazyInit:
    """A record's ``__init__``, compiled on first lookup (the first instance, or
    ``inspect.signature``), which then replaces this descriptor on the class."""

    __slots__ = ("names", "options", "owner", "specs", "types")

    def __init__(
        self,
        names: list[str],
        specs: dict[str, _Field],
        types: dict[str, str],
        options: tuple[bool, bool, bool, bool],
    ) -> None:
        self.names, self.specs, self.types, self.options = names, specs, types, options
        self.owner: type | None = None

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        function = self.compile()
        assert self.owner is not None
        type.__setattr__(self.owner, "__init__", function)
        return function if instance is None else function.__get__(instance, owner)

    def compile(self) -> Any:
        names, specs = self.names, self.specs
        frozen, _, _, post = self.options
        # The code is a template written with placeholder names (``f0``, ``f1``, … for the
        # fields, in the parameters and the strings alike) and without the defaults (they
        # are the function's, not its code's): records of the same shape share it, renamed
        # for each (``code.replace``: a tenth of a compile).
        placeholders = dict(zip(_placeholders(len(names)), names, strict=False))
        shape, defaults = _shape(names, specs, frozen, post)
        template = _template(shape)

        rename = placeholders.get  # (a template's names and constants are all hashable)

        def renamed(items: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple(map(rename, items, items))

        code = template.replace(
            co_name="__init__",
            co_varnames=renamed(template.co_varnames),
            co_names=renamed(template.co_names),
            co_consts=renamed(template.co_consts),
        )
        scope: dict[str, Any] = {"_FACTORY": _FACTORY, "_specs": specs, "_set": object.__setattr__}
        function = FunctionType(code, scope, "__init__", tuple(defaults) or None)
        function.__annotations__ = {
            **{name: self.types[name] for name in names if specs[name].init},
            "return": None,
        }
        assert self.owner is not None
        function.__qualname__ = f"{self.owner.__qualname__}.__init__"
        return function


def _shape(
    names: list[str], specs: dict[str, _Field], frozen: bool, post: bool
) -> tuple[str, list[Any]]:
    """A record's shape (see ``template_source``) and its ``__init__``'s defaults."""
    letters, defaults = [], []
    for name in names:
        spec = specs[name]
        if spec.default_factory is not _MISSING:
            letters.append("f" if spec.init else "k")
            if spec.init:
                defaults.append(_FACTORY)
        elif not spec.init:
            letters.append("x" if spec.default is _MISSING else "d")
        else:
            if spec.default is not _MISSING:
                defaults.append(spec.default)
            elif defaults:  # (what compiling the defaults in the source would say)
                raise TypeError(f"non-default argument {name!r} follows default argument")
            letters.append("p")
    return f"{'s' if frozen else 'n'}_{''.join(letters)}{'_post' if post else ''}", defaults


def shape_of(cls: type) -> str:
    """The shape of a record class's ``__init__`` (``tools/record_inits.py`` lists them)."""
    specs: dict[str, _Field] = cls.__record_fields__  # type: ignore[attr-defined]
    frozen = cls.__setattr__ is _refuse_setattr  # type: ignore[comparison-overlap]
    return _shape(list(specs), specs, frozen, "__post_init__" in cls.__dict__)[0]


def template_source(shape: str, name: str = "__init__") -> str:
    """The source of the ``__init__`` template of a record shape: ``n`` (fields assigned)
    or ``s`` (frozen: set through ``object.__setattr__``), ``_``, a letter a field (``p`` a
    parameter, ``f`` a parameter defaulting to its factory's value, ``k`` the factory's
    value, ``d`` the default, ``x`` left to ``__post_init__``), then ``_post`` if the
    record has a ``__post_init__``."""
    how, letters, *post = shape.split("_")
    params, body = [], []
    for number, letter in enumerate(letters):
        slot = f"f{number}"
        if letter in "pf":
            params.append(slot)
        if letter == "x":
            continue
        value = {
            "p": slot,
            "f": f"_specs[{slot!r}].default_factory() if {slot} is _FACTORY else {slot}",
            "k": f"_specs[{slot!r}].default_factory()",
            "d": f"_specs[{slot!r}].default",
        }[letter]
        body.append(f"_set(self, {slot!r}, {value})" if how == "s" else f"self.{slot} = {value}")
    if post:
        body.append("self.__post_init__()")
    lines = [f"def {name}(self{''.join(f', {p}' for p in params)}):", *(body or ["pass"])]
    return "\n    ".join(lines)


# Templates by shape: those of this package's records come compiled with it
# (``record_inits``: a ``.pyc`` loads them for a fraction of a compile each), any other
# shape is compiled on first use.
_TEMPLATES: dict[str, CodeType] = {}
_PLACEHOLDERS: list[str] = []  # "f0", "f1"…: made once per process, not once per record


def _placeholders(count: int) -> list[str]:
    """At least ``count`` placeholder names, in order (``zip`` takes what it needs)."""
    while len(_PLACEHOLDERS) < count:
        _PLACEHOLDERS.append(f"f{len(_PLACEHOLDERS)}")
    return _PLACEHOLDERS


def _template(shape: str) -> CodeType:
    """The code of the ``__init__`` template of ``shape``."""
    code = _TEMPLATES.get(shape)
    if code is None:
        if not _TEMPLATES:
            from .record_inits import TEMPLATES

            _TEMPLATES.update(TEMPLATES)
            code = _TEMPLATES.get(shape)
        if code is None:
            made: dict[str, Any] = {}
            exec(template_source(shape), {"_FACTORY": _FACTORY}, made)  # (our source)
            code = made["__init__"].__code__
            _TEMPLATES[shape] = code
    return code


def _values_of(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A record's field values as a tuple (in C: ``attrgetter``)."""
    from operator import attrgetter

    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda record: (one(record),)
    return lambda record: ()


def _refuse_setattr(self: Any, name: str, value: Any) -> None:
    raise _frozen_error(name)


def _refuse_delattr(self: Any, name: str) -> None:
    raise _frozen_error(name)


@dataclass_transform(field_specifiers=(field,))
def dataclass(
    cls: type[T] | None = None,
    /,
    *,
    frozen: bool = False,
    slots: bool = False,
    repr: bool = True,
    eq: bool = True,
) -> Any:
    """As ``dataclasses.dataclass`` with these parameters."""

    def make(cls: type[T]) -> type[T]:
        specs: dict[str, _Field] = {}
        types: dict[str, str] = {}
        for base in reversed(cls.__mro__[1:]):
            specs.update(base.__dict__.get("__record_fields__", {}))
            types.update(base.__dict__.get("__record_types__", {}))
        own = {
            name: annotation
            # (not inspect.get_annotations: inspect is what this module avoids importing)
            for name, annotation in cls.__dict__.get("__annotations__", {}).items()  # noqa: RUF063
            if "ClassVar" not in str(annotation)
        }
        for name, annotation in own.items():
            value = cls.__dict__.get(name, _MISSING)
            specs[name] = value if isinstance(value, _Field) else _Field(value, _MISSING, True)
            types[name] = annotation
        names = list(specs)
        defined = cls.__dict__
        explicit_hash = defined.get("__hash__", _MISSING)
        has_hash = explicit_hash is not _MISSING and not (
            explicit_hash is None and "__eq__" in defined  # (Python's None beside an __eq__)
        )
        attributes: dict[str, Any] = {
            name: method
            for name, method in _methods(
                names, specs, types, (frozen, repr, eq, "__post_init__" in defined)
            ).items()
            if name not in defined or (name == "__hash__" and not has_hash)
        }
        if eq and not frozen and not has_hash:
            attributes["__hash__"] = None  # as dataclasses: mutable and comparable: unhashable
        for method in attributes.values():
            if callable(method) and method not in (_refuse_setattr, _refuse_delattr):
                method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        fields = _DataclassFields()
        attributes.update(
            __record_fields__=specs,
            __record_types__=types,
            __match_args__=tuple(name for name in names if specs[name].init),
            __dataclass_fields__=fields,
        )
        if not slots:  # completed in place, as dataclasses does
            for name in own:
                if isinstance(defined.get(name), _Field):
                    spec = specs[name]
                    if spec.default is _MISSING:
                        delattr(cls, name)
                    else:
                        setattr(cls, name, spec.default)
            for name, value in attributes.items():
                setattr(cls, name, value)
            _own_init(cls)
            return cls
        # Slots: a new class (a slot cannot have a class value: defaults live in the specs).
        namespace = {k: v for k, v in defined.items() if k not in own}
        namespace.pop("__dict__", None)
        namespace.pop("__weakref__", None)
        namespace.update(attributes, __slots__=tuple(own))
        if frozen:
            namespace.update(__getstate__=_getstate, __setstate__=_setstate)
        metaclass: Any = type(cls)
        made: type[T] = metaclass(cls.__name__, cls.__bases__, namespace)
        made.__qualname__ = cls.__qualname__
        _own_init(made)
        return made

    return make if cls is None else make(cls)


def _own_init(cls: type) -> None:
    init = cls.__dict__.get("__init__")
    if isinstance(init, _LazyInit):
        init.owner = cls


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, name) for name in self.__record_fields__]


def _setstate(self: Any, state: list[Any]) -> None:
    for name, value in zip(self.__record_fields__, state, strict=True):
        object.__setattr__(self, name, value)


def replace(obj: T, /, **changes: Any) -> T:
    """As ``dataclasses.replace``: a copy of ``obj`` with ``changes``."""
    specs: dict[str, _Field] | None = getattr(type(obj), "__record_fields__", None)
    if specs is None:  # a standard dataclass
        import dataclasses

        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    for name, spec in specs.items():
        if spec.init and name not in changes:
            changes[name] = getattr(obj, name)
    return type(obj)(**changes)


# Attributes a class keeps for itself: not copied from a mixin onto its stand-in (the
# last two are Python 3.13's).
CLASS_METADATA = frozenset(
    {
        "__dict__",
        "__weakref__",
        "__module__",
        "__doc__",
        "__qualname__",
        "__annotations__",
        "__firstlineno__",
        "__static_attributes__",
    }
)


class _FromMixin:
    """One attribute of an ``on_demand`` stand-in: its first read (on the class or an
    instance) imports the mixin and puts all of its attributes in the stand-in's place."""

    __slots__ = ("graft", "name")

    def __init__(self, name: str, graft: Callable[[], None]) -> None:
        self.name = name
        self.graft = graft

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        self.graft()
        return getattr(obj, self.name) if obj is not None else getattr(owner, self.name)


def on_demand(module: str, mixin: str, names: Iterable[str]) -> type:
    """A base class standing in for ``module.mixin`` until one of ``names`` (all its
    attributes) is first read: then the module is imported and the mixin's attributes
    copied onto the stand-in, so lookups through it find them as through the mixin (at the
    same place in the MRO) from then on. For mixins most processes never call (batch
    operations, attach methods): their module stays out of ``bpf.BpfObject``'s import."""

    def graft() -> None:
        # Each attribute is replaced in one step (another thread reads either the
        # placeholder, which grafts again, or the mixin's own), never removed first.
        __import__(module)
        found = vars(vars(sys.modules[module])[mixin]).items()
        real = {k: v for k, v in found if k not in CLASS_METADATA}
        for name, value in real.items():
            setattr(stand_in, name, value)
        for name in names:  # a name the mixin lost is an AttributeError, not a loop
            if name not in real and isinstance(vars(stand_in).get(name), _FromMixin):
                delattr(stand_in, name)

    stand_in = type(mixin, (), {"__module__": module})
    for name in names:
        setattr(stand_in, name, _FromMixin(name, graft))
    return stand_in


__all__ = ["dataclass", "field", "on_demand", "replace"]
