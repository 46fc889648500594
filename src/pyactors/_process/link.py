"""What a ProcessGroup sends its calls to (see process_group.pyx): an ActorLink (one
worker, the actor's) or a PoolLink (the workers of process tasks). The hub's thread hands
each link what its workers send; the link completes calls through the core
(ProcessGroup.complete)."""

from __future__ import annotations

import abc
import functools
import inspect
import threading
import time
from typing import Any

from .. import _core
from .._generators import generator_call
from ..exceptions import WorkerCrashedError, _actor_died_error
from . import wire
from .crossing import Exports
from .errors import decode_error, unpicklable_argument, unpicklable_result
from .hub import Hub, Worker, describe_exit
from .streams import Incoming

_RESTART = "restart"  # the id of a restarted worker's __init__


def _amended(reason: str, words: str) -> str:
    """`reason` with `words` added to its first part (before a traceback, if it has one)."""
    head, colon, detail = reason.partition(":\n\n")
    return f"{head}{words}{colon}{detail}"


def _has_refs(args: tuple, kwargs: dict | None) -> bool:
    return any(type(arg) is _core.ObjectRef for arg in args) or (
        kwargs is not None and any(type(arg) is _core.ObjectRef for arg in kwargs.values())
    )


class _Link(abc.ABC):
    """What ProcessGroup asks of a link (see process_group.pyx); the subclasses say which
    worker runs a call and what a worker's end means."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.exports = Exports()  # refs and handles its calls' arguments carry
        self.lock = threading.Lock()
        self.init_payload: wire.Payload | None = None
        self.streams: dict[str, Incoming] = {}  # call.hex() -> its stream, while it runs

    def encode(self, func, args: tuple, kwargs: dict | None):
        """The arguments as they will cross: pickled now, unless some are refs (those are
        resolved here first, and the call is pickled when it is sent); the rest must pickle."""
        if _has_refs(args, kwargs):
            stripped = tuple(None if type(a) is _core.ObjectRef else a for a in args)
            kw = (
                None
                if kwargs is None
                else {k: None if type(a) is _core.ObjectRef else a for k, a in kwargs.items()}
            )
            self._payload(func, stripped, kw, Exports()).discard()  # a check only
            return args, kwargs
        return (self._payload(func, args, kwargs),), None

    def _payload(
        self, func, args: tuple, kwargs: dict | None, exports: Exports | None = None
    ) -> wire.Payload:
        try:
            return wire.dumps((args, kwargs), exports or self.exports)
        except Exception as exc:
            raise unpicklable_argument(*self._callee(func), args, kwargs, exc) from None

    @abc.abstractmethod
    def _callee(self, func) -> tuple[str, Any]:
        """The name of what `func` calls, and a callable with its parameters."""

    def send_calls(self, group, batch: list) -> None:
        sendable = []
        unsendable = []
        for call, func, given, kwargs, init in batch:
            stream = None
            args = given
            if args and type(args[0]) is _core.Stream:  # a streaming call's, put first
                stream, args = args[0], args[1:]
            if len(args) == 1 and type(args[0]) is wire.Payload and kwargs is None:
                payload = args[0]
            else:  # its ref arguments were resolved: pickled now
                try:
                    payload = self._payload(func, args, kwargs)
                except TypeError as exc:
                    unsendable.append((call, exc))
                    continue
            if init:
                self.init_payload = payload  # kept: a restarted worker runs __init__ again
            sendable.append((call, func, payload, stream))
        frames: dict[Worker, list] = {}
        busy: dict[Worker, bool] = {}
        with self.lock:  # the worker does not change (restart) between choice and write
            for call, func, payload, stream in sendable:
                worker = self._worker_for()
                if worker not in busy:
                    busy[worker] = bool(worker.calls)
                ident = call.hex()  # also the call's task id inside the worker
                worker.calls[ident] = (group, call, payload, func)
                parts = frames.setdefault(worker, [])
                if stream is not None:  # its items come back before its end
                    self.streams[ident] = Incoming(stream, group, call, ident, worker)
                    parts.append(wire.frame(("stream", ident, stream.backpressure)))
                parts.append(self._frame(worker, ident, group.name, func, payload))
            for worker, parts in frames.items():
                worker.write(b"".join(parts), busy[worker])
        for call, error in unsendable:
            group.fail_unsendable(call, error)

    @abc.abstractmethod
    def _worker_for(self) -> Worker:
        """The worker the next call goes to (under self.lock)."""

    @abc.abstractmethod
    def _frame(self, worker: Worker, ident: str, group: str, func, payload) -> bytes:
        """The frame that tells `worker` to run the call."""

    def send_cancel(self, call) -> None:
        ident = call.hex()
        for worker in self._workers():
            if ident in worker.calls:
                worker.write(wire.frame(("cancel", ident)))

    @abc.abstractmethod
    def _workers(self) -> list[Worker]:
        """Its live workers."""

    def stop(self) -> None:
        for worker in self._workers():
            worker.stop()

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(
            [  # noqa: C419  a list, not a generator: all() must not stop at the first False,
                # every worker is waited for within the deadline
                worker.reaped.wait(max(0.0, deadline - time.monotonic()))
                for worker in self._workers()
            ]
        )

    def on_message(self, worker: Worker, message: tuple) -> None:
        op = message[0]
        if op == "item":
            incoming = self.streams.get(message[1])
            if incoming is None:  # not known to happen: the I/O thread must not die of it
                message[2].discard()
            else:
                incoming.receive(message[2])
        elif op == "ok":
            self.streams.pop(message[1], None)
            found = worker.finished(message)
            if found is not None:
                group, call = found
                try:
                    value = worker.peer.loads(message[2])
                except BaseException as exc:
                    group.complete(call, False, unpicklable_result(call, group, exc))
                    return
                group.complete(call, True, value)
        elif op == "err":
            self.streams.pop(message[1], None)
            found = worker.finished(message)
            if found is not None:
                group, call = found
                group.complete(call, False, decode_error(message[2], group.actor))
        elif op == "watch":
            self.exports.watch(message[1], worker.peer.send)
        elif op == "settled":
            worker.peer.settled(*message[1:])
        elif op == "hcall":
            worker.peer.serve_call(*message[1:])
        elif op == "drop":
            self.exports.release_handles(message[1])

    @abc.abstractmethod
    def on_end(self, worker: Worker) -> None:
        """`worker`'s pipe ended and it was reaped (the hub's thread)."""

    @abc.abstractmethod
    def on_start_failed(self, worker: Worker, error: BaseException) -> None:
        """The hub could not start `worker` (its thread): what it was given fails."""


class ActorLink(_Link):
    """The worker of one process actor."""

    def __init__(self, hub: Hub, cls: type, restarts: int, task_retries: int):
        super().__init__(hub)
        self.cls = cls
        # Set by assemble() right after: the core is made with this link's groups.
        self.core: _core.ActorCore = None  # type: ignore[assignment]
        self.worker: Worker | None = None
        self.exit_reason: str | None = None
        self.stopped = False
        self.setup: wire.Payload | None = None
        self.restarts_left = restarts  # Ray's max_restarts (-1: without end)
        self.task_retries = task_retries  # Ray's max_task_retries (-1: without end)
        self.attempts: dict[str, int] = {}  # call -> times a worker died running it

    def start(self, setup: wire.Payload) -> None:
        self.setup = setup
        if self.stopped:  # killed before it started: nothing to start
            return
        message = ("actor", setup, False, self.restarts_left)
        self.worker = self.hub.take_spare(self, message)  # a warm one: no interpreter start
        if self.worker is None:
            self.worker = Worker(self, message)
            self.hub.start(self.worker)

    def _callee(self, func) -> tuple[str, Any]:
        cls = self.cls
        generator = generator_call(func)
        if generator is not None:
            func = generator[0]
        if func == "__init__":
            return cls.__name__, cls
        attr = inspect.getattr_static(cls, func, None)
        if isinstance(attr, staticmethod):
            target = attr.__func__
        elif isinstance(attr, classmethod):
            target = getattr(cls, func)
        else:
            target = functools.partial(attr, None)  # without self
        return f"{cls.__name__}.{func}", target

    def _worker_for(self) -> Worker:
        # Calls are sent once start() made the worker (an actor killed before has no calls).
        return self.worker  # type: ignore[return-value]

    def _frame(self, worker: Worker, ident: str, group: str, func, payload) -> bytes:
        # A generator method goes as its name and how its values return (see streams.py).
        return wire.frame(("call", ident, group, generator_call(func) or func, payload))

    def _workers(self) -> list[Worker]:
        return [] if self.worker is None else [self.worker]

    def send_limit(self, group: str, limit: int) -> None:
        if self.worker is not None:
            self.worker.write(wire.frame(("limit", group, limit)))

    def stop(self) -> None:
        self.stopped = True
        super().stop()

    def on_message(self, worker: Worker, message: tuple) -> None:
        op = message[0]
        if op == "died":  # its actor left: dead here too, and so is the worker
            self.exit_reason = message[1]
            if not self.core.is_dead:
                self.core.die(_actor_died_error(self.core, message[1], None))
        elif op == "restarted":  # sys.exit() in a method: the worker restarted its actor
            if self.restarts_left > 0:
                self.restarts_left -= 1
        elif op == "ok" and message[1] == _RESTART:
            worker.calls.pop(_RESTART, None)
        elif op == "err" and message[1] == _RESTART:
            worker.calls.pop(_RESTART, None)
            self.core.die(
                _actor_died_error(
                    self.core,
                    "its __init__ raised when it restarted",
                    decode_error(message[2], self.core),
                )
            )
        else:
            super().on_message(worker, message)

    def on_end(self, worker: Worker) -> None:
        reason = self.exit_reason or describe_exit(worker.returncode)
        core = self.core
        with self.lock:
            calls = worker.take_calls()
            if not core.is_dead and not self.stopped and self.restarts_left != 0:
                try:
                    calls = self._restart(calls, reason)
                except Exception as exc:
                    core.die(_actor_died_error(core, f"{reason}; it could not restart", exc))
                    return
                reason = _amended(reason, f" (pid {worker.pid}); it restarts (max_restarts)")
            else:
                reason = _amended(reason, f" (pid {worker.pid})")
        for group, call, payload, _ in calls:
            if call is not None:
                self.streams.pop(call.hex(), None)
                group.complete(call, False, _actor_died_error(core, reason, None))
            payload.discard()  # never to be read
        if self.worker is worker:  # not restarted: nothing will ask for what it was sent
            self.exports.clear()
            if not core.is_dead:
                core.die(_actor_died_error(core, reason, None))

    def on_start_failed(self, worker: Worker, error: BaseException) -> None:
        pass  # start() and _restart() raise it: the actor dies of it there

    def _restart(self, calls: list, reason: str) -> list:
        """A new worker (max_restarts): __init__ runs again with its first arguments, then
        the calls the dead one had, those max_task_retries allows. Returns the others."""
        init = self.init_payload
        if init is None or not init.available():
            raise RuntimeError(
                "its __init__ arguments went through shared memory, which the dead worker consumed"
            )
        if self.restarts_left > 0:
            self.restarts_left -= 1
        self.worker = worker = Worker(self, ("actor", self.setup, True, self.restarts_left))
        self.hub.start(worker)
        worker.calls[_RESTART] = (None, None, init, "__init__")
        frames = [wire.frame(("call", _RESTART, "default", "__init__", init))]
        failed = []
        for group, call, payload, func in calls:
            if call is None:
                continue  # the __init__ of an earlier restart
            ident = call.hex()
            attempts = self.attempts.get(ident, 0)
            if (
                (self.task_retries < 0 or attempts < self.task_retries)
                and payload.available()
                and ident not in self.streams  # its items were delivered: not run twice
            ):
                self.attempts[ident] = attempts + 1
                worker.calls[ident] = (group, call, payload, func)
                frames.append(self._frame(worker, ident, group.name, func, payload))
            else:
                failed.append((group, call, payload, func))
        worker.write(b"".join(frames))
        return failed


class PoolLink(_Link):
    """The workers of process tasks: up to `size`, started as calls need them and reused; a
    function crosses once per worker. Each worker runs one task at a time and holds up to
    AHEAD of them, so that the next one is there when it finishes one."""

    AHEAD = 8

    def __init__(self, hub: Hub, size: int):
        super().__init__(hub)
        self.size = size
        self.workers: list[Worker] = []
        self.functions: dict[int, tuple] = {}  # id(function) -> (function, its payload)
        self.known: dict[Worker, set] = {}
        self.stopped = False
        self.workers_lock = threading.Lock()  # workers, known

    def _callee(self, func) -> tuple[str, Any]:
        generator = generator_call(func)
        if generator is not None:
            func = generator[0]
        return func.__qualname__, func

    def _worker_for(self) -> Worker:
        # The least busy worker; a new one while there is room and every one is busy. The
        # core sends at most size * AHEAD calls at once, so none holds more than AHEAD.
        with self.workers_lock:
            live = [worker for worker in self.workers if not worker.stopping]
            least = min(live, key=lambda worker: len(worker.calls), default=None)
            if least is not None and (not least.calls or len(self.workers) >= self.size):
                return least
            message = ("pool",)
            worker = self.hub.take_spare(self, message)
            if worker is None:
                worker = Worker(self, message)
                self.hub.start(worker, wait=False)  # not under these locks: the hub takes them
            self.workers.append(worker)
            self.known[worker] = set()
            return worker

    def _frame(self, worker: Worker, ident: str, group: str, func, payload) -> bytes:
        key = id(func)
        known = self.known[worker]
        if key in known:
            function = None
        else:
            entry = self.functions.get(key)
            if entry is None or entry[0] is not func:
                entry = self.functions[key] = (func, wire.dumps(func))
            function = entry[1]
            known.add(key)
        return wire.frame(("call", ident, key, function, payload))

    def _workers(self) -> list[Worker]:
        with self.workers_lock:
            return list(self.workers)

    def stop(self) -> None:
        self.stopped = True
        super().stop()

    def on_start_failed(self, worker: Worker, error: BaseException) -> None:
        with self.lock:  # its calls are registered: send_calls held this while it chose it
            self._forget(worker)
            calls = worker.take_calls()
        for group, call, payload, _ in calls:
            self.streams.pop(call.hex(), None)
            payload.discard()
            group.complete(
                call,
                False,
                WorkerCrashedError(
                    f"{call!r}: no worker process could be started for it: "
                    f"{type(error).__name__}: {error}"
                ),
            )

    def _forget(self, worker: Worker) -> None:
        with self.workers_lock:
            self.workers.remove(worker)
            self.known.pop(worker, None)

    def on_end(self, worker: Worker) -> None:
        self._forget(worker)
        reason = describe_exit(worker.returncode)
        for group, call, payload, _ in worker.take_calls():
            self.streams.pop(call.hex(), None)
            payload.discard()
            group.complete(
                call,
                False,
                WorkerCrashedError(
                    f"{call!r}: {reason.replace('its worker', 'the worker')} (pid {worker.pid}) "
                    f"while running it"
                ),
            )
