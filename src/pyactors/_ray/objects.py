"""Ray's refs and handles given to pyactors' API: recognised without importing Ray (a process
that has not imported it holds none), and handed to Ray's own functions."""

from __future__ import annotations

import sys


def _ray():
    return sys.modules.get("ray")


def _is_ray_ref(ray, value) -> bool:
    return isinstance(value, (ray.ObjectRef, ray.ObjectRefGenerator))


def foreign_op(what: str, refs, options: dict):
    """get/wait of Ray refs (a ref, or a list of only Ray refs) and cancel of one by Ray, and
    "is_ref": whether `refs` is one Ray ref; NotImplemented for anything else, which the
    caller reports as bad input."""
    ray = _ray()
    if ray is None:
        return NotImplemented
    if what == "is_ref":
        return _is_ray_ref(ray, refs)
    if isinstance(refs, list):
        if what == "cancel" or not refs or not all(_is_ray_ref(ray, ref) for ref in refs):
            return NotImplemented
    elif not _is_ray_ref(ray, refs):
        return NotImplemented
    return getattr(ray, what)(refs, **options)


def is_ray_ref(value) -> bool:
    ray = _ray()
    return ray is not None and isinstance(value, ray.ObjectRef)


def ray_handle(actor):
    """`actor` if it is a Ray actor handle, else None."""
    ray = _ray()
    if ray is not None and isinstance(actor, ray.actor.ActorHandle):
        return actor
    return None


def kill_on_ray(handle, no_restart: bool) -> None:
    _ray().kill(handle, no_restart=no_restart)
