"""Worker processes and the runtime's one I/O thread (the hub) that serves all of them.

The hub's thread is the only one that starts workers, reads their pipes, and finishes
writes that did not fit: it never blocks on a worker. Starting workers there also makes it
their parent thread, which lives as long as they may - what PR_SET_PDEATHSIG needs to end a
worker when this process dies, even one stuck in C code that holds its GIL.
"""

from __future__ import annotations

import collections
import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
import time

from .. import _context
from ..exceptions import ActorDiedError
from . import wire
from .crossing import Peer

# After terminate(), how long a worker has to exit before it is killed.
TERMINATE_GRACE = 2.0
_BOOT = "from pyactors._process.worker import main; main()"
_READ, _WRITE = "r", "w"


def _child_environment() -> dict:
    env = dict(os.environ)
    # A worker's own actors live in it, whatever the parent's environment chooses
    for name in ("PYACTORS_PROCESS", "PYACTORS_BACKEND", "PYACTORS_RAY_ADDRESS"):
        env.pop(name, None)
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


class Worker:
    """One worker process and its pipes. Any thread writes (what does not fit waits in the
    outbox for the hub); only the hub's thread reads, starts and ends it."""

    def __init__(self, link, setup: tuple | None):
        self.link = link
        self.calls: dict[str, tuple] = {}  # call.hex() -> (group, call, payload, func)
        self.write_lock = threading.Lock()
        # What waits for the pipe: messages to frame together, after the bytes of the outbox
        # (the rest of a frame a write did not finish).
        self.waiting: list = []
        self.outbox: collections.deque = collections.deque()
        self.reader = wire.FrameReader()
        # Set by spawn(), before the hub serves the worker (reaps, cuts or kills it).
        self.proc: subprocess.Popen = None  # type: ignore[assignment]
        self.pid = 0
        self.fd_in = self.fd_out = -1
        self.stopping = False
        self.cut_off = False  # its pipe closed, terminated
        self.kill_at = 0.0
        self.started = threading.Event()
        self.start_error: BaseException | None = None
        self.reaped = threading.Event()
        self.returncode: int | None = None
        self.peer = Peer(self.send, link.exports, link.hub.poke)
        if setup is not None:  # a spare gets it when it is taken (adopt())
            self.send(setup)  # first in the outbox: sent as it starts

    def adopt(self, link, setup: tuple) -> None:
        """A spare worker becomes `link`'s; `setup` tells it what it runs."""
        with self.write_lock:
            self.link = link
            self.peer = Peer(self.send, link.exports, link.hub.poke)
        self.send(setup)

    def send(self, *messages: tuple, defer: bool = False) -> None:
        """Send `messages`; with `defer` (the worker is busy with earlier calls anyway), leave
        them to the hub, which writes everything that waits at once, in one frame: pipelined
        calls cost one pickle, one write and one wakeup of the worker per batch, not per
        call."""
        if not self.peer.dropped.empty():  # what was given back here goes first, at no cost:
            drops = self.peer.drops()  # the worker may write its next result there
            if drops is not None:
                messages = (drops, *messages)
        with self.write_lock:
            if self.stopping:
                return  # its calls fail as its end is seen
            if self.waiting or self.outbox or self.fd_out < 0:  # behind what waits, or not started
                self.waiting += messages
                return
            if defer:
                self.waiting += messages
                self.link.hub.want_write(self)
                return
            data = wire.frame(*messages)
            done = False
            try:
                try:
                    written = os.write(self.fd_out, data)
                except BlockingIOError:
                    written = 0
                except OSError:  # it is gone: its end of the pipe, read by the hub, says why
                    written = len(data)
                if written < len(data):
                    self.outbox.append(memoryview(data)[written:])
                    self.link.hub.want_write(self)
                done = True
            finally:
                if not done:  # interrupted mid-frame (Ctrl-C): the stream cannot go on
                    self.stopping = True
                    self.link.hub.cut(self)

    def has_waiting(self) -> bool:
        with self.write_lock:
            return bool(self.waiting or self.outbox)

    def flush(self) -> bool:
        """Write what waits (the hub's thread); True once nothing does."""
        with self.write_lock:
            outbox = self.outbox
            if self.waiting:  # after the rest of a frame begun
                outbox.append(wire.frame(*self.waiting))
                self.waiting.clear()
            while outbox:
                try:
                    written = os.write(self.fd_out, outbox[0])
                except BlockingIOError:
                    return False
                except OSError:
                    outbox.clear()
                    return True
                if written < len(outbox[0]):
                    outbox[0] = memoryview(outbox[0])[written:]
                    return False
                outbox.popleft()
            return True

    def spawn(self) -> None:
        """Start the process (the hub's thread)."""
        child_in, parent_out = os.pipe()
        parent_in, child_out = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _BOOT,
                    str(child_in),
                    str(child_out),
                    str(os.getpid()),
                    self.link.hub.loop,
                ],
                pass_fds=(child_in, child_out),
                stdin=subprocess.DEVNULL,
                env=_child_environment(),
                cwd=os.getcwd(),
            )
        except BaseException:
            for fd in (parent_in, parent_out):
                os.close(fd)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        os.set_blocking(parent_out, False)  # a full pipe never blocks a writer
        self.pid = self.proc.pid
        with self.write_lock:
            self.fd_in, self.fd_out = parent_in, parent_out

    def stop(self) -> None:
        """Terminate it now; the hub closes its pipe, and kills it after a grace period."""
        with self.write_lock:
            if self.stopping:
                return
            self.stopping = True
            self.waiting.clear()
            self.outbox.clear()
        self.link.hub.cut(self)

    def read(self) -> list | None:
        """What arrived (the hub's thread), or None once the pipe has ended."""
        try:
            data = os.read(self.fd_in, wire.READ_SIZE)
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
            self.stopping = True
            self.waiting.clear()
            self.outbox.clear()
            if self.fd_out >= 0:
                os.close(self.fd_out)
                self.fd_out = -1
        wire.sweep_segments(wire.segment_prefix(self.pid))
        self.link.on_end(self)
        self.peer.fail_all(
            ActorDiedError(
                f"{describe_exit(self.returncode)} (pid {self.pid}) before it settled this ref"
            )
        )
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


class Hub:
    """The runtime's process I/O: one thread starts, reads and ends every worker."""

    def __init__(self, loop: str):
        self.loop = loop  # the workers' kind of event loop, as the runtime's
        wire.sweep_the_dead()
        self._selector = selectors.DefaultSelector()
        self._wake_in, self._wake_out = os.pipe()
        os.set_blocking(self._wake_out, False)
        self._selector.register(self._wake_in, selectors.EVENT_READ, None)
        self._requests: list = []  # (what, worker) for the hub's thread
        self._spare: Worker | None = None  # started before it is needed (take_spare())
        self._workers: set[Worker] = set()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="pyactors:process-io", daemon=True)
        self._thread.start()

    def start(self, worker: Worker, wait: bool = True) -> None:
        """Start `worker` on the hub's thread; with `wait`, raise what starting it raised.
        Without, what is sent to it meanwhile waits in its outbox, and a failure to start
        reaches its link (on_start_failed)."""
        if wait and threading.current_thread() is self._thread:
            self._start(worker)
        else:
            self._request("start", worker)
            if not wait:
                return
            worker.started.wait()
        if wait and worker.start_error is not None:
            raise worker.start_error

    def take_spare(self, link, setup: tuple) -> Worker | None:
        """A worker started ahead of need, now `link`'s, or None; another is prepared."""
        with self._lock:
            worker, self._spare = self._spare, None
            if self._closed:
                return None
        self._request("prepare", None)
        if worker is None:
            return None
        worker.adopt(link, setup)
        return worker

    def want_write(self, worker: Worker) -> None:
        self._request("write", worker)

    def cut(self, worker: Worker) -> None:
        """Close this side of its pipe and terminate it (kill after a grace period)."""
        self._request("cut", worker)

    def _request(self, what: str, worker: Worker | None) -> None:
        with self._lock:
            self._requests.append((what, worker))
        if threading.current_thread() is not self._thread:  # it runs them before it waits
            self.poke()

    def on_its_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def poke(self) -> None:
        with contextlib.suppress(OSError):  # a wakeup is pending already (or the hub stopped)
            os.write(self._wake_out, b"!")

    # -- the hub's thread -----------------------------------------------------------------

    def _run(self) -> None:
        selector = self._selector
        while True:
            with self._lock:
                requests, self._requests = self._requests, []
                closed = self._closed
            for what, worker in requests:
                getattr(self, f"_{what}")(worker)
            for worker in self._workers:  # ProxyHandles this process dropped
                drops = worker.peer.drops()
                if drops is not None:
                    worker.send(drops)
            if closed and not self._workers:
                return
            for key, _ in selector.select(self._timeout()):
                if key.data is None:
                    os.read(self._wake_in, 4096)
                    continue
                worker, side = key.data
                if side is _WRITE:
                    if worker.flush():
                        selector.unregister(worker.fd_out)
                    continue
                messages = worker.read()
                if messages is None:
                    self._end(worker)
                    continue
                for message in messages:
                    worker.link.on_message(worker, message)
            self._kill_overdue()

    def _prepare(self, _) -> None:
        if self._spare is not None or self._closed:
            return
        spare = Worker(_Spare(self), None)
        self._start(spare)
        if spare.start_error is None:
            with self._lock:
                kept = self._spare is None and not self._closed
                if kept:
                    self._spare = spare
            if not kept:  # not needed after all
                self._cut(spare)

    def _start(self, worker: Worker) -> None:
        try:
            if self._closed:
                raise RuntimeError("pyactors.shutdown() was called")
            worker.spawn()
        except BaseException as exc:
            worker.start_error = exc
            worker.stopping = True
            worker.reaped.set()
            worker.link.on_start_failed(worker, exc)
        else:
            self._workers.add(worker)
            self._selector.register(worker.fd_in, selectors.EVENT_READ, (worker, _READ))
            if worker.has_waiting():
                self._write(worker)
            if worker.stopping:  # stopped while it started
                self._cut(worker)
        worker.started.set()

    def _write(self, worker: Worker) -> None:
        if worker in self._workers and worker.fd_out >= 0 and not worker.flush():
            with contextlib.suppress(KeyError):  # registered already
                self._selector.register(worker.fd_out, selectors.EVENT_WRITE, (worker, _WRITE))

    def _cut(self, worker: Worker) -> None:
        if worker not in self._workers or worker.cut_off:
            return
        worker.cut_off = True
        self._forget_writes(worker)
        with worker.write_lock:
            if worker.fd_out >= 0:
                os.close(worker.fd_out)  # a worker whose reader runs sees its end at once
                worker.fd_out = -1
        with contextlib.suppress(ProcessLookupError):
            worker.proc.terminate()
        worker.kill_at = time.monotonic() + TERMINATE_GRACE

    def _end(self, worker: Worker) -> None:
        self._selector.unregister(worker.fd_in)
        self._forget_writes(worker)
        self._workers.discard(worker)
        worker.end()

    def _forget_writes(self, worker: Worker) -> None:
        if worker.fd_out >= 0:
            with contextlib.suppress(KeyError):
                self._selector.unregister(worker.fd_out)

    def _timeout(self) -> float | None:
        deadlines = [worker.kill_at for worker in self._workers if worker.kill_at]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for worker in self._workers:
            if worker.kill_at and now >= worker.kill_at:
                worker.kill_at = 0.0  # once
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.kill()

    def stop(self, timeout: float) -> None:
        """After every link was stopped: wait for their workers to end, then for the thread."""
        with self._lock:
            self._closed = True
            spare, self._spare = self._spare, None
        if spare is not None:
            spare.stop()
        self.poke()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._selector.close()
            os.close(self._wake_in)
            os.close(self._wake_out)
        wire.clear_kept()
        wire.sweep_segments(wire.segment_prefix())


class _Spare:
    """The link of a spare worker until one takes it: it only needs ending."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.exports = None

    def on_message(self, worker: Worker, message: tuple) -> None:
        pass  # a spare says nothing before its setup

    def on_end(self, worker: Worker) -> None:
        with self.hub._lock:
            if self.hub._spare is worker:
                self.hub._spare = None

    def on_start_failed(self, worker: Worker, error: BaseException) -> None:
        pass  # no spare, then: the next actor starts its own worker
