"""ObjectRefs and actor handles that cross the process boundary inside values.

A ref pickled for the other side is exported: the other side unpickles a pending ref of its
own, asks to watch the original ("watch"), and the exporting side sends its outcome when it
completes ("settled"). A handle pickled into a worker becomes a ProxyHandle there, whose calls
go to the parent ("hcall"), which submits them through the real handle - to an in-process
actor, or on to another worker - and settles the worker's ref with the outcome. The same code
runs on both sides; the parent routes every call between workers.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from .. import _core
from ..exceptions import ActorDiedError
from . import wire
from .errors import decode_error, encode_error

_loading = threading.local()  # .peer: the Peer whose message is being unpickled


class Exports:
    """What one side pickled for the other: refs until watched, handles for their calls."""

    def __init__(self):
        self._refs: dict[str, list] = {}  # key -> [ref, how many pickles hold it]
        self._handles: dict[str, list] = {}  # actor id -> [ActorHandle, pickles that hold it]
        self._lock = threading.Lock()

    def export_ref(self, ref) -> tuple:
        key = ref.hex()
        with self._lock:
            entry = self._refs.setdefault(key, [ref, 0])
            entry[1] += 1
        return _imported_ref, (key,)

    def export_handle(self, handle) -> tuple:
        core = handle._pyactors_core
        with self._lock:
            self._handles.setdefault(core.actor_id, [handle, 0])[1] += 1
        return _imported_handle, (core.actor_id, core.class_name, handle._pyactors_methods)

    def handle(self, actor_id: str):
        with self._lock:
            entry = self._handles.get(actor_id)
        return None if entry is None else entry[0]

    def release_handles(self, actor_ids) -> None:
        """The other side dropped these ProxyHandles: their actors need not live for it."""
        with self._lock:
            for actor_id in actor_ids:
                entry = self._handles.get(actor_id)
                if entry is not None:
                    entry[1] -= 1
                    if not entry[1]:
                        del self._handles[actor_id]

    def clear(self) -> None:
        """The other side is gone for good."""
        with self._lock:
            self._refs.clear()
            self._handles.clear()

    def watch(self, key: str, send: Callable[[tuple], None]) -> None:
        """The other side unpickled `key`: send it the ref's outcome once there is one."""
        with self._lock:
            entry = self._refs.get(key)
            if entry is not None:
                entry[1] -= 1
                if not entry[1]:
                    del self._refs[key]
        if entry is None:
            send(
                (
                    "settled",
                    key,
                    False,
                    encode_error(
                        ActorDiedError(
                            f"ObjectRef({key}) is no longer known to the process that sent it"
                        )
                    ),
                )
            )
            return
        settle_when_done(entry[0], key, send, self)


def settle_when_done(ref, key: str, send: Callable[[tuple], None], exports: Exports) -> None:
    def done(ref) -> None:
        error = ref.exception()
        if error is None:
            try:
                send(("settled", key, True, wire.dumps(ref.result(), exports)))
                return
            except Exception as exc:
                error = TypeError(
                    f"{ref!r}: its value could not be pickled for another "
                    f"process: {type(exc).__name__}: {exc}"
                )
        send(("settled", key, False, encode_error(error)))

    _core.on_settled(ref, done)


class Peer:
    """One side's view of the other across one pipe: the refs it imported from there."""

    def __init__(
        self,
        send: Callable[[tuple], None],
        exports: Exports,
        wake: Callable[[], None] | None = None,
    ):
        self.send = send
        self.exports = exports
        self.wake = wake  # told (from a finalizer) that ProxyHandles were dropped
        self._waiting: dict[str, list] = {}  # key -> local refs settled by "settled"
        self._lock = threading.Lock()
        # ProxyHandles freed here and shared memory files of the other side's done with
        # here, to tell the other side, as (is a file, its id or name): put by finalizers
        # (which may run anywhere, so reentrant); whoever `wake` tells sends them (files:
        # nobody is told, see wire._map_segment; they go with the next batch of drops).
        self.dropped: queue.SimpleQueue = queue.SimpleQueue()

    def drops(self) -> tuple | None:
        """A message telling the other side of the ProxyHandles freed here and the files
        it may write again, or None."""
        dropped: tuple[list, list] = ([], [])
        while True:
            try:
                is_file, key = self.dropped.get_nowait()
            except queue.Empty:
                break
            dropped[is_file].append(key)
        ids, names = dropped
        return ("drop", tuple(ids), tuple(names)) if ids or names else None

    def discard(self, payload: wire.Payload) -> None:
        """A payload of the other side's that will not be read (the hub's thread, while the
        other side lives): its files go back."""
        for name in payload.segments or ():
            self.dropped.put((True, name))
        if self.wake is not None:
            self.wake()

    def loads(self, payload: wire.Payload):
        if payload.segments is None:  # unpickled with its frame (nothing in it to import)
            return payload.data
        _loading.peer = self
        try:
            return wire.loads(payload, self.dropped)
        finally:
            _loading.peer = None

    def import_ref(self, key: str):
        ref = _core.pending_ref()
        with self._lock:
            self._waiting.setdefault(key, []).append(ref)
        self.send(("watch", key))
        return ref

    def expect(self, key: str, ref) -> None:
        with self._lock:
            self._waiting.setdefault(key, []).append(ref)

    def settled(self, key: str, ok: bool, data) -> None:
        with self._lock:
            refs = self._waiting.pop(key, ())
        if not refs:
            return
        if ok:
            try:
                value = self.loads(data)
            except Exception as exc:
                ok, value = (
                    False,
                    TypeError(
                        f"a value from another process could not be "
                        f"unpickled here: {type(exc).__name__}: {exc}"
                    ),
                )
        else:
            value = decode_error(data, None)
        for ref in refs:
            _core.settle_ref(ref, ok, value)

    def fail_all(self, error: BaseException) -> None:
        """The other side is gone: what it would have settled fails."""
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for refs in waiting.values():
            for ref in refs:
                _core.settle_ref(ref, False, error)

    def call_through(
        self, actor_id: str, method: str, group: str | None, args: tuple, kwargs: dict
    ):
        """A call through a ProxyHandle: sent to the parent, settled from there."""
        try:
            payload = wire.dumps((args, kwargs), self.exports)
        except Exception as exc:
            raise TypeError(
                f"{method}.remote(): an argument cannot be sent to the caller's "
                f"process: {type(exc).__name__}: {exc}"
            ) from None
        ref = _core.pending_ref()
        key = ref.hex()
        self.expect(key, ref)
        self.send(("hcall", key, actor_id, method, group, payload))
        return ref

    def serve_call(
        self, key: str, actor_id: str, method: str, group: str | None, payload: wire.Payload
    ) -> None:
        """The parent's side of call_through()."""
        handle = self.exports.handle(actor_id)
        try:
            if handle is None:
                raise ActorDiedError(f"actor {actor_id}: this process sent no handle to it")
            args, kwargs = self.loads(payload)
            remote_method = getattr(handle, method)
            if group is not None:
                remote_method = remote_method.options(concurrency_group=group)
            ref = _one_ref(remote_method.remote(*args, **(kwargs or {})), method)
        except Exception as exc:
            self.send(("settled", key, False, encode_error(exc)))
            return
        settle_when_done(ref, key, self.send, self.exports)


def _one_ref(result, method: str):
    """The ref of a call through a ProxyHandle, which settles one ref in the worker."""
    if type(result) is _core.ObjectRef:
        return result
    if type(result) is _core.ObjectRefGenerator:
        _core.cancel(result)
        what = "an ObjectRefGenerator (a generator method whose refs stream)"
    else:
        what = f"{len(result)} refs (num_returns={len(result)})"
    raise TypeError(
        f"{method}.remote() returns {what}: through a handle passed to a worker process, "
        f"only methods with one result can be called; call it from the process that "
        f"created the actor, or return a list"
    )


def _imported_ref(key: str):
    return _loading.peer.import_ref(key)


def _imported_handle(actor_id: str, class_name: str, methods: tuple):
    return ProxyHandle(_loading.peer, actor_id, class_name, methods)


def _exported_handle(actor_id: str):
    # A ProxyHandle sent back to the process that made it: the handle it stands for.
    handle = _loading.peer.exports.handle(actor_id)
    if handle is None:
        raise ActorDiedError(f"actor {actor_id}: this process sent no handle to it")
    return handle


class ProxyHandle:
    """A handle, in a worker process, to an actor of another process: calls go through the
    parent."""

    def __init__(self, peer: Peer, actor_id: str, class_name: str, methods: tuple):
        self._peer = peer
        self._actor_id = actor_id
        self._class_name = class_name
        self._methods = methods

    def __getattr__(self, name: str):
        if name.startswith("_") and name != "__ray_terminate__":
            raise AttributeError(name)
        if name not in self._methods:
            raise AttributeError(
                f"actor {self._class_name} has no method {name!r}; its "
                f"methods are {sorted(self._methods)}"
            )
        return ProxyMethod(self, name, None)

    def __reduce__(self):
        return _exported_handle, (self._actor_id,)

    def __del__(self):
        peer = self._peer
        peer.dropped.put((False, self._actor_id))
        if peer.wake is not None:
            peer.wake()

    def __eq__(self, other):
        if not isinstance(other, ProxyHandle):
            return NotImplemented
        return self._actor_id == other._actor_id

    def __hash__(self):
        return hash(self._actor_id)

    def __repr__(self):
        return f"Actor({self._class_name}, {self._actor_id})"


class ProxyMethod:
    __slots__ = ("_group", "_handle", "_name")

    def __init__(self, handle: ProxyHandle, name: str, group: str | None):
        self._handle, self._name, self._group = handle, name, group

    def remote(self, *args, **kwargs):
        handle = self._handle
        return handle._peer.call_through(handle._actor_id, self._name, self._group, args, kwargs)

    def options(self, *, concurrency_group: str | None = None, **options) -> ProxyMethod:
        if options:
            raise TypeError(
                f"{self._handle._class_name}.{self._name}.options(): through a "
                f"handle passed to a worker process, only concurrency_group is "
                f"supported; got {sorted(options)}"
            )
        return ProxyMethod(self._handle, self._name, concurrency_group or self._group)
