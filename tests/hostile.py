"""Run a scenario in a fresh interpreter, so that a crash (a segfault in the core) fails the test
that provoked it instead of ending the whole run, and so that interpreter exit itself can be
observed."""

import os
import subprocess
import sys
import textwrap

SRC_ROOT = os.path.dirname(os.path.abspath(__file__))


def run_python(code, *args, timeout=50.0, env=None):
    """Run `code` with this interpreter; returns the CompletedProcess (text output).

    The child gets faulthandler on, so a crash prints every thread's stack into stderr.
    """
    child_env = {**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC_ROOT, child_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env,
        check=False,  # the callers judge the exit status and show the output
    )


def describe(result):
    return (
        f"exit code {result.returncode}\n--- stdout ---\n{result.stdout[-4000:]}"
        f"\n--- stderr ---\n{result.stderr[-8000:]}"
    )


def assert_clean_exit(result):
    assert result.returncode == 0, describe(result)
