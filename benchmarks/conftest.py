"""Fixtures of the benchmarks, self-contained so that they do not depend on tests/."""

import threading

import pytest

from benchmarks.workloads import LOOP_KINDS, running_floor, running_pyactors


@pytest.fixture(autouse=True)
def no_leftover_threads():
    before = set(threading.enumerate())
    yield
    leftover = set(threading.enumerate()) - before
    assert not leftover, f"threads left behind: {leftover}"


@pytest.fixture(params=LOOP_KINDS)
def loop_kind(request):
    return request.param


@pytest.fixture
def noop_actor(loop_kind):
    with running_pyactors(loop_kind) as actor:
        yield actor


@pytest.fixture
def floor_actor(loop_kind):
    with running_floor(loop_kind) as floor:
        yield floor
