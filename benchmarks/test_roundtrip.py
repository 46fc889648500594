"""pytest-benchmark figures of W1 and W2, each pyactors figure grouped with its floor.

Times are per round: W1 rounds make ROUNDTRIPS_PER_ROUND calls, W2 rounds PIPELINE_CALLS.
`python -m benchmarks.compare` gives per-call figures and ratios.
"""

import pytest

from benchmarks.workloads import (
    PIPELINE_CALLS,
    floor_pipelined,
    floor_roundtrips,
    pyactors_pipelined,
    pyactors_roundtrips,
)

ROUNDTRIPS_PER_ROUND = 200

W1_GROUP = f"W1 sync round trip x{ROUNDTRIPS_PER_ROUND}"
W2_GROUP = f"W2 pipelined x{PIPELINE_CALLS}"


@pytest.mark.benchmark(group=W1_GROUP)
def test_sync_roundtrip_pyactors(benchmark, noop_actor):
    benchmark.extra_info["calls_per_round"] = ROUNDTRIPS_PER_ROUND
    benchmark(pyactors_roundtrips, noop_actor, ROUNDTRIPS_PER_ROUND)


@pytest.mark.benchmark(group=W1_GROUP)
def test_sync_roundtrip_floor(benchmark, floor_actor):
    benchmark.extra_info["calls_per_round"] = ROUNDTRIPS_PER_ROUND
    benchmark(floor_roundtrips, floor_actor, ROUNDTRIPS_PER_ROUND)


@pytest.mark.benchmark(group=W2_GROUP)
def test_pipelined_pyactors(benchmark, noop_actor):
    benchmark.extra_info["calls_per_round"] = PIPELINE_CALLS
    results = benchmark(pyactors_pipelined, noop_actor)
    assert results == [None] * PIPELINE_CALLS


@pytest.mark.benchmark(group=W2_GROUP)
def test_pipelined_floor(benchmark, floor_actor):
    benchmark.extra_info["calls_per_round"] = PIPELINE_CALLS
    results = benchmark(floor_pipelined, floor_actor)
    assert results == [None] * PIPELINE_CALLS
