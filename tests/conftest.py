import contextlib
import gc
import os
import threading
import time

import pytest

import pyactors
from pyactors import _core

LOOPS = ["uvloop", "asyncio"]


@pytest.fixture(autouse=True, scope="session")
def process_wide_resources():
    """What an event loop opens once per process (uvloop's pipe for signal wakeups) is open
    before the first test counts file descriptors."""

    @pyactors.remote
    class Warm:
        async def ready(self):
            return True

    for loop in LOOPS:
        pyactors.init(loop=loop)
        assert pyactors.get(Warm.remote().ready.remote())
        pyactors.shutdown()


@pytest.fixture(autouse=True, params=LOOPS)
def loop_kind(request):
    """Every test runs once on uvloop and once on asyncio, in a fresh runtime, and must leave
    no thread, child process, file descriptor or shared memory segment behind - nor, in a
    PYACTORS_DEBUG=1 build, any core resource."""
    before_threads = set(threading.enumerate())
    gc.collect()
    before = _core.debug_counters()
    before_fds = open_fds()
    place = request.getfixturevalue("place") if "place" in request.fixturenames else None
    pyactors.init(loop=request.param, process=place == "process")
    yield request.param
    pyactors.shutdown()
    leftover = [t for t in threading.enumerate() if t not in before_threads]
    assert not leftover, f"threads left behind: {leftover}"
    gc.collect()  # what only garbage holds is not left behind: its finalizers free it
    assert not child_processes(), f"child processes left behind: {child_processes()}"
    assert not shm_segments(), f"shared memory left behind: {shm_segments()}"
    left_open = {fd: _fd_target(fd) for fd in open_fds() - before_fds}
    assert not left_open, f"file descriptors left open: {left_open}"
    after = _core.debug_counters()
    # Nothing may stay registered, posted or pending once the runtime is shut down...
    for counter in ("waiters_registered", "wakeups_pending", "calls_pending"):
        assert after[counter] == 0, f"{counter} = {after[counter]} after shutdown: {after}"
    # ...what the test allocated must be freed (module-level refs predate the test)...
    for counter in ("refs_alive", "waiters_alive"):
        assert after[counter] <= before[counter], f"{counter} leaked: {before} -> {after}"
    # ...and per-thread states live only as long as their threads.
    assert after["thread_states"] <= threading.active_count(), after
    # No invariant the core checks (debug builds) broke.
    assert not _core.debug_violations()


def pytest_collection_modifyitems(config, items):
    """Tests marked in_process_only share memory with their actors (a threading.Event, a
    closure's list): they run in this process only. With place=process the semantic suites
    run on the default loop (uvloop) only: the loop is the worker's concern, and
    test_process.py covers both."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = {} if callspec is None else callspec.params
        if params.get("place") == "process" and (
                item.get_closest_marker("in_process_only") or params.get("loop_kind") == "asyncio"):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=["in-process", "process"])
def place(request):
    """Where actors and remote functions run: a module with
    ``pytestmark = pytest.mark.usefixtures("place")`` runs each test in this process and
    again with every actor and remote function in worker processes (init(process=True))."""
    return request.param


@pytest.fixture
def benchmark_clock():
    """Wall-clock span of a block, for lower bounds that follow from semantics (five waves of
    0.2 s cannot take less than 1 s); never for speed."""

    @contextlib.contextmanager
    def clock():
        start = time.monotonic()
        end = []
        yield lambda: end[0] - start
        end.append(time.monotonic())

    return clock


def child_processes() -> list[str]:
    """This process's children, zombies included: (pid, state, command)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == os.getpid():
            found.append(f"{pid} ({fields[0]})")
    return found


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{fd}")}


def _fd_target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def shm_segments() -> list[str]:
    prefix = f"pyactors-{os.getpid()}-"
    return [name for name in os.listdir("/dev/shm") if name.startswith(prefix)] \
        if os.path.isdir("/dev/shm") else []
