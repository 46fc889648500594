"""pytest-benchmark figures of P1 and P2 (`python -m benchmarks.processes`): a process actor
grouped with the raw pipe round trip it is built on and with an in-process actor.

Times are per round: P1 rounds make ROUNDTRIPS_PER_ROUND round trips, P2 rounds submit
PIPELINE_CALLS calls and then get them all. Rounds are small, so that the smoke run
(`--benchmark-disable`) stays quick; the script gives per-call figures, ratios and targets.
These tests use none of conftest's adapter fixtures (process actors have no floor there), only
its check for threads left behind, and check as well that no worker process is left behind.
"""

import pytest

from benchmarks.impl_pyactors import pipelined, roundtrips
from benchmarks.processes import PipeEcho, probe, pyactors_runtime, wait_for_processes
from benchmarks.workloads import process_tree

ROUNDTRIPS_PER_ROUND = 200
PIPELINE_CALLS = 500
P1_GROUP = f"P1 sync round trip x{ROUNDTRIPS_PER_ROUND}"


@pytest.fixture
def processes_before():
    """How many processes this tree has (a Ray session the tests started has some), which the
    benchmark must leave as it found."""
    before = len(process_tree())
    yield before
    assert wait_for_processes(before) == before, "processes left behind"


@pytest.fixture(params=["process actor", "in-process actor"])
def probe_actor(request, processes_before):
    with pyactors_runtime():
        yield probe(process=request.param == "process actor")


def test_p1_sync_roundtrip(benchmark, probe_actor):
    benchmark.group = P1_GROUP
    benchmark.extra_info["calls_per_round"] = ROUNDTRIPS_PER_ROUND
    benchmark(roundtrips, probe_actor, ROUNDTRIPS_PER_ROUND)


# 3.12+ warns that forking a process with threads (pytest's faulthandler watchdog) may deadlock
# the child; the echo child runs no thread.
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_p1_pipe_roundtrip(benchmark, processes_before):
    benchmark.group = P1_GROUP
    benchmark.extra_info["calls_per_round"] = ROUNDTRIPS_PER_ROUND
    with PipeEcho() as echo:
        benchmark(echo.roundtrips, ROUNDTRIPS_PER_ROUND)


def test_p2_pipelined(benchmark, probe_actor):
    benchmark.group = f"P2 pipelined x{PIPELINE_CALLS}"
    benchmark.extra_info["calls_per_round"] = PIPELINE_CALLS
    results = benchmark(pipelined, probe_actor, PIPELINE_CALLS)
    assert results == [None] * PIPELINE_CALLS


def test_progress_is_one_where_a_target_is_met_exactly_and_higher_is_better():
    from benchmarks.processes import ROWS, progress

    result = {
        "p1_process": {"value": 30.0},  # µs: twice the pipe's, the target 1.5x
        "p1_pipe": {"value": 15.0},
        "p2_process": {"value": 200_000.0},  # calls/s: the target 100,000
        "p3_pyactors": {"value": 30_000.0},  # tasks/s: the target 3x the executor
        "p3_executor": {"value": 10_000.0},
    }
    reached = dict(progress(result, ROWS))
    assert reached == {
        "P1 round trip <= 1.5x the raw pipe's": 0.75,
        "P2 pipelined >= 100,000 calls/s": 2.0,
        "P3 tiny tasks >= 3x ProcessPoolExecutor": 1.0,
    }
