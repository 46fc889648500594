"""Measurements for tests: resident memory, the Python heap a piece of work leaves behind, and
several threads waiting at once."""

import gc
import os
import threading
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


def join_actor_threads(class_name, timeout=30.0):
    """Wait until the threads of every actor of `class_name` have ended: dead actors' threads
    finish on their own, a little after the actor died."""
    for thread in threading.enumerate():
        if thread.name.startswith(f"pyactors:{class_name}("):
            thread.join(timeout)
