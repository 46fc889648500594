"""The two workloads, written once for pyactors and for the floor, plus how to start each.

W1, sync round trip: a plain thread makes one call and blocks for its result, again and again.
W2, pipelined: a plain thread submits many calls, then waits for all their results.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterator

import pyactors as ray
from benchmarks.floor import FloorActor

LOOP_KINDS = ("uvloop", "asyncio")
PIPELINE_CALLS = 10_000


@ray.remote
class NoopActor:
    async def noop(self):
        return None


@contextmanager
def running_pyactors(loop_kind: str) -> Iterator[Any]:
    ray.init(loop=loop_kind)
    try:
        actor = NoopActor.remote()
        ray.get(actor.noop.remote())  # starts the actor's loop thread outside any timing
        yield actor
    finally:
        ray.shutdown()


@contextmanager
def running_floor(loop_kind: str) -> Iterator[FloorActor]:
    floor = FloorActor(loop_kind)
    try:
        floor.call_noop().result()
        yield floor
    finally:
        floor.close()


def pyactors_roundtrips(actor, calls: int) -> None:
    for _ in range(calls):
        ray.get(actor.noop.remote())


def floor_roundtrips(floor: FloorActor, calls: int) -> None:
    for _ in range(calls):
        floor.call_noop().result()


def pyactors_pipelined(actor, calls: int = PIPELINE_CALLS) -> list:
    return ray.get([actor.noop.remote() for _ in range(calls)])


def floor_pipelined(floor: FloorActor, calls: int = PIPELINE_CALLS) -> list:
    futures = [floor.call_noop() for _ in range(calls)]
    return [fut.result() for fut in futures]


@dataclass(frozen=True)
class Implementation:
    start: Callable[[str], ContextManager[Any]]
    roundtrips: Callable[[Any, int], None]
    pipelined: Callable[[Any, int], list]


IMPLEMENTATIONS = {
    "pyactors": Implementation(running_pyactors, pyactors_roundtrips, pyactors_pipelined),
    "floor": Implementation(running_floor, floor_roundtrips, floor_pipelined),
}
