"""pyactors on its Ray backend (``init(backend="ray")``): plain Ray's adapter, workloads and
sizes, so that the two columns side by side show what the backend adds to each call."""

from __future__ import annotations

import pyactors
from benchmarks.impl_ray import INIT_OPTIONS, adapter


def start() -> None:
    if not pyactors.is_initialized():
        pyactors.init(backend="ray", **INIT_OPTIONS)


globals().update(adapter("pyactors-ray", pyactors, start, pyactors.shutdown))
