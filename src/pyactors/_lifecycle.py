"""What the core asks of an actor's instance when the actor leaves gracefully (run its
``__ray_shutdown__``, once) or restarts after sys.exit() in a method (reset its state, so that
``__init__`` can run again on the same object: every bound method stays valid)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("pyactors")


class Lifecycle:
    def __init__(self, instance: Any):
        self._instance = instance
        self._shut_down = False

    def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        hook = getattr(type(self._instance), "__ray_shutdown__", None)
        if hook is None:
            return
        try:
            hook(self._instance)
        except BaseException:  # the actor leaves all the same
            log.exception(
                "pyactors: __ray_shutdown__() of %s raised", type(self._instance).__name__
            )

    def reset(self) -> Callable[..., None]:
        """Clear the instance's state; returns its __init__, to run again."""
        instance = self._instance
        if hasattr(instance, "__dict__"):
            vars(instance).clear()
        for klass in type(instance).__mro__:
            slots = klass.__dict__.get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if name not in ("__dict__", "__weakref__") and hasattr(instance, name):
                    delattr(instance, name)
        init: Callable[..., None] = instance.__init__
        return init
