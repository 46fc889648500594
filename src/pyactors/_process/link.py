"""What a ProcessGroup sends its calls to (see process_group.pyx): an ActorLink (one
worker, the actor's) or a PoolLink (the workers of process tasks). The hub's thread hands
each link what its workers send; the link completes calls through the core
(ProcessGroup.complete)."""

from __future__ import annotations

import abc
import collections
import functools
import inspect
import itertools
import math
import threading
import time
from typing import Any, cast

from .. import _core
from .._generators import generator_call
from ..exceptions import TaskCancelledError, WorkerCrashedError, _actor_died_error
from . import wire
from .crossing import Exports
from .errors import decode_error, unpicklable_argument, unpicklable_result
from .hub import TERMINATE_GRACE, Hub, Worker, describe_exit
from .streams import Incoming

_RESTART = "restart"  # the id of a restarted worker's __init__
STATS_WAIT = 2.0  # how long stats() waits for a worker's answer before it estimates


def _amended(reason: str, words: str) -> str:
    """`reason` with `words` added to its first part (before a traceback, if it has one)."""
    head, colon, detail = reason.partition(":\n\n")
    return f"{head}{words}{colon}{detail}"


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
        if _core.has_refs(args, kwargs):
            stripped = tuple(None if type(a) is _core.ObjectRef else a for a in args)
            kw = (
                None
                if kwargs is None
                else {k: None if type(a) is _core.ObjectRef else a for k, a in kwargs.items()}
            )
            self._payload(func, stripped, kw, wire.picklable)  # a check only
            return args, kwargs
        return (self._payload(func, args, kwargs),), None

    def _payload(self, func, args: tuple, kwargs: dict | None, pickle=None) -> wire.Payload:
        try:
            if pickle is not None:
                return pickle((args, kwargs))
            return wire.dumps((args, kwargs), self.exports)
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
        batches: dict[Worker, list] = {}
        busy: dict[Worker, bool] = {}
        with self.lock:  # the worker does not change (restart) between choice and write
            for call, func, payload, stream in sendable:
                worker = self._worker_for(group)
                if worker is None:  # no room for it yet (the pool's num_cpus): it waits there
                    self._hold(group, call, func, payload, stream)
                    continue
                if worker not in busy:
                    busy[worker] = bool(worker.calls)
                messages = self._assign(worker, group, call, func, payload, stream)
                batches.setdefault(worker, []).extend(messages)
            for worker, messages in batches.items():
                worker.send(*messages, defer=busy[worker])
        for call, error in unsendable:
            group.fail_unsendable(call, error)

    def _assign(self, worker: Worker, group, call, func, payload, stream) -> list[tuple]:
        """Give `call` to `worker` (under self.lock): the messages that send it."""
        ident = call.hex()  # also the call's task id inside the worker
        worker.calls[ident] = (group, call, payload, func)
        messages = []
        if stream is not None:  # its items come back before its end
            self.streams[ident] = Incoming(stream, group, call, ident, worker)
            messages.append(("stream", ident, stream.backpressure))
        messages.append(self._message(worker, ident, group.name, func, payload))
        return messages

    @abc.abstractmethod
    def _worker_for(self, group) -> Worker | None:
        """The worker the next call of `group` goes to (under self.lock), or None if it must
        wait (_hold())."""

    def _hold(self, group, call, func, payload: wire.Payload, stream) -> None:
        raise AssertionError("only a link whose _worker_for() may return None holds calls")

    @abc.abstractmethod
    def _message(self, worker: Worker, ident: str, group: str, func, payload) -> tuple:
        """The message that tells `worker` to run the call."""

    def running_in_worker(self, group: str) -> int | None:
        """How many calls of `group` its worker runs (stats()); None: not asked."""
        return None

    def send_cancel(self, call) -> None:
        ident = call.hex()
        for worker in self._workers():
            if ident in worker.calls:
                worker.send(("cancel", ident))

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
                worker.peer.discard(message[2])
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
            if not worker.stopping:  # else it may be read again elsewhere (_send_elsewhere)
                wire.give_back(message[2])

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
        self.hook_done: threading.Event | None = None  # its worker ran __ray_shutdown__
        self.answers: dict[int, list] = {}  # stats() asked of the worker: token -> [event, n]
        self.tokens = itertools.count()

    def run_shutdown_hook(self) -> threading.Event:
        """Ask its worker to run the actor's __ray_shutdown__; the event is set once it has,
        or once the worker ended."""
        done = threading.Event()
        with self.lock:
            worker = self.worker
            if worker is None or worker.stopping:
                done.set()
            else:
                self.hook_done = done
                worker.send(("shutdown",))
        return done

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

    def _worker_for(self, group) -> Worker:
        # Calls are sent once start() made the worker (an actor killed before has no calls).
        return self.worker  # type: ignore[return-value]

    def _message(self, worker: Worker, ident: str, group: str, func, payload) -> tuple:
        # A generator method goes as its name and how its values return (see streams.py).
        return ("call", ident, group, generator_call(func) or func, payload)

    def _workers(self) -> list[Worker]:
        return [] if self.worker is None else [self.worker]

    def running_in_worker(self, group: str) -> int | None:
        """Asked of the worker (one round trip, behind what was sent before): its group's
        truth, lent slots and lowered limits included. None if it cannot answer in time, or
        asked on the hub's thread (which reads the answer)."""
        if self.hub.on_its_thread():
            return None
        with self.lock:
            worker = self.worker
            if worker is None or worker.stopping:
                return None
            token = next(self.tokens)
            answer = self.answers[token] = [threading.Event(), None]
            worker.send(("stats", token, group))
        answer[0].wait(STATS_WAIT)
        self.answers.pop(token, None)
        return answer[1]

    def send_limit(self, group: str, limit: int) -> None:
        if self.worker is not None:
            self.worker.send(("limit", group, limit))

    def stop(self) -> None:
        self.stopped = True
        super().stop()

    def on_message(self, worker: Worker, message: tuple) -> None:
        op = message[0]
        if op == "died":  # its actor left: dead here too, and so is the worker
            self.exit_reason = message[1]
            if not self.core.is_dead:
                self.core.die(_actor_died_error(self.core, message[1], None))
        elif op == "shut":
            if self.hook_done is not None:
                self.hook_done.set()
        elif op == "stats":
            answer = self.answers.get(message[1])
            if answer is not None:
                answer[1] = message[2]
                answer[0].set()
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
        if self.hook_done is not None:  # nothing to wait for any more
            self.hook_done.set()
        for answer in list(self.answers.values()):
            answer[0].set()
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
        restarted = self.worker is not worker
        if not restarted and not core.is_dead:
            # Dead before any of its calls fails: a caller that sees one fail and calls again
            # is refused at once (the calls fail with the same error, from die()).
            core.die(_actor_died_error(core, reason, None))
        for group, call, payload, _ in calls:
            if call is not None:
                self.streams.pop(call.hex(), None)
                group.complete(call, False, _actor_died_error(core, reason, None))
            payload.discard()  # never to be read
        if not restarted:  # nothing will ask for what it was sent
            self.exports.clear()
            if self.setup is not None:
                self.setup.discard()

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
        messages = [("call", _RESTART, "default", "__init__", init)]
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
                messages.append(self._message(worker, ident, group.name, func, payload))
            else:
                failed.append((group, call, payload, func))
        worker.send(*messages)
        return failed


class WorkerLifecycle:
    """The lifecycle of a process actor's core, in this process: __ray_shutdown__ runs in the
    worker (at shutdown(), or when nothing references the actor any more), waited for at most
    TERMINATE_GRACE - a hook that hangs does not hold shutdown() - and never after kill()
    (the core drops its lifecycle as it dies). Restarts happen in the worker."""

    def __init__(self, link: ActorLink):
        self.link = link
        self.done: threading.Event | None = None
        self.deadline = 0.0

    def request(self) -> None:
        """Start the hook without waiting: shutdown() starts every actor's at once, so that
        they are all waited for within one grace period."""
        if self.done is None:
            self.deadline = time.monotonic() + TERMINATE_GRACE
            self.done = self.link.run_shutdown_hook()

    def shutdown(self) -> None:
        self.request()
        cast(threading.Event, self.done).wait(max(0.0, self.deadline - time.monotonic()))


class PoolLink(_Link):
    """The workers of process tasks: up to `size`, started as calls need them and reused; a
    function crosses once per worker. Each worker runs one task at a time and holds a few
    more, so that the next one is there when it finishes one: AHEAD, or up to AHEAD_MOST
    while tasks are short enough that the last of them waits at most about QUEUED_WAIT for
    those ahead of it (a deeper window batches more tasks and results per pipe write).

    `num_cpus` other than 1 (see cpu_units()) makes the pool count CPUs, as Ray's scheduler
    does: the tasks running at once ask for `size` CPUs at most. Such a task goes to an idle
    worker (a new one if none is: fractions and 0 let more than `size` workers run) and is
    its only task until it ends; a task that does not fit waits here, and so does every
    later one (first come, first served: small tasks do not starve a big one). Until the
    first such task, none of this costs anything."""

    AHEAD = 8
    AHEAD_MOST = 64
    QUEUED_WAIT = 0.01  # seconds
    SAMPLE = 32  # results of one worker, busy throughout, per estimate of a task's time
    UNITS = 10_000  # Ray's precision of resource quantities: 0.0001 CPU

    def __init__(self, hub: Hub, size: int):
        super().__init__(hub)
        self.size = size
        self.ahead = self.AHEAD
        self.group: _core.ProcessGroup | None = None  # its group, which window() bounds
        # worker -> (when it was last seen busy from, results since): time per task
        self.busy_since: dict[Worker, tuple[float, int]] = {}
        self.workers: list[Worker] = []
        self.functions: dict[int, tuple] = {}  # id(function) -> (function, its payload)
        self.known: dict[Worker, set] = {}
        self.stopped = False
        self.workers_lock = threading.Lock()  # workers, known, cpus
        self.demands: dict[str, int] = {}  # group name -> CPU units of each of its tasks
        self.counting = False  # a task asked for num_cpus other than 1 (see above)
        self.cpus: dict[Worker, int] = {}  # a worker running such a task -> its CPU units
        self.held: collections.deque = collections.deque()  # (group, call, func, payload)

    def cpu_units(self, num_cpus, where: str) -> int:
        """`num_cpus` of a task, in UNITS; a clear error if it could never run here."""
        if isinstance(num_cpus, bool) or not isinstance(num_cpus, (int, float)):
            raise TypeError(
                f"{where}: num_cpus must be a number of CPUs (0, a fraction such as 0.5, or a "
                f"whole number), got {type(num_cpus).__name__} {num_cpus!r}"
            )
        if not math.isfinite(num_cpus) or num_cpus < 0:
            raise ValueError(f"{where}: num_cpus must be 0 or more, got {num_cpus!r}")
        if num_cpus > 1 and num_cpus != int(num_cpus):
            raise ValueError(
                f"{where}: num_cpus={num_cpus!r}: above 1, a number of CPUs must be whole "
                f"(as in Ray); ask for {math.ceil(num_cpus)}"
            )
        if num_cpus > self.size:
            raise ValueError(
                f"{where}: num_cpus={num_cpus!r} is more than the process pool's "
                f"{self.size} CPUs (init(num_cpus=...), default: the CPU count), so it could "
                f"never run (Ray would keep it pending as infeasible); ask for at most "
                f"{self.size}, or init(num_cpus={math.ceil(num_cpus)}, process=...)"
            )
        return round(num_cpus * self.UNITS)

    def group_name(self, units: int) -> str:
        """The name of the pool's group of tasks asking for `units` (made by the runtime)."""
        if units == self.UNITS:
            return "tasks"
        self.counting = True  # before its first task is sent
        name = f"tasks of {units / self.UNITS:g} CPUs"
        self.demands[name] = units
        return name

    def _callee(self, func) -> tuple[str, Any]:
        generator = generator_call(func)
        if generator is not None:
            func = generator[0]
        return func.__qualname__, func

    def window(self) -> int:
        """The most tasks sent and unanswered at once."""
        return self.size * self.ahead

    def _timed(self, worker: Worker) -> None:
        # A worker busy throughout a sample took its span per task (an idle spell restarts
        # the sample, see _worker_for; a new worker's starts at its first result); the
        # window follows.
        since, results = self.busy_since.get(worker, (0.0, -1))
        results += 1
        if 0 < results < self.SAMPLE:
            self.busy_since[worker] = (since, results)
            return
        now = time.monotonic()
        self.busy_since[worker] = (now, 0)
        if not results:
            return
        per_task = (now - since) / results
        ahead = min(self.AHEAD_MOST, max(self.AHEAD, int(self.QUEUED_WAIT / max(per_task, 1e-9))))
        if ahead != self.ahead and self.group is not None:
            self.ahead = ahead
            self.group.set_window(self.window())

    def _worker_for(self, group) -> Worker | None:
        # The least busy worker; a new one while there is room and every one is busy. The
        # core sends at most window() calls at once, so none holds more than self.ahead.
        with self.workers_lock:
            if self.counting:
                return self._counted(self.demands.get(group.name, self.UNITS), False)
            least = None
            fewest = 0
            for worker in self.workers:  # a loop, not min(key=...): this runs for every task
                if not worker.stopping and (least is None or len(worker.calls) < fewest):
                    least, fewest = worker, len(worker.calls)
            if least is not None and (not least.calls or len(self.workers) >= self.size):
                if not least.calls:  # idle until now: it is busy from here
                    self.busy_since[least] = (time.monotonic(), 0)
                return least
            return self._new_worker()

    def _new_worker(self) -> Worker:
        message = ("pool",)
        worker = self.hub.take_spare(self, message)
        if worker is None:
            worker = Worker(self, message)
            self.hub.start(worker, wait=False)  # not under these locks: the hub takes them
        self.workers.append(worker)
        self.known[worker] = set()
        return worker

    def _counted(self, units: int, waited: bool) -> Worker | None:
        """Where a task of `units` goes once the pool counts CPUs (under workers_lock), or
        None: it waits (`waited`: it is the first of those that wait)."""
        if self.held and not waited:
            return None  # behind those that wait
        live = [worker for worker in self.workers if not worker.stopping]
        idle = [worker for worker in live if not worker.calls]
        used = sum(self.cpus.get(worker, self.UNITS) for worker in live if worker.calls)
        if used + units <= self.size * self.UNITS:
            worker = idle[0] if idle else self._new_worker()
            if units != self.UNITS:
                self.cpus[worker] = units
            return worker
        if units == self.UNITS:  # behind another task of one CPU, as without counting
            shared = [w for w in live if w.calls and w not in self.cpus]
            least = min(shared, key=lambda worker: len(worker.calls), default=None)
            if least is not None and len(least.calls) < self.AHEAD:
                return least
        return None

    def _hold(self, group, call, func, payload: wire.Payload, stream) -> None:
        self.held.append((group, call, func, payload, stream))

    def _freed(self) -> None:
        """A worker ran its last task or ended: the tasks that wait go if they now fit (the
        hub's thread)."""
        with self.lock:
            with self.workers_lock:
                go = []
                while self.held:
                    group, call, func, payload, stream = self.held[0]
                    target = self._counted(self.demands.get(group.name, self.UNITS), True)
                    if target is None:
                        break
                    self.held.popleft()
                    # counted from now
                    go.append((target, self._assign(target, group, call, func, payload, stream)))
            for target, messages in go:
                target.send(*messages)

    def on_message(self, worker: Worker, message: tuple) -> None:
        done = message[0] in ("ok", "err")
        if done and self.counting:
            with self.workers_lock:  # its CPUs are free once its task is (before the next)
                if list(worker.calls) == [message[1]]:
                    self.cpus.pop(worker, None)
        super().on_message(worker, message)
        if done:
            self._timed(worker)
            if self.counting and not worker.calls:
                self._freed()

    def send_cancel(self, call) -> None:
        with self.lock:
            for entry in self.held:
                if entry[1] is call:  # it waits here: it never runs
                    self.held.remove(entry)
                    entry[3].discard()
                    break
            else:
                entry = None
        if entry is None:
            super().send_cancel(call)
        else:
            entry[0].complete(
                call,
                False,
                TaskCancelledError(f"{entry[2].__qualname__}() was cancelled before it started"),
            )

    def _message(self, worker: Worker, ident: str, group: str, func, payload) -> tuple:
        key = id(func)
        known = self.known[worker]
        if key in known:
            function = None
        else:
            entry = self.functions.get(key)
            if entry is None or entry[0] is not func:
                # Shared: each new worker reads it (see wire.dumps)
                entry = self.functions[key] = (func, wire.dumps(func, shared=True))
            function = entry[1]
            known.add(key)
        return ("call", ident, key, function, payload)

    def _workers(self) -> list[Worker]:
        with self.workers_lock:
            return list(self.workers)

    def stop(self) -> None:
        self.stopped = True
        with self.lock:  # the core fails them as it closes
            for entry in self.held:
                entry[3].discard()
            self.held.clear()
        super().stop()

    def on_start_failed(self, worker: Worker, error: BaseException) -> None:
        with self.lock:  # its calls are registered: send_calls held this while it chose it
            self._forget(worker)
            calls = worker.take_calls()
        for group, call, payload, _ in calls:
            self._fail(
                group,
                call,
                payload,
                f"no worker process could be started for it: {type(error).__name__}: {error}",
            )

    def _forget(self, worker: Worker) -> None:
        with self.workers_lock:
            if worker in self.known:  # not already (end_worker_of())
                self.workers.remove(worker)
                del self.known[worker]
            self.cpus.pop(worker, None)
            self.busy_since.pop(worker, None)

    def end_worker_of(self, call) -> None:
        """cancel(force=True) of a running task: its worker ends, as Ray's does (the call
        fails as it ends), and the next task starts a new one. The tasks sent ahead to it go
        to the other workers."""
        ident = call.hex()
        with self.lock:
            worker = next((w for w in self._workers() if ident in w.calls), None)
            # Its oldest unanswered call is the one it runs; a later one it has not started
            # (the cancel sent already takes it out of its queue).
            if worker is None or next(iter(worker.calls)) != ident:
                return
            self._forget(worker)
            ahead = [worker.calls.pop(key) for key in list(worker.calls) if key != ident]
            worker.stop()
        self._send_elsewhere(ahead, f"was ended by cancel({call!r}, force=True)", worker)

    def _send_elsewhere(self, ahead: list, cause: str, worker: Worker) -> None:
        """Calls sent ahead to `worker`, which ended before it ran them: to the other workers
        (a streaming one too, if none of its items came back), or failed if they cannot go
        again (the worker had taken their arguments from shared memory, or a stream begun)."""
        for group, queued, payload, func in ahead:
            incoming = self.streams.pop(queued.hex(), None)
            begun = incoming is not None and incoming.received > 0
            if payload.available() and not begun and not self.stopped:
                args = (payload,) if incoming is None else (incoming.stream, payload)
                self.send_calls(group, [(queued, func, args, None, False)])
                continue
            why = (
                "as the pool stopped"
                if self.stopped
                else "after its stream had begun"
                if begun
                else "after it had taken its arguments from shared memory"
            )
            self._fail(group, queued, payload, f"its worker (pid {worker.pid}) {cause} {why}")

    def _fail(self, group, call, payload: wire.Payload, why: str) -> None:
        """`call` cannot run: its worker is gone. Its stream and arguments go with it."""
        self.streams.pop(call.hex(), None)
        payload.discard()
        group.complete(call, False, WorkerCrashedError(f"{call!r}: {why}"))

    def on_end(self, worker: Worker) -> None:
        self._forget(worker)
        if self.counting:
            self._freed()
        reason = describe_exit(worker.returncode)
        calls = worker.take_calls()
        if not calls:
            return
        (group, call, payload, _), ahead = calls[0], calls[1:]  # it ran the first
        self._fail(
            group,
            call,
            payload,
            f"{reason.replace('its worker', 'the worker')} (pid {worker.pid}) while running it",
        )
        self._send_elsewhere(ahead, reason.replace("its worker process ", "", 1), worker)
