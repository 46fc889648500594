"""Operations on a live actor through its handle: kill, lookup by name, live concurrency
limits and statistics."""

from __future__ import annotations

from typing import cast

from . import _core, _runtime
from ._actor import ActorHandle
from ._busy import join_or_report, running_now
from ._options import positive_int, require_bool
from ._ray.objects import kill_on_ray, ray_handle
from .exceptions import _actor_died_error

# How long kill() waits at most for the actor's threads to end (a loop unwinding its cancelled
# tasks). A thread stuck in user code is named, not waited for: it cannot be stopped, and it is
# a daemon that ends when the method returns.
KILL_JOIN_TIMEOUT = 2.0


def _core_of(actor: object, what: str) -> _core.ActorCore:
    if not isinstance(actor, ActorHandle):
        if ray_handle(actor) is not None:
            raise RuntimeError(
                f"{what}() is pyactors-only: it needs the in-process runtime, and "
                f"{actor!r} is an actor on Ray (the Ray backend), whose queues "
                f"and limits Ray keeps to itself; see Ray's dashboard or "
                f"ray.util.state for its tasks, or run it with backend='local'"
            )
        raise TypeError(f"{what}() takes an actor handle, got {type(actor).__name__} {actor!r}")
    return actor._pyactors_core


def kill(actor: ActorHandle, *, no_restart: bool = True) -> None:
    """Kill an actor now: its queued and running calls, and every call made after kill()
    returns, fail with ActorDiedError; its loops and threads stop. Running ``async def``
    calls are cancelled; a running plain method cannot be interrupted and finishes unseen."""
    on_ray = ray_handle(actor)
    if on_ray is not None:
        kill_on_ray(on_ray, require_bool(no_restart, "kill(no_restart=...)"))
        return
    core = _core_of(actor, "kill")
    if not require_bool(no_restart, "kill(no_restart=...)"):
        raise ValueError(
            "kill(no_restart=False) is not supported: a killed actor's threads cannot be "
            "stopped, so it cannot restart in this process. kill(actor) ends it for good; an "
            "actor restarts (max_restarts) when one of its methods calls sys.exit()"
        )
    running = running_now([core])
    core.die(_actor_died_error(core, "it was killed by pyactors.kill()", None), False)
    join_or_report([core], KILL_JOIN_TIMEOUT, "pyactors.kill()", running)


def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    """The handle of the live actor created with ``.options(name=name)``.

    ``namespace`` is accepted for Ray's sake: one process has one namespace.
    """
    if namespace is not None and not isinstance(namespace, str):
        raise TypeError(
            f"get_actor(namespace=...) must be None or a str, got "
            f"{type(namespace).__name__} {namespace!r}"
        )
    if not isinstance(name, str):
        raise TypeError(
            f"get_actor() takes a non-empty str name, got {type(name).__name__} {name!r}"
        )
    if not name:
        raise ValueError("get_actor() takes a non-empty str name, got ''")
    runtime = _runtime.current()
    if runtime.backend == "ray":
        return cast(ActorHandle, runtime.get_actor(name, namespace))  # Ray's handle, in fact
    handle = runtime.named(name)
    if handle is None:
        raise no_actor_named(name, runtime.names())
    return handle


def no_actor_named(name: str, names: list[str]) -> ValueError:
    return ValueError(f"there is no live actor named {name!r}; named actors: {names}")


def set_concurrency(actor: ActorHandle, group: str, limit: int) -> None:
    """Change a concurrency group's limit while the actor runs (pyactors only).

    Raising it starts queued calls at once; lowering it only delays new starts: running calls
    are never interrupted.
    """
    core = _core_of(actor, "set_concurrency")
    if not isinstance(group, str):
        raise TypeError(
            f"set_concurrency(): group must be a str, got {type(group).__name__} {group!r}"
        )
    core.group(group).set_limit(positive_int(limit, "set_concurrency(): limit"))


def stats(actor: ActorHandle) -> dict[str, dict[str, int]]:
    """Live statistics per concurrency group (pyactors only): ``limit``, ``running``,
    ``queued``, ``waiting_for_arguments``, ``completed``, ``failed``, ``cancelled``, and
    ``max_queue_wait`` (seconds, the longest any call waited for a slot)."""
    core = _core_of(actor, "stats")
    return {name: core.group(name).stats() for name in core.group_names}
