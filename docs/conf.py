"""Sphinx configuration: the user guide and the architecture page in Markdown (MyST),
the API reference from the docstrings (autodoc). Built by scripts/docs with -W: a
warning is an error."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pylibbpf  # noqa: E402

project = "pylibbpf"
author = "the pylibbpf authors"
copyright = "the pylibbpf authors, MIT licence"
release = version = pylibbpf.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_mock_imports = ["capstone"]
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "alabaster"
html_title = f"pylibbpf {release}"
html_theme_options = {"description": "libbpf for Python, in Python", "fixed_sidebar": True}

# A bare `type` in a signature (`type[BaseException]`) matches every documented attribute
# named `type` (Map.type, Program.type, Attachable.type); it means the builtin, which has
# no page here, so the ambiguity is not worth a warning.
suppress_warnings = ["ref.python"]
