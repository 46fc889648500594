import contextlib
import gc
import threading
import time

import pytest

import pyactors
from pyactors import _core

LOOPS = ["uvloop", "asyncio"]


@pytest.fixture(autouse=True, params=LOOPS)
def loop_kind(request):
    """Every test runs once on uvloop and once on asyncio, in a fresh runtime, and must leave
    no thread behind - nor, in a PYACTORS_DEBUG=1 build, any core resource."""
    before_threads = set(threading.enumerate())
    gc.collect()
    before = _core.debug_counters()
    pyactors.init(loop=request.param)
    yield request.param
    pyactors.shutdown()
    leftover = [t for t in threading.enumerate() if t not in before_threads]
    assert not leftover, f"threads left behind: {leftover}"
    gc.collect()
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
