"""The static checkers pass: ruff (lint and format), mypy, stubtest of the compiled core's stub,
and cython-lint. Each runs as CI runs it, with its configuration from pyproject.toml; they
need the source tree (a checkout or an sdist), and mypy and stubtest the installed package."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ALLOWLIST = Path(__file__).resolve().parent / "stubtest_allowlist.txt"

pytestmark = [
    pytest.mark.skipif(
        not (REPO_ROOT / "pyproject.toml").is_file() or not (REPO_ROOT / "src").is_dir(),
        reason="needs the source tree (pyproject.toml and src/): the checkers read the sources",
    ),
    pytest.mark.timeout(300),  # mypy without its cache takes a while on a busy machine
]


@pytest.fixture(autouse=True)
def loop_kind():
    """Replaces conftest's: the checkers start no runtime, so each runs once, not per loop."""
    return None


def python_paths() -> list[str]:
    """Every directory of Python code ruff checks (docs/ holds the docs' own code, if any)."""
    names = ["src", "tests", "benchmarks", "examples", "docs"]
    return [name for name in names if (REPO_ROOT / name).is_dir()]


def run(*args: str) -> None:
    # This interpreter's scripts first on PATH: cython-lint runs the pycodestyle command.
    path = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=280,
        check=False,  # the assert shows the checker's findings
    )
    assert done.returncode == 0, (
        f"{' '.join(args)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )


def test_ruff_check():
    run("ruff", "check", "--no-cache", *python_paths())


def test_ruff_format():
    run("ruff", "format", "--check", "--no-cache", *python_paths())


def test_mypy():
    # What to check and how strictly: [tool.mypy] in pyproject.toml.
    run("mypy")


def test_stubtest_of_the_compiled_core():
    # The installed pyactors._core against its stub (installed as pyactors/_core.pyi).
    run("mypy.stubtest", "pyactors._core", "--allowlist", str(ALLOWLIST))


def test_cython_lint():
    # cython_lint has no __main__; its module runs main() when run as a script.
    run("cython_lint.cython_lint", "src/_core")
