"""Ray's ``ray.actor`` names: ``ActorClass``, ``ActorHandle`` and ``exit_actor()``."""

from __future__ import annotations

from . import _core, _runtime
from ._actor import ActorClass, ActorHandle
from .exceptions import ActorExit

__all__ = ["ActorClass", "ActorHandle", "exit_actor"]


def exit_actor() -> None:
    """Leave the current actor gracefully, from one of its methods: this call and every call
    that has not started fail with ActorDiedError ("exited intentionally"), calls already
    running end, ``__ray_shutdown__`` runs, and the actor is never restarted."""
    group = _core.current_group()
    if group is None and _runtime.ray_running_here():  # in an actor on Ray: Ray's exit
        import ray.actor

        ray.actor.exit_actor()
    if group is None or not group.actor.is_actor:
        raise TypeError(
            "exit_actor() is only meaningful inside an actor's method; to end an "
            "actor from outside, use pyactors.kill(handle)"
        )
    raise ActorExit("exit_actor() was called")
