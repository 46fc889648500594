"""The installed package: the compiled core lives inside pyactors, its stub ships with it
(mypy.stubtest checks the stub against the module: tests/test_static_checks.py)."""

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

import pyactors
from pyactors import _core

PACKAGE_DIR = Path(pyactors.__file__).parent
INSTALLED = "site-packages" in str(PACKAGE_DIR)


def test_the_stub_of_the_core_ships_beside_it():
    # What stubtest does not say plainly: a wheel without the stub (stubtest would only fail
    # to find it). That the stub declares what the module has is stubtest's to check.
    if INSTALLED:
        assert (PACKAGE_DIR / "_core.pyi").is_file(), "the wheel must ship pyactors/_core.pyi"


def test_the_core_is_a_submodule_of_pyactors_and_nothing_is_installed_as_top_level_core():
    assert _core.__name__ == "pyactors._core"
    assert Path(_core.__file__).parent == PACKAGE_DIR
    assert Path(_core.__file__).suffix in (".so", ".pyd")
    installed = importlib.metadata.files("pyactors") or []
    assert not [f for f in installed if f.parts[0].startswith("_core")]
    if INSTALLED:  # an editable install puts src/ itself on sys.path
        assert importlib.util.find_spec("_core") is None


def test_the_version_is_written_once_and_the_license_ships():
    assert importlib.metadata.version("pyactors") == pyactors.__version__
    if INSTALLED:
        files = {f.name for f in importlib.metadata.files("pyactors") or []}
        assert "LICENSE" in files, "the wheel carries the license text"


def test_the_metadata_names_the_license_and_the_supported_pythons():
    metadata = importlib.metadata.metadata("pyactors")
    assert metadata["License-Expression"] == "Apache-2.0"  # SPDX, not the deprecated table
    classifiers = metadata.get_all("Classifier") or []
    assert not [c for c in classifiers if c.startswith("License ::")], "superseded by the SPDX"
    assert metadata["Requires-Python"] == ">=3.10"
    versions = {c.rsplit(" ", 1)[1] for c in classifiers if c.startswith("Programming Language")}
    assert {"3.10", "3.11", "3.12", "3.13"} <= versions


def test_the_wheel_ships_the_compiled_core_and_no_sources():
    if not INSTALLED:
        pytest.skip("checks an installed wheel; an editable install has no wheel")
    files = importlib.metadata.files("pyactors") or []
    installed = {f.as_posix() for f in files}
    assert {"pyactors/py.typed", "pyactors/_core.pyi"} <= installed
    assert [f for f in files if f.parent.as_posix() == "pyactors" and f.stem.startswith("_core.")]
    # The core's Cython sources, generated C and annotation HTML stay in the sdist (or out of it)
    sources = [f for f in files if f.suffix in (".pyx", ".pxd", ".pxi", ".c", ".h", ".html")]
    assert not sources, f"the wheel ships sources: {sources}"
    top = {f.parts[0] for f in files}
    assert top <= {"pyactors", f"pyactors-{pyactors.__version__}.dist-info"}, top


def test_the_package_is_typed_and_exports_what_it_lists():
    assert (PACKAGE_DIR / "py.typed").is_file()
    for name in pyactors.__all__:
        assert hasattr(pyactors, name), name


@pytest.mark.parametrize(
    "name",
    ["get", "wait", "put", "cancel", "remote", "method", "init", "shutdown", "is_initialized"],
)
def test_ray_names_are_available(name):
    assert callable(getattr(pyactors, name))
