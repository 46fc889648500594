"""A worker process: runs what its parent sends as calls of an in-process pyactors actor (or
remote function), so that groups, loops, threads, cancellation and errors behave as they do in
one process. The parent admits; the worker runs each call as it arrives.

Its main thread reads the pipe; results are written by whichever thread completes them. The
pipe's end (the parent exited, even by SIGKILL) ends the worker.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
import traceback
from typing import cast

from .. import _core, _runtime
from .._actor import ActorHandle, _assemble
from .._context import caller_task_ids, caller_task_lock
from .._control import set_concurrency
from .._function import RemoteFunction
from .._generators import DYNAMIC, STREAMING, DynamicObjectRefGenerator, generator_call
from ..exceptions import TaskError, _wrap_task_error
from . import wire
from .crossing import Exports, Peer
from .errors import encode_error
from .streams import Window, Yielded


def _die_with(parent: int) -> None:
    """End with the parent, even while a thread holds the GIL in C code (the pipe's end
    needs this process's reader to run to be noticed). Linux only; elsewhere the pipe's end
    does it alone."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before prctl()
        os._exit(0)


PR_SET_PDEATHSIG = 1
# How the worker runs a generator call for each way its values return (see streams.py): one
# value per call, which the caller's process rebuilds.
_RETURNS = {"streaming": STREAMING, "dynamic": DYNAMIC, "collected": DYNAMIC, "single": 1}
# Results of a busy worker - one with at least DEFER_FROM calls still to answer - wait at
# most FLUSH_DELAY, or until BATCH_MOST of them wait, to go in one write.
DEFER_FROM = 16
FLUSH_DELAY = 0.0005
BATCH_MOST = 256


class Worker:
    def __init__(self, fd_in: int, fd_out: int):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.write_lock = threading.Lock()
        self.outbox: list = []  # messages that wait to be written together (see _send)
        self.flush_due = threading.Event()
        self.pid = os.getpid()  # any other pid: a fork of it (a method's multiprocessing)
        self.refs: dict = {}  # call id -> the ref of its call here
        self.windows: dict[str, Window] = {}  # call id -> what its stream may send
        self.methods: dict = {}  # (method, group, generator kind) -> RemoteMethod
        self.functions: dict = {}  # key -> (RemoteFunction, generator kind)
        # Set by the "actor" message, before the call of __init__ that reads it.
        self.setup: wire.Payload = None  # type: ignore[assignment]
        self.reconstructed = False  # a restart's worker
        self.restarts_left = 0
        self.death_told = False
        self.exports = Exports()
        self.peer = Peer(self._send, self.exports)
        # The actor, once __init__'s call created it (limits are sent to it only then).
        self.handle: ActorHandle = None  # type: ignore[assignment]
        self.core: _core.ActorCore | None = None
        self.class_name = ""

    def _tell_drops(self) -> None:
        # Its own thread: a finalizer may not write (it may run inside _send, under the lock).
        while True:
            self.peer.dropped.put(self.peer.dropped.get())  # wait for one, keep it
            message = self.peer.drops()
            if message is not None:
                self._send(message)

    def run(self) -> None:
        threading.Thread(target=self._tell_drops, name="pyactors:drops", daemon=True).start()
        threading.Thread(target=self._flush_later, name="pyactors:flush", daemon=True).start()
        reader = wire.FrameReader()
        while True:
            data = os.read(self.fd_in, wire.READ_SIZE)
            if not data:
                return
            for message in reader.feed(data):
                op = message[0]
                if op == "call":
                    self.call(*message[1:])
                elif op == "stream":  # the call that follows streams
                    self.windows[message[1]] = Window(message[2])
                elif op == "more":
                    window = self.windows.get(message[1])
                    if window is not None:
                        window.more(message[2])
                elif op == "cancel":
                    entry = self.refs.get(message[1])
                    if entry is not None:
                        _core.cancel(entry)
                elif op == "stats":  # how many of a group's calls run here
                    group = None if self.core is None else self.core.group(message[2])
                    running = 0 if group is None else group.stats()["running"]
                    self._send(("stats", message[1], running))
                elif op == "limit":
                    set_concurrency(self.handle, message[1], message[2])
                elif op == "watch":
                    self.exports.watch(message[1], self._send)
                elif op == "settled":
                    self.peer.settled(*message[1:])
                elif op == "hcall":
                    self.peer.serve_call(*message[1:])
                elif op == "drop":  # results' shared memory the parent is done with
                    wire.give_back(message[2])
                elif op == "shutdown":  # pyactors.shutdown(), or nothing references it
                    # Beside the reader: the hook may wait for refs and handles it serves.
                    threading.Thread(
                        target=self._shut_down, name="pyactors:shutdown", daemon=True
                    ).start()
                elif op == "actor":
                    _, self.setup, self.reconstructed, self.restarts_left = message
                elif op == "pool":
                    # A pool's worker: its calls are function calls from now on.
                    self.call = self.call_function  # type: ignore[method-assign, assignment]
                    _runtime.current_local().function_group(False).set_limit(1)  # one at a time

    def _shut_down(self) -> None:
        if self.core is not None:
            self.core.run_shutdown_hook()  # once, as in one process
        self._send(("shut",))

    def call(self, ident: str, group: str, method, payload: wire.Payload) -> None:
        """A call of the actor's `method` in `group` (or its __init__); a generator method's
        comes as (method, how its values return)."""
        method, kind = method if type(method) is tuple else (method, None)
        args = self._arguments(ident, method, payload)
        if args is None:
            return
        args, kwargs = args
        try:
            with caller_task_lock:
                caller_task_ids[0] = ""  # marks this process a worker from the first call
                if method == "__init__":
                    ref = self._create(args, kwargs or {})
                else:
                    remote_method = self._method(method, group, kind)
                    ref = self._streamed(ident, remote_method).remote(*args, **(kwargs or {}))
                caller_task_ids[id(_call_of(ref))] = ident
        except BaseException as exc:
            self._send(("err", ident, encode_error(self._task_error(exc, method, group))))
            return
        self._track(ident, ref, method, group, kind)

    def call_function(
        self, ident: str, key: int, function: wire.Payload | None, payload: wire.Payload
    ) -> None:
        """A process task: the function crosses once, then goes by `key`."""
        try:
            entry = self.functions.get(key)
            if entry is None:  # its first call: the function came with it
                entry = self.functions[key] = _remote_function(
                    self.peer.loads(cast(wire.Payload, function))
                )
            remote_function, kind = entry
        except Exception as exc:
            self._send(
                (
                    "err",
                    ident,
                    encode_error(
                        TypeError(
                            f"the function could not be unpickled in the worker process: "
                            f"{type(exc).__name__}: {exc}"
                        )
                    ),
                )
            )
            return
        args = self._arguments(ident, remote_function.__qualname__, payload)
        if args is None:
            return
        args, kwargs = args
        try:
            with caller_task_lock:
                caller_task_ids[0] = ""
                ref = self._streamed(ident, remote_function).remote(*args, **(kwargs or {}))
                caller_task_ids[id(_call_of(ref))] = ident
        except BaseException as exc:
            self._send(("err", ident, encode_error(exc)))
            return
        self._track(ident, ref, None, None, kind)

    def _arguments(self, ident: str, what: str, payload: wire.Payload):
        try:
            return self.peer.loads(payload)
        except Exception as exc:  # an argument's class this process cannot import, say
            name = what if self.core is None or what is None else f"{self.class_name}.{what}"
            self._send(
                (
                    "err",
                    ident,
                    encode_error(
                        TypeError(
                            f"the arguments of {name}() could not be unpickled in its worker "
                            f"process (pid {os.getpid()}): {type(exc).__name__}: {exc}"
                        )
                    ),
                )
            )
            return None

    def _streamed(self, ident: str, remote_method):
        """`remote_method` as a streaming call `ident` runs it: the body waits for the
        forwarding thread to take each value when the caller set a backpressure (so that it
        runs at most one value ahead of what the caller allows), as it does in one process."""
        window = self.windows.get(ident)
        if window is None or window.allowed is None:
            return remote_method
        return remote_method.options(_generator_backpressure_num_objects=1)

    def _track(self, ident: str, ref, method, group, kind) -> None:
        if ref is None:  # an __init__ with nothing to run
            self._send(("ok", ident, wire.dumps(None)))
            return
        if type(ref) is _core.ObjectRefGenerator:
            window = self.windows[ident]  # its "stream" frame came before the call
            self.refs[ident] = ref.completed()  # what a cancel stops
            threading.Thread(
                target=self._forward,
                args=(ident, [ref], window, method, group),
                name="pyactors:stream",
                daemon=True,
            ).start()
            return
        self.refs[ident] = ref
        _core.on_settled(ref, functools.partial(self._done, ident, method, group, kind))

    def _forward(self, ident: str, holder: list, window: Window, method, group) -> None:
        """Send each value of a streaming call as its body yields it (as far as the caller's
        backpressure allows), then the call's end."""
        generator = holder.pop()  # the only reference: dropping it stops the body
        completed = generator.completed()
        sent = 0
        error = None
        while window.wait_for_room(sent):
            ref = next(generator, None)
            if ref is None or ref is completed:  # the end (failed: its end says how)
                break
            try:
                data = wire.dumps(ref.result(), self.exports)
            except Exception as exc:
                error = self._task_error(
                    TypeError(
                        f"the value it yielded as item {sent} could not be pickled to return "
                        f"it to the caller's process: {type(exc).__name__}: {exc}"
                    ),
                    method,
                    group,
                )
                break
            sent += 1
            # Batched (at most FLUSH_DELAY late) while more follow at once - the next value is
            # there, or the window lets the body run on - and sent now when the worker is
            # about to wait for the caller.
            self._send(("item", ident, data), generator.next_ready() or window.open_after(sent))
        # Dropped (by the caller, or after a value that cannot cross): the body stops at its
        # next value, as in one process when the generator is dropped.
        del generator
        _core.on_settled(
            completed, functools.partial(self._done, ident, method, group, None, error=error)
        )

    def _create(self, args: tuple, kwargs: dict):
        actor_class, options, actor_id, name, job_id = self.peer.loads(self.setup)
        options = {**options, "max_restarts": self.restarts_left}  # what is left of them
        self.class_name = actor_class._cls.__name__
        runtime = _runtime.current_local()  # a worker's runtime is local
        runtime.job_id = job_id  # one job, however many processes run it
        core, start = _assemble(actor_class, options, runtime, args, kwargs, actor_id)
        self.handle = core.handle_factory()
        runtime.register(core, name, self.handle)
        self.core = core
        core.on_death = functools.partial(self._died, core.on_death)  # after the registry's
        if self.reconstructed:
            core.mark_reconstructed()
        if core.lifecycle is not None:
            core.lifecycle = _Told(core.lifecycle, self._send)
        return start()

    def _died(self, forget_name=None) -> None:
        # The actor left (exit_actor(), sys.exit() with no restart left, its __init__
        # raised): so does its process. Said before the errors of the calls that die with it
        # (their callbacks run first), so that the parent's actor is dead when they arrive,
        # as in one process.
        if forget_name is not None:  # the runtime frees the actor's name here too
            forget_name()
        if os.getpid() != self.pid:
            return  # a fork's copy of the actor died (see _send)
        with self.write_lock:
            if self.death_told:
                return
            self.death_told = True
            core = cast(_core.ActorCore, self.core)  # the actor whose on_death this is
            reason = str(core.death_cause).removeprefix(f"{core.description} died: ")
            self.outbox.append(("died", reason))  # after the results before it
            self._flush()

    def _method(self, method: str, group: str, kind: str | None):
        remote_method = self.methods.get((method, group, kind))
        if remote_method is None:
            # One value per call, which the caller's process splits into its num_returns
            # refs (a generator's, as `kind` says).
            remote_method = getattr(self.handle, method).options(
                concurrency_group=group, num_returns=1 if kind is None else _RETURNS[kind]
            )
            self.methods[(method, group, kind)] = remote_method
        return remote_method

    def _task_error(self, exc: BaseException, method, group: str):
        """`exc` as the TaskError of a call of `method` (an __init__'s error is not one)."""
        if isinstance(exc, TaskError) or self.core is None or method is None:
            return exc
        return _wrap_task_error(exc, f"{self.class_name}.{method}", self.core.group(group))

    def _done(self, ident: str, method, group: str, kind, ref, error=None) -> None:
        """`ref`, the call `ident`, completed: its outcome to the caller (or `error`, the
        forwarding's of a stream)."""
        # Without the lock (a dict's pop is atomic): the reader holds it to submit the next
        # call, and this runs on the actor's thread, for every call
        caller_task_ids.pop(id(self.refs.pop(ident)), None)
        self.windows.pop(ident, None)
        if error is None:
            error = ref.exception()
        message: tuple
        if error is None:
            try:
                value = ref.result()
                if type(value) is DynamicObjectRefGenerator:
                    value = self._yielded(value, kind == "dynamic", method, group)
                message = ("ok", ident, wire.dumps(value, self.exports))
            except Exception as exc:
                message = (
                    "err",
                    ident,
                    encode_error(
                        self._task_error(
                            TypeError(
                                "its result could not be pickled to return it to the caller's "
                                f"process: {type(exc).__name__}: {exc}"
                            ),
                            method,
                            group,
                        )
                    ),
                )
        else:  # as the worker's core made it; only __init__'s is raw
            if self.core is not None and self.core.is_dead:
                self._died()
            if method == "__init__":
                error = self._task_error(error, method, group)
            message = ("err", ident, encode_error(error))
        self._send(message, len(self.refs) >= DEFER_FROM)

    def _yielded(self, value: DynamicObjectRefGenerator, dynamic: bool, method, group) -> Yielded:
        # The values before an error keep their refs; the error is the dynamic generator's
        # last ref, or what the remaining outputs of num_returns=N raise.
        values = []
        error = None
        for ref in value:
            exc = ref.exception()
            if exc is None:
                values.append(ref.result())
            else:
                error = encode_error(self._task_error(exc, method, group))
        return Yielded(values, error, dynamic)

    def _send(self, message: tuple, defer: bool = False) -> None:
        """Write `message`, after what waits. With `defer` (many calls are still to answer,
        so more results follow at once), let it wait, at most FLUSH_DELAY: a stream of results
        costs one write - and one wakeup of the parent - per batch, not per result."""
        # By pid, not by an at-fork hook: the runtime's own hook (registered first, so run
        # first) fails the fork's copies of the actor's calls, and their ends come here
        if os.getpid() != self.pid:
            return  # a fork of this worker (a method's multiprocessing): not its pipe
        with self.write_lock:
            outbox = self.outbox
            outbox.append(message)
            if defer and len(outbox) < BATCH_MOST:
                if len(outbox) == 1:
                    self.flush_due.set()
                return
            self._flush()

    def _flush(self) -> None:
        """Write what waits, in one frame (under write_lock)."""
        wire.write_all(self.fd_out, wire.frame(*self.outbox))
        self.outbox.clear()

    def _flush_later(self) -> None:
        while True:
            self.flush_due.wait()
            time.sleep(FLUSH_DELAY)  # what else completes meanwhile joins the batch
            self.flush_due.clear()
            with self.write_lock:
                if self.outbox:
                    self._flush()


def _call_of(ref):
    """The call behind what .remote() returned (its task id is the caller's)."""
    return ref.completed() if type(ref) is _core.ObjectRefGenerator else ref


def _remote_function(function) -> tuple[RemoteFunction, str | None]:
    """The remote function that runs a process task's `function` here, and how its values
    return if it is a generator's body (see pyactors._generators.generator_call)."""
    generator = generator_call(function)
    if generator is None:
        return RemoteFunction(function, {}), None
    function, kind = generator
    return RemoteFunction(function, {"num_returns": _RETURNS[kind]}), kind


def main() -> None:
    # Ctrl-C in a terminal reaches the whole process group: the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd_in, fd_out, parent, loop = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    _die_with(parent)
    # Before it is given work: a spare is ready at once
    _runtime.init(loop=loop, backend="local")
    code = 0  # the pipe ended: the parent is gone or let it go
    try:
        Worker(fd_in, fd_out).run()
    except BaseException:  # a bug of the worker's own: said, and seen in the exit code
        traceback.print_exc()
        sys.stderr.flush()
        code = 70  # EX_SOFTWARE
    finally:
        os._exit(code)  # at once: the actor's threads are daemons of a finished job


class _Told:
    """The actor's lifecycle, telling the parent of each restart (sys.exit() in a method):
    the restarts the parent may still make (after a worker's death) are fewer by one."""

    def __init__(self, lifecycle, send):
        self._lifecycle = lifecycle
        self._send = send

    def shutdown(self) -> None:
        self._lifecycle.shutdown()

    def reset(self):
        self._send(("restarted",))
        return self._lifecycle.reset()
