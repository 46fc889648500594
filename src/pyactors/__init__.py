"""pyactors: Ray's actor concurrency model in one process, with a compiled per-call path.

``import pyactors as ray`` runs code written for Ray's actor API: async actors, concurrency
groups with an event loop each, ``max_concurrency``, and ObjectRefs usable as asyncio futures.
"""

from . import actor, exceptions, util
from ._actor import ActorClass, ActorHandle, method
from ._context import RuntimeContext, get_runtime_context
from ._control import get_actor, kill, set_concurrency, stats
from ._core import ObjectRef, ObjectRefGenerator, cancel, get, put, wait
from ._function import RemoteFunction
from ._generators import DynamicObjectRefGenerator
from ._remote import remote
from ._runtime import init, is_initialized, shutdown

__all__ = [
    "ActorClass",
    "ActorHandle",
    "DynamicObjectRefGenerator",
    "ObjectRef",
    "ObjectRefGenerator",
    "RemoteFunction",
    "RuntimeContext",
    "actor",
    "cancel",
    "exceptions",
    "get",
    "get_actor",
    "get_runtime_context",
    "init",
    "is_initialized",
    "kill",
    "method",
    "put",
    "remote",
    "set_concurrency",
    "shutdown",
    "stats",
    "util",
    "wait",
]

__version__ = "0.1.0"
