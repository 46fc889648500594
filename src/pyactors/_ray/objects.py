"""Ray's refs and handles given to pyactors' API: recognised without importing Ray (a process
that has not imported it holds none), and handed to Ray's own functions."""

from __future__ import annotations

import sys
from typing import Any


def _ray() -> Any:  # the ray module, if imported (no stubs: Any)
    return sys.modules.get("ray")


def is_ray_ref(value: object) -> bool:
    """A Ray ObjectRef or ObjectRefGenerator (what get/wait/cancel hand to Ray)."""
    ray = _ray()
    return ray is not None and isinstance(value, (ray.ObjectRef, ray.ObjectRefGenerator))


def foreign_op(what: str, refs: object, options: dict[str, Any]) -> Any:
    """get/wait of Ray refs (a ref, or a list of only Ray refs) and cancel of one, by Ray;
    NotImplemented for anything else, which the caller reports as bad input."""
    ray = _ray()
    if ray is None:
        return NotImplemented
    if isinstance(refs, list):
        if what == "cancel" or not refs or not all(is_ray_ref(ref) for ref in refs):
            return NotImplemented
    elif not is_ray_ref(refs):
        return NotImplemented
    return getattr(ray, what)(refs, **options)


def ray_handle(actor: object) -> Any:
    """`actor` if it is a Ray actor handle, else None."""
    ray = _ray()
    if ray is not None and isinstance(actor, ray.actor.ActorHandle):
        return actor
    return None


def kill_on_ray(handle: Any, no_restart: bool) -> None:
    _ray().kill(handle, no_restart=no_restart)
