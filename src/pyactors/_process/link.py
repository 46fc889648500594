"""The parent's side of worker processes.

A Worker is one child process and its two pipes. A link is what a ProcessGroup sends its calls
to: an ActorLink (one worker, the actor's) or a PoolLink (the workers of process tasks). The
Hub is the runtime's single I/O thread: it reads every worker's pipe and hands what arrives to
the worker's link, which completes calls through the core (ProcessGroup.complete).
"""

from __future__ import annotations

import functools
import inspect
import os
import selectors
import signal
import subprocess
import sys
import threading
import time

from .. import _context, _core
from ..exceptions import ActorDiedError, WorkerCrashedError, _actor_died_error
from . import wire
from .crossing import Exports, Peer
from .errors import decode_error, unpicklable_argument, unpicklable_result

# After terminate(), how long a worker has to exit before it is killed.
TERMINATE_GRACE = 2.0
READ_SIZE = 1 << 20
_BOOT = "from pyactors._process.worker import main; main()"
_RESTART = "restart"  # the id of a restarted worker's __init__


def _child_environment() -> dict:
    env = dict(os.environ)
    env.pop("PYACTORS_PROCESS", None)  # a worker's own actors live in it
    env["PYACTORS_NODE_ID"] = _context._NODE_ID
    # The worker imports what this process can: its sys.path (a script's directory, a path
    # added at run time), whatever the interpreter was started with.
    paths = [os.getcwd() if path == "" else path for path in sys.path]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "its worker process stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"its worker process was killed by {name}"
    return f"its worker process exited with code {returncode}"


def _amended(reason: str, words: str) -> str:
    """`reason` with `words` added to its first part (before a traceback, if it has one)."""
    head, colon, detail = reason.partition(":\n\n")
    return f"{head}{words}{colon}{detail}"


def _has_refs(args: tuple, kwargs: dict | None) -> bool:
    return any(type(arg) is _core.ObjectRef for arg in args) or (
        kwargs is not None and any(type(arg) is _core.ObjectRef for arg in kwargs.values()))


class Worker:
    """One worker process and its pipes. Written by any thread (under write_lock), read by
    the hub's thread only."""

    def __init__(self, link, setup: tuple):
        self.link = link
        self.calls: dict[str, tuple] = {}  # call.hex() -> (group, call, payload, func)
        self.write_lock = threading.Lock()
        self.reader = wire.FrameReader()
        self.stopping = False
        self.kill_at = 0.0
        self.reaped = threading.Event()
        self.returncode: int | None = None
        child_in, self.fd_out = os.pipe()
        self.fd_in, child_out = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(child_in), str(child_out)],
                pass_fds=(child_in, child_out), stdin=subprocess.DEVNULL,
                env=_child_environment(), cwd=os.getcwd())
        except BaseException:
            for fd in (self.fd_in, self.fd_out):
                os.close(fd)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        self.pid = self.proc.pid
        self.peer = Peer(self.send, link.exports)
        self.write(wire.frame(setup))
        link.hub.add(self)

    def send(self, message: tuple) -> None:
        self.write(wire.frame(message))

    def write(self, data: bytes) -> None:
        with self.write_lock:
            if self.fd_out < 0:
                return  # stopped: its calls fail as its end is seen
            try:
                wire.write_all(self.fd_out, data)
            except OSError:
                pass  # it is gone: its end of the pipe, read by the hub, says why

    def stop(self) -> None:
        """Terminate it now; the hub kills it after a grace period."""
        with self.write_lock:
            if self.stopping:
                return
            self.stopping = True
            if self.fd_out < 0:  # it has ended already
                return
            os.close(self.fd_out)
            self.fd_out = -1
        try:
            self.proc.terminate()
        except ProcessLookupError:
            pass
        self.kill_at = time.monotonic() + TERMINATE_GRACE
        self.link.hub.poke()

    def read(self) -> list | None:
        """What arrived (the hub's thread), or None once the pipe has ended."""
        try:
            data = os.read(self.fd_in, READ_SIZE)
        except OSError:
            data = b""
        return self.reader.feed(data) if data else None

    def end(self) -> None:
        """The pipe ended (the hub's thread): reap the process, release what it held."""
        try:
            self.returncode = self.proc.wait(TERMINATE_GRACE)
        except subprocess.TimeoutExpired:  # it closed its pipe but lives on: end it
            self.proc.kill()
            self.returncode = self.proc.wait()
        os.close(self.fd_in)
        with self.write_lock:
            if self.fd_out >= 0:
                os.close(self.fd_out)
                self.fd_out = -1
        wire.sweep_segments(wire.segment_prefix(self.pid))
        self.link.on_end(self)
        self.peer.fail_all(ActorDiedError(f"{describe_exit(self.returncode)} (pid {self.pid}) "
                                          f"before it settled this ref"))
        self.reaped.set()

    def take_calls(self) -> list:
        """The calls it was running: (group, call, payload, func), in the order sent."""
        calls = list(self.calls.values())
        self.calls.clear()
        return calls

    def finished(self, message: tuple):
        """The call a result message answers: (group, call), or None if it ended here."""
        entry = self.calls.pop(message[1], None)
        return None if entry is None else entry[:2]


class _Link:
    """What ProcessGroup asks of a link (see process_group.pyx)."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.exports = Exports()  # refs and handles its calls' arguments carry
        self.lock = threading.Lock()
        self.init_payload = None

    def encode(self, func, args: tuple, kwargs: dict | None):
        """The arguments as they will cross: pickled now, unless some are refs (those are
        resolved here first, and the call is pickled when it is sent); the rest must pickle."""
        self._check_callable(func)
        if _has_refs(args, kwargs):
            stripped = tuple(None if type(a) is _core.ObjectRef else a for a in args)
            kw = None if kwargs is None else {
                k: None if type(a) is _core.ObjectRef else a for k, a in kwargs.items()}
            self._payload(func, stripped, kw, Exports()).discard()  # a check only
            return args, kwargs
        return (self._payload(func, args, kwargs),), None

    def _payload(self, func, args: tuple, kwargs: dict | None,
                 exports: Exports | None = None) -> wire.Payload:
        try:
            return wire.dumps((args, kwargs), exports or self.exports)
        except Exception as exc:
            raise unpicklable_argument(*self._callee(func), args, kwargs, exc) from None

    def _callee(self, func) -> tuple:
        """The name of what `func` calls, and a callable with its parameters."""
        raise NotImplementedError

    def _check_callable(self, func) -> None:
        """Raise if calls of `func` cannot run in a worker."""

    def send_calls(self, group, batch: list) -> None:
        sendable = []
        unsendable = []
        for call, func, args, kwargs, init in batch:
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
            sendable.append((call, func, payload))
        frames: dict[Worker, list] = {}
        with self.lock:  # the worker does not change (restart) between choice and write
            for call, func, payload in sendable:
                worker = self._worker_for()
                ident = call.hex()  # also the call's task id inside the worker
                worker.calls[ident] = (group, call, payload, func)
                frames.setdefault(worker, []).append(self._frame(worker, ident, group.name,
                                                                 func, payload))
            for worker, parts in frames.items():
                worker.write(b"".join(parts))
        for call, error in unsendable:
            group.fail_unsendable(call, error)

    def _worker_for(self) -> Worker:
        raise NotImplementedError

    def _frame(self, worker: Worker, ident: str, group: str, func, payload) -> bytes:
        raise NotImplementedError

    def send_cancel(self, call) -> None:
        ident = call.hex()
        for worker in self._workers():
            if ident in worker.calls:
                worker.write(wire.frame(("cancel", ident)))

    def _workers(self) -> list[Worker]:
        raise NotImplementedError

    def stop(self) -> None:
        for worker in self._workers():
            worker.stop()

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all([worker.reaped.wait(max(0.0, deadline - time.monotonic()))
                    for worker in self._workers()])

    def on_message(self, worker: Worker, message: tuple) -> None:
        op = message[0]
        if op == "ok":
            found = worker.finished(message)
            if found is not None:
                self._done(worker)
                group, call = found
                try:
                    value = worker.peer.loads(message[2])
                except BaseException as exc:
                    group.complete(call, False, unpicklable_result(call, group, exc))
                    return
                group.complete(call, True, value)
        elif op == "err":
            found = worker.finished(message)
            if found is not None:
                self._done(worker)
                group, call = found
                group.complete(call, False, decode_error(message[2], group.actor))
        elif op == "watch":
            self.exports.watch(message[1], worker.peer.send)
        elif op == "settled":
            worker.peer.settled(*message[1:])
        elif op == "hcall":
            worker.peer.serve_call(*message[1:])

    def _done(self, worker: Worker) -> None:
        """`worker` answered one of its calls (before that call completes)."""

    def on_end(self, worker: Worker) -> None:
        raise NotImplementedError


class ActorLink(_Link):
    """The worker of one process actor."""

    def __init__(self, hub: Hub, cls: type, streaming: frozenset, restarts: int,
                 task_retries: int):
        super().__init__(hub)
        self.cls = cls
        self.streaming = streaming  # generator methods whose refs would stream
        self.core = None
        self.worker: Worker | None = None
        self.exit_reason: str | None = None
        self.stopped = False
        self.setup = None
        self.restarts_left = restarts  # Ray's max_restarts (-1: without end)
        self.task_retries = task_retries  # Ray's max_task_retries (-1: without end)
        self.attempts: dict[str, int] = {}  # call -> times a worker died running it

    def start(self, setup: wire.Payload) -> None:
        self.setup = setup
        if not self.stopped:  # killed before it started: nothing to start
            self.worker = Worker(self, ("actor", setup, self.hub.loop, False,
                                        self.restarts_left))

    def _callee(self, func) -> tuple:
        cls = self.cls
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

    def _check_callable(self, func) -> None:
        if func in self.streaming:
            raise TypeError(
                f"{self.cls.__name__}.{func}() is a generator method whose refs stream "
                f"(num_returns='streaming' or 'dynamic'): process actors do not stream yet. "
                f"Declare @method(num_returns=N) to get its N values, or use an in-process "
                f"actor (process=False)")

    def _worker_for(self) -> Worker:
        return self.worker

    def _frame(self, worker: Worker, ident: str, group: str, func, payload) -> bytes:
        return wire.frame(("call", ident, group, func, payload))

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
            self.core.die(_actor_died_error(self.core, "its __init__ raised when it restarted",
                                            decode_error(message[2], self.core)))
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
                group.complete(call, False, _actor_died_error(core, reason, None))
            payload.discard()  # never to be read
        if not core.is_dead and self.worker is worker:  # not restarted
            core.die(_actor_died_error(core, reason, None))

    def _restart(self, calls: list, reason: str) -> list:
        """A new worker (max_restarts): __init__ runs again with its first arguments, then
        the calls the dead one had, those max_task_retries allows. Returns the others."""
        init = self.init_payload
        if init is None or not init.available():
            raise RuntimeError("its __init__ arguments went through shared memory, which "
                               "the dead worker consumed")
        if self.restarts_left > 0:
            self.restarts_left -= 1
        self.worker = worker = Worker(self, ("actor", self.setup, self.hub.loop, True,
                                             self.restarts_left))
        worker.calls[_RESTART] = (None, None, init, "__init__")
        frames = [wire.frame(("call", _RESTART, "default", "__init__", init))]
        failed = []
        for group, call, payload, func in calls:
            if call is None:
                continue  # the __init__ of an earlier restart
            ident = call.hex()
            attempts = self.attempts.get(ident, 0)
            if (self.task_retries < 0 or attempts < self.task_retries) and payload.available():
                self.attempts[ident] = attempts + 1
                worker.calls[ident] = (group, call, payload, func)
                frames.append(self._frame(worker, ident, group.name, func, payload))
            else:
                failed.append((group, call, payload, func))
        worker.write(b"".join(frames))
        return failed


class PoolLink(_Link):
    """The workers of process tasks: up to `size`, started as calls need them and reused; a
    function crosses once per worker."""

    def __init__(self, hub: Hub, size: int):
        super().__init__(hub)
        self.size = size
        self.workers: list[Worker] = []
        self.idle: list[Worker] = []
        self.functions: dict[int, tuple] = {}  # id(function) -> (function, its payload)
        self.known: dict[Worker, set] = {}
        self.stopped = False
        self.workers_lock = threading.Lock()  # workers, idle, known

    def _callee(self, func) -> tuple:
        return func.__qualname__, func

    def _worker_for(self) -> Worker:
        # The core admits at most `size` calls: there is an idle worker, or room for one.
        with self.workers_lock:
            if self.idle:
                return self.idle.pop()
            worker = Worker(self, ("pool", self.hub.loop))
            self.workers.append(worker)
            self.known[worker] = set()
            return worker

    def _frame(self, worker: Worker, ident: str, group, func, payload) -> bytes:
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

    def _done(self, worker: Worker) -> None:
        with self.workers_lock:
            if not worker.stopping:
                self.idle.append(worker)

    def stop(self) -> None:
        self.stopped = True
        super().stop()

    def on_end(self, worker: Worker) -> None:
        with self.workers_lock:
            self.workers.remove(worker)
            self.known.pop(worker, None)
            if worker in self.idle:
                self.idle.remove(worker)
        reason = describe_exit(worker.returncode)
        for group, call, payload, _ in worker.take_calls():
            payload.discard()
            group.complete(call, False, WorkerCrashedError(
                f"{call!r}: {reason.replace('its worker', 'the worker')} (pid {worker.pid}) "
                f"while running it"))


class Hub:
    """The runtime's process I/O: one thread reads every worker's pipe."""

    def __init__(self, loop: str):
        self.loop = loop  # the workers' kind of event loop, as the runtime's
        self._selector = selectors.DefaultSelector()
        self._wake_in, self._wake_out = os.pipe()
        os.set_blocking(self._wake_out, False)
        self._selector.register(self._wake_in, selectors.EVENT_READ, None)
        self._new: list[Worker] = []
        self._workers: set[Worker] = set()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="pyactors:process-io",
                                        daemon=True)
        self._thread.start()

    def actor_link(self, cls: type, streaming: frozenset, restarts: int,
                   task_retries: int) -> ActorLink:
        return ActorLink(self, cls, streaming, restarts, task_retries)

    def pool_link(self, size: int) -> PoolLink:
        return PoolLink(self, size)

    def add(self, worker: Worker) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("pyactors.shutdown() was called")
            self._new.append(worker)
        self.poke()

    def poke(self) -> None:
        try:
            os.write(self._wake_out, b"!")
        except OSError:
            pass  # a wakeup is pending already (or the hub has stopped)

    def _run(self) -> None:
        selector = self._selector
        while True:
            with self._lock:
                new, self._new = self._new, []
                closed = self._closed
            for worker in new:
                self._workers.add(worker)
                selector.register(worker.fd_in, selectors.EVENT_READ, worker)
            if closed and not self._workers:
                return
            for key, _ in selector.select(self._timeout()):
                worker = key.data
                if worker is None:
                    os.read(self._wake_in, 4096)
                    continue
                messages = worker.read()
                if messages is None:
                    selector.unregister(worker.fd_in)
                    self._workers.discard(worker)
                    worker.end()
                    continue
                for message in messages:
                    worker.link.on_message(worker, message)
            self._kill_overdue()

    def _timeout(self) -> float | None:
        deadlines = [worker.kill_at for worker in self._workers if worker.kill_at]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for worker in self._workers:
            if worker.kill_at and now >= worker.kill_at:
                worker.kill_at = 0.0
                try:
                    worker.proc.kill()
                except ProcessLookupError:
                    pass

    def stop(self, timeout: float) -> None:
        """After every link was stopped: wait for their workers to end, then for the thread."""
        with self._lock:
            self._closed = True
        self.poke()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._selector.close()
            os.close(self._wake_in)
            os.close(self._wake_out)
        wire.sweep_segments(wire.segment_prefix())
