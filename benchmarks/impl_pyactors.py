"""pyactors, on uvloop or asyncio: the adapter of benchmarks.workloads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pyactors as ray
from benchmarks.floor import new_event_loop
from benchmarks.ray_api import definitions
from benchmarks.workloads import BODIES as ALL_BODIES
from benchmarks.workloads import Sizes

NAME = "pyactors"
SIZES = Sizes()
NOT_APPLICABLE: dict[str, str] = {}
NOTES: dict[str, str] = {}
MULTIPROCESS = False
BODIES = ALL_BODIES

# The actors and calls: the same code for pyactors and Ray.
globals().update(definitions(ray))


@contextmanager
def session(loop: str) -> Iterator[str]:
    ray.init(loop=loop)
    try:
        yield loop
    finally:
        ray.shutdown()


def new_caller_loop(session) -> asyncio.AbstractEventLoop:
    return new_event_loop(session)
