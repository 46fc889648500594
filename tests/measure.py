"""Measurements for tests: resident memory, the Python heap a piece of work leaves behind, and
several threads waiting at once."""

import dis
import gc
import os
import sys
import threading
import time
import tracemalloc


def rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def python_heap_kept(work):
    """Bytes of Python heap still allocated after `work()` and a full collection."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def in_threads(n, target, meanwhile):
    """Run `target()` on `n` threads, call `meanwhile()` while they run, return their results."""
    results = []
    threads = [threading.Thread(target=lambda: results.append(target())) for _ in range(n)]
    for thread in threads:
        thread.start()
    meanwhile()
    for thread in threads:
        thread.join(10)
    return results


def until_inside_its_first_call(thread, timeout=10.0):
    """Wait until `thread`, whose target is a plain function, is inside the first call that
    function makes: the instruction its frame executes is a call. Compiled code such as
    get() gives the GIL up only where it parks, so a thread seen there has parked."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident)
        if frame is not None and frame.f_code is thread._target.__code__:
            ops = {i.offset: i.opname for i in dis.get_instructions(frame.f_code)}
            if ops.get(frame.f_lasti, "").startswith("CALL"):
                return
        time.sleep(0.001)
    raise AssertionError(f"{thread.name} did not enter its call within {timeout} s")


def join_actor_threads(class_name, timeout=30.0):
    """Wait until the threads of every actor of `class_name` have ended: dead actors' threads
    finish on their own, a little after the actor died."""
    for thread in threading.enumerate():
        if thread.name.startswith(f"pyactors:{class_name}("):
            thread.join(timeout)
