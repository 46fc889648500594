"""Ray, a local single-node instance: the adapter of benchmarks.workloads.

Ray is slow enough that the workloads run smaller (SIZES, printed under the table), and it
starts slowly, so one worker process runs all of Ray's workloads after one ray.init() (the
compare script says so). Its actors are processes of their own: memory and threads are
summed over the driver's process tree. benchmarks.impl_pyactors_ray runs the same code on
pyactors' Ray backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import ray

from benchmarks.ray_api import definitions
from benchmarks.workloads import FLOOR_COMPARISON_ONLY, Sizes

SIZES = Sizes(
    w1_calls=300,
    w1_warmup=20,
    w2_calls=1_000,
    w2_batches=2,
    w3_calls=200,
    w3_gather=1_000,
    w3_batches=1,
    w4_batches=1,
    w6_calls=100,
    w7_actors=3,
    w8_actors=4,
)
NOT_APPLICABLE = FLOOR_COMPARISON_ONLY
NOTES = {
    "W8": "ray: each actor is a worker process; created actors are waited for with "
    "__ray_ready__ before the never-called figure",
}
MULTIPROCESS = True
INIT_OPTIONS = {"num_cpus": 2, "include_dashboard": False}


def adapter(name: str, api, start: Callable[[], None], stop: Callable[[], None]) -> dict:
    """An adapter's namespace for Ray's API module `api` (ray, or pyactors on Ray), started
    and stopped by `start` and `stop`."""
    shared = definitions(api)

    @contextmanager
    def session(loop: None) -> Iterator[None]:
        start()
        try:
            yield None
        finally:
            stop()

    def new_caller_loop(session) -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop()

    def scale_actor(session):
        actor = shared["Tracker"].remote()
        api.get(actor.__ray_ready__.remote())  # Ray creates actors in the background
        return actor

    return {
        **shared,
        "NAME": name,
        "SIZES": SIZES,
        "NOT_APPLICABLE": NOT_APPLICABLE,
        "NOTES": NOTES,
        "MULTIPROCESS": MULTIPROCESS,
        "start": start,
        "session": session,
        "new_caller_loop": new_caller_loop,
        "scale_actor": scale_actor,
    }


def start() -> None:
    if not ray.is_initialized():
        ray.init(**INIT_OPTIONS)


globals().update(adapter("ray", ray, start, ray.shutdown))
