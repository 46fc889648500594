"""The programs in examples/ run and say what they say they do (the code blocks of the README and
the docs run as tests of their own: see the repository's conftest.py)."""

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_quickstart_runs_each_call_in_its_group():
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    rows = dict(re.findall(r"^(\S+)\s+pyactors:AsyncIOActor\(\w+\):(\w+)\s+#\d+$", out, re.M))
    assert rows == {
        "f1": "io",
        "f2": "io",
        "f3": "compute",
        "f4": "compute",
        "f5": "default",
        'f2.options(concurrency_group="compute")': "compute",
        "f2.options()": "io",
    }
    assert "awaited from asyncio: ['f1', 'f5']" in out
