"""The floor (benchmarks/floor.py), on uvloop or asyncio: the adapter of benchmarks.workloads.

A floor "actor" is a FloorActor (its groups' loop threads) plus the object whose coroutine
methods it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from benchmarks.floor import FloorActor, new_event_loop
from benchmarks.workloads import (
    DEFAULT_MAX_CONCURRENCY,
    GROUP_LIMITS,
    GROUP_NAMES,
    InFlightTracker,
    Sizes,
)

NAME = "floor"
SIZES = Sizes()
NOT_APPLICABLE: dict[str, str] = {}
NOTES: dict[str, str] = {}
MULTIPROCESS = False


@dataclass
class Session:
    loop: str
    actors: list[FloorActor] = field(default_factory=list)  # closed when the session ends

    def new_actor(self, **options) -> FloorActor:
        actor = FloorActor(self.loop, **options)
        self.actors.append(actor)
        return actor


@dataclass(frozen=True)
class Tracked:
    floor: FloorActor
    state: InFlightTracker


@contextmanager
def session(loop: str) -> Iterator[Session]:
    sess = Session(loop)
    try:
        yield sess
    finally:
        for actor in sess.actors:
            actor.close()


def noop_actor(session: Session) -> FloorActor:
    actor = session.new_actor()
    actor.call_noop().result()
    return actor


def roundtrips(actor: FloorActor, calls: int) -> None:
    for _ in range(calls):
        actor.call_noop().result()


def pipelined(actor: FloorActor, calls: int) -> list:
    futures = [actor.call_noop() for _ in range(calls)]
    return [fut.result() for fut in futures]


def new_caller_loop(session: Session) -> asyncio.AbstractEventLoop:
    return new_event_loop(session.loop)


async def _noop() -> None:
    return None


async def async_roundtrips(actor: FloorActor, calls: int) -> None:
    for _ in range(calls):
        await actor.call_async(_noop)


async def async_gather(actor: FloorActor, calls: int) -> list:
    return await asyncio.gather(*[actor.call_async(_noop) for _ in range(calls)])


def tracker_actor(session: Session, max_concurrency: int) -> Tracked:
    return Tracked(
        session.new_actor(max_concurrency=max_concurrency, concurrency_groups=GROUP_LIMITS),
        InFlightTracker(),
    )


def tracked_calls(actor: Tracked, plan) -> list:
    track, call = actor.state.track, actor.floor.call
    futures = [call(track, group, delay, group=group) for group, delay in plan]
    return [fut.result() for fut in futures]


def max_in_flight(actor: Tracked) -> dict:
    return dict(actor.state.max_seen)


def lifecycle(session: Session) -> None:
    actor = FloorActor(session.loop)
    actor.call_noop().result()
    actor.close()


def scale_actor(session: Session) -> Tracked:
    return tracker_actor(session, DEFAULT_MAX_CONCURRENCY)


def touch_groups(actor: Tracked) -> None:
    tracked_calls(actor, [(group, 0.0) for group in GROUP_NAMES])
