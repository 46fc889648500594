"""Fixtures of the benchmarks, self-contained so that they do not depend on tests/.

Every benchmark runs on pyactors and on the floor (benchmarks/floor.py), each on uvloop and on
asyncio, through the same adapters as `python -m benchmarks.compare`.
"""

import threading

import pytest

from benchmarks.workloads import LOOP_KINDS, load_adapter

PYTEST_IMPLEMENTATIONS = ("pyactors", "floor")


@pytest.fixture(autouse=True)
def no_leftover_threads():
    before = set(threading.enumerate())
    yield
    leftover = set(threading.enumerate()) - before
    assert not leftover, f"threads left behind: {leftover}"


@pytest.fixture(params=LOOP_KINDS)
def loop_kind(request):
    return request.param


@pytest.fixture(params=PYTEST_IMPLEMENTATIONS)
def impl(request):
    return load_adapter(request.param)


@pytest.fixture
def session(impl, loop_kind):
    with impl.session(loop_kind) as sess:
        yield sess


@pytest.fixture
def noop_actor(impl, session):
    return impl.noop_actor(session)


@pytest.fixture
def group_of(impl, loop_kind):
    """pytest-benchmark group of a workload: each pyactors figure beside its floor."""
    return lambda workload: f"{workload} [{loop_kind}]"
