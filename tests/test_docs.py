"""The documentation site builds, warnings as errors (its code blocks run as tests of their own:
see the repository's conftest.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"


@pytest.mark.skipif(not DOCS.is_dir(), reason="runs from a source checkout")
@pytest.mark.timeout(300)
def test_the_site_builds_without_warnings(tmp_path, loop_kind):
    if loop_kind != "uvloop":
        pytest.skip("the build runs no actor: once is enough")
    html, doctrees = tmp_path / "html", tmp_path / "doctrees"
    options = ["-W", "--keep-going", "-E", "-q", "-b", "html"]  # -W: warnings are errors
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", *options, str(DOCS), str(html), "-d", str(doctrees)],
        check=False,  # the assertion below shows Sphinx's output
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    for page in ("index", "async-actors", "api", "bad-input", "differences", "changelog"):
        assert (html / f"{page}.html").exists(), page


@pytest.mark.skipif(not DOCS.is_dir(), reason="runs from a source checkout")
def test_the_reference_names_every_public_name():
    import pyactors.actor
    import pyactors.exceptions
    import pyactors.util
    import pyactors.util.queue

    page = (DOCS / "api.md").read_text(encoding="utf-8")
    modules = {
        "pyactors": pyactors,
        "pyactors.actor": pyactors.actor,
        "pyactors.exceptions": pyactors.exceptions,
        "pyactors.util": pyactors.util,
    }
    missing = [
        f"{prefix}.{name}"
        for prefix, module in modules.items()
        for name in module.__all__
        if f"{prefix}.{name}" not in page and f"`{name}`" not in page
    ]
    missing += [name for name in ("Queue", "Empty", "Full") if f"queue.{name}" not in page]
    assert not missing, f"docs/api.md does not document {missing}"
