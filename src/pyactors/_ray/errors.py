"""Ray's exception classes, made subclasses of pyactors' counterparts.

``except`` matches by the class's MRO alone (no ``__subclasscheck__``), so the only way for
``except pyactors.exceptions.ActorDiedError`` to catch the error Ray raises - from ``ray.get``,
from ``await ref``, inside a task - is for Ray's class to have ours among its bases. Each of
ours goes right after Ray's own first base where the MRO allows, so Ray's methods and
attributes keep precedence; the pyactors classes involved add no slots (``__slots__ = ()``),
which ``__bases__`` assignment requires.
"""

from __future__ import annotations

from .. import exceptions

# Parents first: a child's MRO is computed from its parents' as they are at that moment.
COUNTERPARTS = (
    ("RayError", "PyActorsError"),
    ("RayTaskError", "TaskError"),
    ("RayActorError", "ActorDiedError"),
    ("TaskCancelledError", "TaskCancelledError"),
    ("GetTimeoutError", "GetTimeoutError"),
    ("WorkerCrashedError", "WorkerCrashedError"),
    ("ObjectLostError", "ObjectLostError"),
    ("OwnerDiedError", "OwnerDiedError"),
    ("PendingCallsLimitExceeded", "PendingCallsLimitExceededError"),
    ("ActorAlreadyExistsError", "ActorNameTakenError"),
)


def adopt(ray_exceptions) -> list[str]:
    """Give Ray's exception classes their pyactors counterparts as bases (idempotent); the
    names of those that could not take them (none, for the Ray versions we test)."""
    refused = []
    for theirs_name, ours_name in COUNTERPARTS:
        theirs = getattr(ray_exceptions, theirs_name, None)
        ours = getattr(exceptions, ours_name)
        if theirs is None or issubclass(theirs, ours):
            continue
        bases = theirs.__bases__
        for at in (*range(1, len(bases) + 1), 0):
            try:
                theirs.__bases__ = (*bases[:at], ours, *bases[at:])
                break
            except TypeError:  # no consistent MRO there, or a layout clash
                continue
        else:
            refused.append(theirs_name)
    return refused
