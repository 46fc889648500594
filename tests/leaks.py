"""What a test (or a document's code blocks) must not leave behind: threads, file descriptors,
child processes, shared memory segments, and - counted by the core - registered waiters,
posted wakeups, pending calls and, in a PYACTORS_DEBUG=1 build, broken invariants."""

import os
import threading

import pyactors
from pyactors import _core
from pyactors._process import wire


class Snapshot:
    """The process's resources before the work; check() after it (and pyactors.shutdown())
    fails on whatever the work left."""

    def __init__(self):
        self.threads = set(threading.enumerate())
        self.fds = open_fds()
        self.children = {child.split()[0] for child in child_processes()}
        self.counters = _core.debug_counters()

    def check(self, threads_and_fds: bool = True) -> None:
        """Assert nothing was left; `threads_and_fds` false where a backend keeps threads and
        connections of its own for the whole session (Ray's driver)."""
        if threads_and_fds:
            leftover = [t for t in threading.enumerate() if t not in self.threads]
            assert not leftover, f"threads left behind: {leftover}"
            left_open = {fd: _fd_target(fd) for fd in open_fds() - self.fds}
            assert not left_open, f"file descriptors left open: {left_open}"
        children = [c for c in child_processes() if c.split()[0] not in self.children]
        assert not children, f"child processes left behind: {children}"
        assert not shm_segments(), f"shared memory left behind: {shm_segments()}"
        after = _core.debug_counters()
        # Nothing may stay registered, posted or pending once the runtime is shut down...
        for counter in ("waiters_registered", "wakeups_pending", "calls_pending"):
            assert after[counter] == 0, f"{counter} = {after[counter]} after shutdown: {after}"
        # ...what the work allocated must be freed (module-level refs predate it)...
        for counter in ("refs_alive", "waiters_alive"):
            assert after[counter] <= self.counters[counter], (
                f"{counter} leaked: {self.counters} -> {after}"
            )
        # ...and per-thread states live only as long as their threads.
        assert after["thread_states"] <= threading.active_count(), after
        # No invariant the core checks (debug builds) broke.
        assert not _core.debug_violations()


def open_process_wide_resources(loops) -> None:
    """Open what an event loop opens once per process (uvloop's pipe for signal wakeups), so
    that a Snapshot taken afterwards does not count it as the work's."""

    @pyactors.remote
    class Warm:
        async def ready(self):
            return True

    for loop in loops:
        pyactors.init(loop=loop)
        assert pyactors.get(Warm.remote().ready.remote())
        pyactors.shutdown()


def child_processes() -> list[str]:
    """This process's children, zombies included: (pid, state, command)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == os.getpid():
            found.append(f"{pid} ({fields[0]}) {_command(pid)}")
    return found


def _command(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return "?"


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}")}


def _fd_target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def shm_segments() -> list[str]:
    prefix = wire.segment_prefix()
    return (
        [name for name in os.listdir("/dev/shm") if name.startswith(prefix)]
        if os.path.isdir("/dev/shm")
        else []
    )
