"""The workloads' actors and calls written once against Ray's actor API, as user code would be:
the pyactors and Ray adapters run this same code, each with its own `ray` module
(`import pyactors as ray`, `import ray`)."""

from __future__ import annotations

import asyncio

from benchmarks.workloads import (
    DEFAULT_MAX_CONCURRENCY,
    GROUP_LIMITS,
    GROUP_NAMES,
    Bodies,
    InFlightTracker,
)


def definitions(ray) -> dict:
    """The shared part of an adapter, for the API module `ray`."""

    @ray.remote
    class NoopActor:
        async def noop(self):
            return None

    @ray.remote
    class BodyActor(Bodies):
        pass

    @ray.remote
    class Relay:
        def __init__(self, next_actor):
            self.next = next_actor

        async def relay(self):
            if self.next is None:
                return None
            return await self.next.relay.remote()

    @ray.remote(concurrency_groups=GROUP_LIMITS)
    class Tracker(InFlightTracker):
        @ray.method(concurrency_group="io")
        async def io(self, delay):
            await self.track("io", delay)

        @ray.method(concurrency_group="compute")
        async def compute(self, delay):
            await self.track("compute", delay)

        async def default(self, delay):
            await self.track("default", delay)

        async def max_in_flight(self):
            return dict(self.max_seen)

    def noop_actor(session):
        actor = NoopActor.remote()
        ray.get(actor.noop.remote())  # the actor is up before any timing starts
        return actor

    def body_actor(session):
        actor = BodyActor.remote()
        ray.get(actor.noop.remote())
        return actor

    def relay_chain(session, depth: int):
        head = None
        for _ in range(depth):
            head = Relay.remote(head)
        ray.get(head.relay.remote())
        return head

    # A user writes `actor.noop.remote()`; getattr with the body's name is that lookup.
    def roundtrips(actor, calls: int, body: str = "noop") -> None:
        for _ in range(calls):
            ray.get(getattr(actor, body).remote())

    def pipelined(actor, calls: int, body: str = "noop") -> list:
        return ray.get([getattr(actor, body).remote() for _ in range(calls)])

    async def async_roundtrips(actor, calls: int, body: str = "noop") -> None:
        for _ in range(calls):
            await getattr(actor, body).remote()

    async def async_gather(actor, calls: int, body: str = "noop") -> list:
        return await asyncio.gather(*[getattr(actor, body).remote() for _ in range(calls)])

    def tracker_actor(session, max_concurrency: int):
        if max_concurrency == DEFAULT_MAX_CONCURRENCY:
            return Tracker.remote()
        return Tracker.options(max_concurrency=max_concurrency).remote()

    def tracked_calls(actor, plan) -> list:
        methods = {group: getattr(actor, group) for group in GROUP_NAMES}
        return ray.get([methods[group].remote(delay) for group, delay in plan])

    def max_in_flight(actor) -> dict:
        return ray.get(actor.max_in_flight.remote())

    def tracked_roundtrips(plan) -> None:
        for actor, group in plan:
            ray.get(getattr(actor, group).remote(0.0))

    async def async_tracked_roundtrips(plan) -> None:
        for actor, group in plan:
            await getattr(actor, group).remote(0.0)

    def lifecycle(session) -> None:
        actor = NoopActor.remote()
        ray.get(actor.noop.remote())
        ray.kill(actor)

    def scale_actor(session):
        return Tracker.remote()

    def touch_groups(actor) -> None:
        tracked_calls(actor, [(group, 0.0) for group in GROUP_NAMES])

    return {name: value for name, value in locals().items() if name != "ray"}
