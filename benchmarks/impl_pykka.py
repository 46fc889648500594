"""pykka (ThreadingActor, one thread per actor, one message at a time): the adapter of
benchmarks.workloads. Calls go through the actor's proxy, pykka's method-call API:
`proxy.noop().get()`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pykka

from benchmarks.workloads import FLOOR_COMPARISON_ONLY, NotApplicable, Sizes

NAME = "pykka"
SIZES = Sizes()
NOT_APPLICABLE = {
    "W3": "pykka.Future.__await__ calls the blocking get(): awaiting blocks the caller's loop",
    "W4": "pykka has no concurrency groups",
    "W5": "pykka actors handle one message at a time: no max_concurrency",
    **FLOOR_COMPARISON_ONLY,
}
NOTES = {
    "W8": "pykka: no groups; an actor is one thread, started by start(), called once",
}
MULTIPROCESS = False


class NoopActor(pykka.ThreadingActor):
    def noop(self):
        return None


@contextmanager
def session(loop: None) -> Iterator[None]:
    try:
        yield None
    finally:
        pykka.ActorRegistry.stop_all()


def noop_actor(session):
    proxy = NoopActor.start().proxy()
    proxy.noop().get()
    return proxy


def roundtrips(proxy, calls: int) -> None:
    for _ in range(calls):
        proxy.noop().get()


def pipelined(proxy, calls: int) -> list:
    return pykka.get_all([proxy.noop() for _ in range(calls)])


def _not_applicable(workload: str):
    def unsupported(*args, **kwargs):
        raise NotApplicable(NOT_APPLICABLE[workload])

    return unsupported


new_caller_loop = async_roundtrips = async_gather = _not_applicable("W3")
tracker_actor = tracked_calls = max_in_flight = _not_applicable("W4")


def lifecycle(session) -> None:
    ref = NoopActor.start()
    ref.proxy().noop().get()
    ref.stop()


def scale_actor(session):
    return NoopActor.start().proxy()


def touch_groups(proxy) -> None:
    proxy.noop().get()
