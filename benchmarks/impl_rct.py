"""`asyncio.run_coroutine_threadsafe` onto one uvloop thread: the adapter of
benchmarks.workloads.

The stdlib's own answer, with no actor layer: one event loop on one thread serves every
"actor" (an object whose coroutine methods run there), so creating one starts no thread.
Groups and max_concurrency are an asyncio.Semaphore each, on that one loop: the limits hold,
but a busy group shares its thread with the others.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from benchmarks.floor import new_event_loop
from benchmarks.workloads import (
    DEFAULT_MAX_CONCURRENCY,
    FLOOR_COMPARISON_ONLY,
    GROUP_LIMITS,
    GROUP_NAMES,
    InFlightTracker,
    Sizes,
)

NAME = "rct"
SIZES = Sizes()
NOT_APPLICABLE = FLOOR_COMPARISON_ONLY
NOTES = {
    "W4": "rct: groups are asyncio.Semaphores on its one loop thread",
    "W7": "rct: an actor is an object served by the one shared loop thread: no thread to "
    "start or stop",
    "W8": "rct: every actor shares the one loop thread",
}
MULTIPROCESS = False


@dataclass(frozen=True)
class Session:
    loop_kind: str
    loop: asyncio.AbstractEventLoop


@dataclass(frozen=True)
class Tracked:
    loop: asyncio.AbstractEventLoop
    state: InFlightTracker
    limits: dict  # group -> asyncio.Semaphore


async def _noop() -> None:
    return None


async def _limited(semaphore: asyncio.Semaphore, coroutine):
    async with semaphore:
        return await coroutine


@contextmanager
def session(loop: str) -> Iterator[Session]:
    event_loop = new_event_loop(loop)
    thread = threading.Thread(target=event_loop.run_forever, name=f"rct:{loop}", daemon=True)
    thread.start()
    try:
        yield Session(loop, event_loop)
    finally:
        event_loop.call_soon_threadsafe(event_loop.stop)
        thread.join()
        event_loop.close()


def noop_actor(session: Session) -> asyncio.AbstractEventLoop:
    asyncio.run_coroutine_threadsafe(_noop(), session.loop).result()
    return session.loop


def roundtrips(loop: asyncio.AbstractEventLoop, calls: int) -> None:
    for _ in range(calls):
        asyncio.run_coroutine_threadsafe(_noop(), loop).result()


def pipelined(loop: asyncio.AbstractEventLoop, calls: int) -> list:
    futures = [asyncio.run_coroutine_threadsafe(_noop(), loop) for _ in range(calls)]
    return [fut.result() for fut in futures]


def new_caller_loop(session: Session) -> asyncio.AbstractEventLoop:
    return new_event_loop(session.loop_kind)


async def async_roundtrips(loop: asyncio.AbstractEventLoop, calls: int) -> None:
    for _ in range(calls):
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_noop(), loop))


async def async_gather(loop: asyncio.AbstractEventLoop, calls: int) -> list:
    return await asyncio.gather(
        *[
            asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_noop(), loop))
            for _ in range(calls)
        ]
    )


def tracker_actor(session: Session, max_concurrency: int) -> Tracked:
    limits = {"default": max_concurrency, **GROUP_LIMITS}
    return Tracked(
        session.loop,
        InFlightTracker(),
        {group: asyncio.Semaphore(limit) for group, limit in limits.items()},
    )


def tracked_calls(actor: Tracked, plan) -> list:
    futures = [
        asyncio.run_coroutine_threadsafe(
            _limited(actor.limits[group], actor.state.track(group, delay)), actor.loop
        )
        for group, delay in plan
    ]
    return [fut.result() for fut in futures]


def max_in_flight(actor: Tracked) -> dict:
    return dict(actor.state.max_seen)


def lifecycle(session: Session) -> None:
    touch_groups(tracker_actor(session, DEFAULT_MAX_CONCURRENCY))


def scale_actor(session: Session) -> Tracked:
    return tracker_actor(session, DEFAULT_MAX_CONCURRENCY)


def touch_groups(actor: Tracked) -> None:
    tracked_calls(actor, [(group, 0.0) for group in GROUP_NAMES])
