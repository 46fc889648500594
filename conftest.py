"""Every Python code block of README.md and docs/*.md runs as a test (Sybil).

A document's blocks share one namespace and run in order, like a script. Before the first
block the runtime is stopped; after the last one it is shut down again, and the teardown fails
the document if it left a thread, a child process or shared memory behind, or a call pending
in the core (what tests/conftest.py checks after every test). A block that cannot run here is
preceded by an HTML comment ``skip: next "the reason"``.
"""

import os
import threading
import time

from sybil import Sybil
from sybil.parsers.myst import PythonCodeBlockParser, SkipParser

import pyactors
from pyactors import _core

_before: dict[str, object] = {}


def _children() -> set[str]:
    """This process's child processes (pids), zombies included."""
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == os.getpid():
                        found.add(pid)
            except OSError:  # ended meanwhile
                pass
    return found


def _setup(namespace: dict) -> None:
    pyactors.shutdown()
    _before["threads"] = set(threading.enumerate())
    _before["children"] = _children() if os.path.isdir("/proc") else set()


def _teardown(namespace: dict) -> None:
    namespace.clear()  # handles and refs the blocks held
    pyactors.shutdown()
    deadline = time.monotonic() + 5  # threads of a stopped runtime may take a moment to end
    while True:
        threads = [t for t in threading.enumerate() if t not in _before["threads"]]
        children = (_children() if os.path.isdir("/proc") else set()) - _before["children"]
        if not (threads or children) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not threads, f"the document left threads behind: {threads}"
    assert not children, f"the document left child processes behind: {children}"
    shm = f"pyactors-{os.getpid()}-"
    segments = (
        [n for n in os.listdir("/dev/shm") if n.startswith(shm)]
        if os.path.isdir("/dev/shm")
        else []
    )
    assert not segments, f"the document left shared memory behind: {segments}"
    counters = _core.debug_counters()
    for counter in ("waiters_registered", "wakeups_pending", "calls_pending"):
        assert counters[counter] == 0, f"{counter} = {counters[counter]} after shutdown: {counters}"


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["README.md", "docs/*.md"],
    excludes=["benchmarks/README.md"],
    setup=_setup,
    teardown=_teardown,
).pytest()
