"""get_runtime_context(): what the calling code runs in."""

from __future__ import annotations

from . import _core


class RuntimeContext:
    """Where the calling code runs, read when get_runtime_context() was called."""

    def __init__(self, group):
        self._group = group
        self._core = group.actor if group is not None and group.actor.is_actor else None

    @property
    def in_actor(self) -> bool:
        return self._core is not None

    def get_actor_id(self) -> str | None:
        """The current actor's id, or None outside an actor (Ray's name)."""
        return None if self._core is None else self._core.actor_id

    @property
    def actor_id(self) -> str | None:
        return self.get_actor_id()

    @property
    def concurrency_group(self) -> str | None:
        """The concurrency group the current call runs in, or None outside an actor."""
        return None if self._core is None else self._group.name

    @property
    def current_actor(self):
        """A handle to the current actor, so a method can call its own methods remotely."""
        if self._core is None:
            raise RuntimeError("get_runtime_context().current_actor is only available inside "
                               "an actor's method; this code is not running in an actor")
        return self._core.handle_factory()

    def __repr__(self):
        if self._core is None:
            return "RuntimeContext(not in an actor)"
        return (f"RuntimeContext(actor={self._core.describe()}, "
                f"concurrency_group={self._group.name!r})")


def get_runtime_context() -> RuntimeContext:
    return RuntimeContext(_core.current_group())
