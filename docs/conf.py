"""Sphinx configuration of pyactors' documentation site.

Why Sphinx (with furo and MyST markdown) rather than MkDocs: the Python async world documents
itself with Sphinx - CPython's asyncio docs, uvloop, asyncpg, trio and aiohttp - so readers
meet the layout and cross-references they know; autodoc reads the docstrings of the compiled
module (pyactors._core) from the installed package, as it does for uvloop; MyST lets the pages
stay markdown, which GitHub renders and Sybil runs (every code block is a test).

Build (from the repository root, with the docs extra installed):
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The build is offline: intersphinx links to docs.python.org only when
PYACTORS_DOCS_INTERSPHINX=1 (it downloads the inventory, and CI has no network for it).
"""

import os

import pyactors

project = "pyactors"
author = "the pyactors authors"
copyright = "2026, the pyactors authors"
version = release = pyactors.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
if os.environ.get("PYACTORS_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {"python": ("https://docs.python.org/3", None)}

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "conftest.py"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Google-style "Attributes:" sections become fields, not second descriptions of what autodoc
# already documents from the class body.
napoleon_use_ivar = True

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"  # prose documents the rest
autodoc_default_options = {"undoc-members": False}

html_theme = "furo"
html_title = f"pyactors {release}"


def _without_self(app, what, name, obj, options, signature, return_annotation):
    """Cython embeds ``self`` in the signatures of the core's methods; Python's omit it."""
    if signature and signature.startswith("(self"):
        signature = "(" + signature[len("(self") :].lstrip(", ")
    return signature, return_annotation


def setup(app):
    app.connect("autodoc-process-signature", _without_self)
