"""What keeps ``gen skeleton`` a pure step: names from an object never become code.

Every name in a BPF object (BTF type, member, variable and enum names, section, program
and map names, the file name) is attacker-controlled. The generator writes one only as a
quoted literal (``literal``), as docstring text with everything but plain ASCII replaced
(``doc_text``), or as a Python name that ``ident`` has checked is a plain ASCII
identifier; ``Ident`` marks the checked ones, so mypy rejects an unchecked name where
code is written. And whatever the generator did, ``check_declarations`` parses the
finished module and refuses it unless it is declarations only: imports of the skeleton
runtime, classes whose bodies assign literals, ctypes types and known names, properties
that read and write their section, and the embedded object. A name that slipped through
as code would have to be a call, a comprehension or an unknown name: refused, never run.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
from typing import NewType

from .errors import ObjectError

Ident = NewType("Ident", str)  # a checked plain identifier: the only names written as code

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_ident(name: str) -> bool:
    """A plain ASCII identifier that is not a keyword (non-ASCII identifiers are left out:
    Python folds them (NFKC), so a fullwidth x would read the member ``x``)."""
    return _IDENTIFIER.fullmatch(name) is not None and not keyword.iskeyword(name)


def ident(name: str) -> Ident:
    """``name`` as a name in generated code; ``ObjectError`` if it is not a plain one."""
    if not is_ident(name):
        raise ObjectError(f"refusing to write {name!r} as a Python name in a skeleton")
    return Ident(name)


def literal(text: str) -> str:
    """A string literal for any text: quotes, backslashes, newlines and bytes that are not
    UTF-8 (read as surrogates) all escaped; ASCII only, as ruff formats it."""
    return json.dumps(text)


def doc_text(text: str) -> str:
    """Text for a docstring or comment: printable ASCII without quotes or backslashes;
    anything else becomes ``?``."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)


# ----------------------------------------------------------------- the final check

_BUILTINS = {"bool", "bytes", "dict", "float", "int", "str", "type", "list", "tuple"}
_MODULES = {"base64", "ctypes", "enum"}
_TYPING = {"Any", "ClassVar"}


class _Checker:
    """Walks a generated module, allowing only the shapes the generator writes."""

    def __init__(self) -> None:
        self.names = set(_BUILTINS) | {"__file__"}

    def refuse(self, node: ast.AST, why: str) -> ObjectError:
        return ObjectError(f"line {getattr(node, 'lineno', '?')}: {why}")

    def module(self, tree: ast.Module) -> None:
        for statement in tree.body:
            if isinstance(statement, ast.Expr):
                self.docstring(statement)
            elif isinstance(statement, ast.ImportFrom | ast.Import):
                self.import_(statement)
            elif isinstance(statement, ast.ClassDef):
                self.class_(statement)
            elif isinstance(statement, ast.Assign):
                self.embedded(statement)
            else:
                raise self.refuse(statement, f"unexpected {type(statement).__name__}")

    def docstring(self, node: ast.Expr) -> None:
        if not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            raise self.refuse(node, "an expression statement that is not a docstring")

    def import_(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in _MODULES or alias.asname:
                    raise self.refuse(node, f"import of {alias.name!r}")
                self.names.add(alias.name)
            return
        module = node.module or ""
        allowed = module.startswith("pylibbpf.") or (module, node.level) in (
            ("__future__", 0),
            ("typing", 0),
        )
        for alias in node.names:
            if not allowed or alias.asname or alias.name == "*":
                raise self.refuse(node, f"import from {module!r}")
            if module == "typing" and alias.name not in _TYPING:
                raise self.refuse(node, f"import of typing.{alias.name}")
            self.names.add(alias.name)

    def embedded(self, node: ast.Assign) -> None:
        """``Skel.object_data = base64.b64decode("..." "...")``."""
        target, value = node.targets[0], node.value
        if not (
            len(node.targets) == 1
            and isinstance(target, ast.Attribute)
            and target.attr == "object_data"
            and isinstance(target.value, ast.Name)
            and target.value.id in self.names
            and isinstance(value, ast.Call)
            and ast.unparse(value.func) == "base64.b64decode"
            and len(value.args) == 1
            and not value.keywords
            and isinstance(value.args[0], ast.Constant)
            and isinstance(value.args[0].value, str)
        ):
            raise self.refuse(node, "a module-level assignment other than the embedded object")

    def class_(self, node: ast.ClassDef) -> None:
        if node.decorator_list or node.keywords:
            raise self.refuse(node, "a class with decorators or keywords")
        for base in node.bases:
            self.expression(base)
        for statement in node.body:
            if isinstance(statement, ast.Expr):
                self.docstring(statement)
            elif isinstance(statement, ast.Assign):
                if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
                    raise self.refuse(statement, "an assignment to something but a name")
                self.expression(statement.value)
            elif isinstance(statement, ast.AnnAssign):
                if not isinstance(statement.target, ast.Name):
                    raise self.refuse(statement, "an annotation of something but a name")
                self.expression(statement.annotation)
                if statement.value is not None:
                    self.expression(statement.value)
            elif isinstance(statement, ast.FunctionDef):
                self.method(statement)
            else:
                raise self.refuse(statement, f"unexpected {type(statement).__name__} in a class")
        self.names.add(node.name)

    def method(self, node: ast.FunctionDef) -> None:
        """A property or its setter over the section (``self._view().x``, ``self._store``)."""
        for decorator in node.decorator_list:
            text = ast.unparse(decorator)
            if text != "property" and text != f"{node.name}.setter":
                raise self.refuse(node, f"decorator {text!r}")
        arguments = node.args
        if arguments.posonlyargs or arguments.kwonlyargs or arguments.vararg or arguments.kwarg:
            raise self.refuse(node, "a method with unusual parameters")
        parameters = [argument.arg for argument in arguments.args]
        if arguments.defaults or parameters not in (["self"], ["self", "value"]):
            raise self.refuse(node, "a method with unusual parameters")
        for argument in arguments.args:
            if argument.annotation is not None:
                self.expression(argument.annotation)
        if node.returns is not None:
            self.expression(node.returns)
        for statement in node.body:
            if isinstance(statement, ast.Return | ast.Expr) and statement.value is not None:
                self.access(statement.value)
            elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                self.expression(statement.annotation)
                if statement.value is None:
                    raise self.refuse(statement, "an annotation without a value")
                self.access(statement.value)
            else:
                raise self.refuse(statement, f"unexpected {type(statement).__name__} in a method")

    def access(self, node: ast.expr) -> None:
        """``value``, ``self._view().name`` or ``self._method("literal", value)``."""
        if isinstance(node, ast.Name) and node.id == "value":
            return
        if isinstance(node, ast.Attribute):
            return self.access(node.value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "self"
            and node.func.attr.startswith("_")
            and not node.keywords
        ):
            for argument in node.args:
                if not (isinstance(argument, ast.Name) and argument.id == "value"):
                    self.constant(argument)
            return
        raise self.refuse(node, f"unexpected code in a method: {ast.unparse(node)[:60]!r}")

    def constant(self, node: ast.expr) -> None:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            node = node.operand
        if not isinstance(node, ast.Constant):
            raise self.refuse(node, f"a non-literal argument {ast.unparse(node)[:60]!r}")

    def expression(self, node: ast.expr) -> None:
        """Literals, known names and their attributes, ctypes array types (``T * n``),
        subscripted types, ``X | None``, containers of those, and ``BitField(literals)``."""
        if isinstance(node, ast.Constant):
            return
        if isinstance(node, ast.Name):
            if node.id not in self.names:
                raise self.refuse(node, f"unknown name {node.id!r}")
            return
        if isinstance(node, ast.Attribute):
            if not isinstance(node.value, ast.Name | ast.Attribute) or node.attr.startswith("__"):
                raise self.refuse(node, f"attribute {node.attr!r}")
            return self.expression(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return self.constant(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.BitOr):
            self.expression(node.left)
            return self.expression(node.right)
        if isinstance(node, ast.Subscript):
            self.expression(node.value)
            return self.expression(node.slice)
        if isinstance(node, ast.List | ast.Tuple):
            for element in node.elts:
                self.expression(element)
            return
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    raise self.refuse(node, "a dict unpacking")
                self.expression(key)
                self.expression(value)
            return
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "BitField":
            if node.keywords:
                raise self.refuse(node, "BitField with keywords")
            for argument in node.args:
                self.constant(argument)
            return
        raise self.refuse(node, f"unexpected expression {ast.unparse(node)[:60]!r}")


def check_declarations(source: str, what: str) -> None:
    """Refuse (``ObjectError``) a generated module that does not compile or holds
    anything but the declarations the generator writes."""
    if not source.isascii():  # it is written to files and terminals in any locale
        raise ObjectError(f"{what}: the generated skeleton is not ASCII")
    try:
        tree = ast.parse(source, filename=what)
        compile(tree, what, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        raise ObjectError(f"{what}: the generated skeleton does not compile: {error}") from None
    try:
        _Checker().module(tree)
    except ObjectError as error:
        raise ObjectError(f"{what}: refusing the generated skeleton: {error}") from None
