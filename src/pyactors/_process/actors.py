"""Process actors, parent side: an actor core whose groups are ProcessGroups, all sending to
one worker process that runs the same class as an in-process actor."""

from __future__ import annotations

import os

from .. import _core
from .._actor import ActorHandle, group_limits
from .._generators import Generator
from .._options import DEFAULT_GROUP
from ..exceptions import _actor_died_error
from . import wire
from .link import ActorLink, WorkerLifecycle


def assemble(actor_class, options: dict, runtime, args: tuple, kwargs: dict):
    """A process actor, not started: its core, and what starts it (spawns the worker and
    submits __init__). Arguments are pickled here: one that cannot cross raises TypeError
    naming it, and no process is started."""
    cls = actor_class._cls
    actor_id = os.urandom(8).hex()
    link = ActorLink(
        runtime.process_hub(),
        cls,
        options.get("max_restarts", 0),
        options.get("max_task_retries", 0),
    )
    init_args, init_kwargs = link.encode("__init__", args, kwargs or None)
    setup = wire.dumps(  # shared: each restart's worker reads it
        (actor_class, _worker_options(options), actor_id, options.get("name"), runtime.job_id),
        shared=True,
    )
    core = _core.ActorCore(
        cls.__name__,
        actor_id,
        None,
        options.get("max_pending_calls", 0),
        lambda: ActorHandle(core, _bind_methods(core, actor_class)),
        runtime.reaper,
        0,
        0,
    )
    link.core = core
    core.lifecycle = WorkerLifecycle(link)
    serial = not actor_class._is_async
    for group, limit in group_limits(actor_class, options).items():
        core.add_process_group(group, limit, link, serial)

    def start():
        try:
            link.start(setup)
        except BaseException as exc:
            core.die(_actor_died_error(core, "its worker process could not be started", exc))
            raise
        return core.start("__init__", init_args, init_kwargs or {})

    return core, start


def _worker_options(options: dict) -> dict:
    # The worker's actor runs what this process admits: the same groups and limits, and
    # nothing of the options that act here (names, pending limits, where it runs). It
    # restarts itself after sys.exit() in a method, as in one process; this process restarts
    # the worker after it dies (see ActorLink).
    return {
        key: value
        for key, value in options.items()
        if key in ("max_concurrency", "concurrency_groups", "max_restarts", "max_task_retries")
    }


def _bind_methods(core: _core.ActorCore, actor_class) -> dict:
    methods = {}
    for name, spec in actor_class._methods.items():
        group = core.group(spec.group or DEFAULT_GROUP)
        qualified = f"{core.class_name}.{name}"
        blocking = spec.blocking and actor_class._is_async
        if spec.generator:  # its calls run as generator calls of the worker's actor
            methods[name] = Generator(name, on_loop=spec.is_async).method(
                qualified, group, None, blocking, spec.num_returns, spec.backpressure
            )
            continue
        methods[name] = _core.RemoteMethod(
            name, qualified, group, spec.is_async, None, blocking, spec.awaits, spec.num_returns
        )
    methods["__ray_terminate__"] = _core.RemoteMethod(
        "__ray_terminate__", f"{core.class_name}.__ray_terminate__", core.default_group, False
    )
    return methods
