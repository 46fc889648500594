"""pytest-benchmark figures of W1 and W2, each pyactors figure grouped with its floor.

Times are per round: W1 rounds make ROUNDTRIPS_PER_ROUND calls, W2 rounds PIPELINE_CALLS.
`python -m benchmarks.compare` gives per-call figures and ratios.
"""

from benchmarks.workloads import Sizes

ROUNDTRIPS_PER_ROUND = 200
PIPELINE_CALLS = Sizes().w2_calls


def test_w1_sync_roundtrip(benchmark, impl, noop_actor, group_of):
    benchmark.group = group_of(f"W1 sync round trip x{ROUNDTRIPS_PER_ROUND}")
    benchmark.extra_info["calls_per_round"] = ROUNDTRIPS_PER_ROUND
    benchmark(impl.roundtrips, noop_actor, ROUNDTRIPS_PER_ROUND)


def test_w2_pipelined(benchmark, impl, noop_actor, group_of):
    benchmark.group = group_of(f"W2 pipelined x{PIPELINE_CALLS}")
    benchmark.extra_info["calls_per_round"] = PIPELINE_CALLS
    results = benchmark(impl.pipelined, noop_actor, PIPELINE_CALLS)
    assert results == [None] * PIPELINE_CALLS
