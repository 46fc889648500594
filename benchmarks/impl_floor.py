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
    BODIES as ALL_BODIES,
)
from benchmarks.workloads import (
    DEFAULT_MAX_CONCURRENCY,
    GROUP_LIMITS,
    GROUP_NAMES,
    Bodies,
    InFlightTracker,
    Sizes,
)

NAME = "floor"
SIZES = Sizes()
NOT_APPLICABLE: dict[str, str] = {}
NOTES: dict[str, str] = {}
MULTIPROCESS = False
BODIES = ALL_BODIES


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


@dataclass(frozen=True)
class Target:
    """A floor actor and the object whose coroutine methods (the bodies) it runs."""

    floor: FloorActor
    obj: object


class FloorRelay:
    """W9: awaits the next floor actor's relay, from inside a call on this one's loop."""

    def __init__(self, next_target: Target | None):
        self.next = next_target

    async def relay(self):
        if self.next is None:
            return None
        return await self.next.floor.call_async(self.next.obj.relay)


@contextmanager
def session(loop: str) -> Iterator[Session]:
    sess = Session(loop)
    try:
        yield sess
    finally:
        for actor in sess.actors:
            actor.close()


def body_actor(session: Session) -> Target:
    target = Target(session.new_actor(), Bodies())
    target.floor.call(target.obj.noop).result()
    return target


noop_actor = body_actor  # the floor's noop actor needs no __init__ of its own to skip


def relay_chain(session: Session, depth: int) -> Target:
    head = None
    for _ in range(depth):
        head = Target(session.new_actor(), FloorRelay(head))
    assert head is not None, "a chain has at least one actor"
    head.floor.call(head.obj.relay).result()
    return head


def roundtrips(actor: Target, calls: int, body: str = "noop") -> None:
    call, obj = actor.floor.call, actor.obj
    for _ in range(calls):
        call(getattr(obj, body)).result()


def pipelined(actor: Target, calls: int, body: str = "noop") -> list:
    call, obj = actor.floor.call, actor.obj
    futures = [call(getattr(obj, body)) for _ in range(calls)]
    return [fut.result() for fut in futures]


def new_caller_loop(session: Session) -> asyncio.AbstractEventLoop:
    return new_event_loop(session.loop)


async def async_roundtrips(actor: Target, calls: int, body: str = "noop") -> None:
    call, obj = actor.floor.call_async, actor.obj
    for _ in range(calls):
        await call(getattr(obj, body))


async def async_gather(actor: Target, calls: int, body: str = "noop") -> list:
    call, obj = actor.floor.call_async, actor.obj
    return await asyncio.gather(*[call(getattr(obj, body)) for _ in range(calls)])


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


def tracked_roundtrips(plan) -> None:
    for actor, group in plan:
        actor.floor.call(actor.state.track, group, 0.0, group=group).result()


async def async_tracked_roundtrips(plan) -> None:
    for actor, group in plan:
        await actor.floor.call_async(actor.state.track, group, 0.0, group=group)


def lifecycle(session: Session) -> None:
    actor = FloorActor(session.loop)
    actor.call_noop().result()
    actor.close()


def scale_actor(session: Session) -> Tracked:
    return tracker_actor(session, DEFAULT_MAX_CONCURRENCY)


def touch_groups(actor: Tracked) -> None:
    tracked_calls(actor, [(group, 0.0) for group in GROUP_NAMES])
