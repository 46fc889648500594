"""Every Python code block of README.md and docs/*.md runs as a test (Sybil).

A document's blocks share one namespace and run in order, like a script. Before the first
block the runtime is stopped; after the last one it is shut down again, and the document fails
if it left anything behind that a test may not (tests/leaks.py, which tests/conftest.py checks
after every test). A block that cannot run here is preceded by an HTML comment
``skip: next "the reason"``.
"""

import gc
import os
import sys

from sybil import Sybil
from sybil.parsers.myst import PythonCodeBlockParser, SkipParser

import pyactors

# tests/ is not a package: its helpers are importable once it is on the path.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests"))
from leaks import Snapshot, open_process_wide_resources


def _setup(namespace: dict) -> None:
    pyactors.shutdown()
    open_process_wide_resources(["auto"])  # the docs use the default loop
    gc.collect()
    namespace["_pyactors_before"] = Snapshot()


def _teardown(namespace: dict) -> None:
    before = namespace.pop("_pyactors_before")
    namespace.clear()  # handles and refs the blocks held
    pyactors.shutdown()
    gc.collect()
    before.check()


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["README.md", "docs/*.md"],
    excludes=["benchmarks/README.md"],
    setup=_setup,
    teardown=_teardown,
).pytest()
