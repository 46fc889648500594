import contextlib
import threading
import time

import pytest

import pyactors

LOOPS = ["uvloop", "asyncio"]


@pytest.fixture(autouse=True, params=LOOPS)
def loop_kind(request):
    """Every test runs once on uvloop and once on asyncio, in a fresh runtime, and must leave
    no thread behind."""
    before = set(threading.enumerate())
    pyactors.init(loop=request.param)
    yield request.param
    pyactors.shutdown()
    leftover = [t for t in threading.enumerate() if t not in before]
    assert not leftover, f"threads left behind: {leftover}"


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
