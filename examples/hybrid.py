"""Fine-grained actors on a cluster: Ray actors as shards, pyactors actors inside them.

Ray places each Shard (one process) anywhere on the cluster; inside it, thousands of small
pyactors actors talk to each other at in-process speed - a call costs microseconds there,
against a Ray actor call's hundreds.

Run: python examples/hybrid.py   (needs Ray: pip install 'pyactors[ray]'; set RAY_ADDRESS to
join a running cluster)
"""

import os
import threading
import time

import ray

import pyactors


@pyactors.remote
class Cell:
    def __init__(self):
        self.value = 0

    def add(self, amount):
        self.value += amount
        return self.value, os.getpid(), threading.current_thread().name


@ray.remote
class Shard:
    """A Ray actor hosting `cells` pyactors actors in its own process."""

    def __init__(self, cells):
        # In this process, whatever PYACTORS_BACKEND says: these actors are the shard's own.
        pyactors.init(backend="local")
        self.cells = [Cell.remote() for _ in range(cells)]

    def bump(self, rounds):
        """Add 1 to every cell `rounds` times; the totals, where the cells ran, and the time
        per in-process call."""
        start = time.perf_counter()
        refs = [cell.add.remote(1) for _ in range(rounds) for cell in self.cells]
        results = pyactors.get(refs)
        per_call = (time.perf_counter() - start) / len(refs)
        totals = sorted({value for value, _, _ in results[-len(self.cells) :]})
        pids = {pid for _, pid, _ in results}
        threads = {name.split(":")[0] for _, _, name in results}
        return totals, pids, threads, os.getpid(), per_call


def main():
    ray.init()
    shards = [Shard.remote(100) for _ in range(2)]
    start = time.perf_counter()
    for totals, pids, threads, shard_pid, per_call in ray.get(
        [shard.bump.remote(50) for shard in shards]
    ):
        print(
            f"shard pid {shard_pid}: cells at {totals} after 50 rounds, run in pids {pids} "
            f"on {sorted(threads)} threads, {per_call * 1e6:.1f} us per in-process call"
        )
    print(f"10,000 cell calls in {time.perf_counter() - start:.2f} s through 2 Ray calls")
    ray.shutdown()


if __name__ == "__main__":
    main()
