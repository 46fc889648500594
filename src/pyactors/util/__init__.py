"""Ray's ``ray.util`` helpers: ``ActorPool``, and ``queue.Queue`` (an actor-backed queue)."""

from . import queue
from .actor_pool import ActorPool

__all__ = ["ActorPool", "queue"]
