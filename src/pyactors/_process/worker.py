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

from .. import _core, _runtime
from .._actor import _assemble
from .._control import set_concurrency
from .._function import RemoteFunction
from ..exceptions import TaskError, _wrap_task_error
from . import wire
from .errors import encode_error


class Worker:
    def __init__(self, fd_in: int, fd_out: int):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.write_lock = threading.Lock()
        self.refs: dict = {}  # call id -> the ref of its call here
        self.methods: dict = {}  # (method, group) -> RemoteMethod
        self.functions: dict = {}  # key -> RemoteFunction
        self.setup = None
        self.handle = None
        self.core = None
        self.class_name = ""

    def run(self) -> None:
        reader = wire.FrameReader()
        while True:
            data = os.read(self.fd_in, 1 << 20)
            if not data:
                return
            for message in reader.feed(data):
                op = message[0]
                if op == "call":
                    self.call(*message[1:])
                elif op == "cancel":
                    entry = self.refs.get(message[1])
                    if entry is not None:
                        _core.cancel(entry)
                elif op == "limit":
                    set_concurrency(self.handle, message[1], message[2])
                elif op == "actor":
                    self.setup = message[1]
                elif op == "pool":
                    self.call = self.call_function

    def call(self, ident: int, group: str, method, payload: wire.Payload) -> None:
        """A call of the actor's `method` in `group` (or its __init__)."""
        try:
            args, kwargs = wire.loads(payload)
            if method == "__init__":
                ref = self._create(args, kwargs or {})
            else:
                ref = self._method(method, group).remote(*args, **(kwargs or {}))
        except BaseException as exc:
            self._send(("err", ident, encode_error(self._task_error(exc, method, group))))
            return
        self._track(ident, ref, method, group)

    def call_function(self, ident: int, key: int, function: wire.Payload | None,
                      payload: wire.Payload) -> None:
        """A process task: the function crosses once, then goes by `key`."""
        try:
            remote_function = self.functions.get(key)
            if remote_function is None:
                remote_function = self.functions[key] = RemoteFunction(wire.loads(function), {})
            args, kwargs = wire.loads(payload)
            ref = remote_function.remote(*args, **(kwargs or {}))
        except BaseException as exc:
            self._send(("err", ident, encode_error(exc)))
            return
        self._track(ident, ref, None, None)

    def _track(self, ident: int, ref, method, group) -> None:
        if ref is None:  # an __init__ with nothing to run
            self._send(("ok", ident, wire.dumps(None)))
            return
        if type(ref) is not _core.ObjectRef:
            self._send(("err", ident, encode_error(self._task_error(TypeError(
                f"{method}() is a generator: process actors do not stream yet; return a "
                f"list, or use an in-process actor"), method, group))))
            return
        self.refs[ident] = ref
        ref.future().add_done_callback(functools.partial(self._done, ident, method, group))

    def _create(self, args: tuple, kwargs: dict):
        actor_class, options, actor_id = wire.loads(self.setup)
        self.class_name = actor_class._cls.__name__
        runtime = _runtime.current()
        core, start = _assemble(actor_class, options, runtime, args, kwargs, actor_id)
        self.handle = core.handle_factory()
        runtime.register(core, None, self.handle)
        self.core = core
        core.on_death = self._died
        return start()

    def _died(self) -> None:
        # The actor left (exit_actor(), sys.exit(), its __init__ raised): so does its process.
        self._send(("died", str(self.core.death_cause)))

    def _method(self, method: str, group: str):
        remote_method = self.methods.get((method, group))
        if remote_method is None:
            remote_method = getattr(self.handle, method).options(concurrency_group=group)
            self.methods[(method, group)] = remote_method
        return remote_method

    def _task_error(self, exc: BaseException, method, group: str):
        """`exc` as the TaskError of a call of `method` (an __init__'s error is not one)."""
        if isinstance(exc, TaskError) or self.core is None or method is None:
            return exc
        return _wrap_task_error(exc, f"{self.class_name}.{method}", self.core.group(group))

    def _done(self, ident: int, method, group: str, future) -> None:
        self.refs.pop(ident, None)
        error = future.exception()
        if error is None:
            try:
                message = ("ok", ident, wire.dumps(future.result()))
            except Exception as exc:
                message = ("err", ident, encode_error(self._task_error(TypeError(
                    f"its result could not be pickled to return it to the caller's process: "
                    f"{type(exc).__name__}: {exc}"), method, group)))
        else:
            message = ("err", ident, encode_error(self._task_error(error, method, group)))
        self._send(message)

    def _send(self, message: tuple) -> None:
        data = wire.frame(message)
        with self.write_lock:
            wire.write_all(self.fd_out, data)


def main() -> None:
    # Ctrl-C in a terminal reaches the whole process group: the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd_in, fd_out = int(sys.argv[1]), int(sys.argv[2])
    try:
        Worker(fd_in, fd_out).run()
    finally:
        os._exit(0)
