"""``remote``: the decorator that turns a class into an actor class and a function into a
remote function, used bare or with options."""

from __future__ import annotations

import inspect
from typing import Any

from ._actor import ActorClass
from ._function import RemoteFunction
from ._options import ACTOR_DECORATOR_OPTIONS, actor_options


def remote(*args: Any, **options: Any) -> Any:
    """``@remote`` / ``@remote(max_concurrency=..., concurrency_groups={...})``.

    On a class: an ActorClass (``Cls.remote(...)`` creates an actor). On a function: a
    RemoteFunction (``f.remote(...)`` runs it and returns an ObjectRef).
    """
    if args:
        if len(args) == 1 and not options and callable(args[0]):
            return _make_remote(args[0], {})
        got = f"{type(args[0]).__name__} {args[0]!r}" if len(args) == 1 else repr(args)
        raise TypeError(
            f"remote() takes a class or function (@remote), or only keyword "
            f"options (@remote(max_concurrency=4)); got {got}"
        )

    def decorate(target: Any) -> Any:
        return _make_remote(target, options)

    return decorate


def _make_remote(target: Any, options: dict[str, Any]) -> ActorClass | RemoteFunction:
    if inspect.isclass(target):
        where = f"remote({target.__qualname__})"
        return ActorClass(target, actor_options(options, ACTOR_DECORATOR_OPTIONS, where))
    if inspect.isfunction(target) or inspect.isbuiltin(target) or inspect.ismethod(target):
        return RemoteFunction(target, options)
    raise TypeError(
        f"@remote decorates a class or a function, got {type(target).__name__} {target!r}"
    )
