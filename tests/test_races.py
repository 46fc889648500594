"""Cancels aimed at the moment of admission, under a garbage collector that switches threads.

On CPython 3.10 and 3.11 any allocation may run the cyclic garbage collector, and a finalizer
it runs may release the GIL: another thread then runs in the middle of whatever the allocating
thread was doing, even inside compiled code. These scenarios make that happen constantly
(cyclic garbage whose finalizer sleeps, a tiny switch interval) while one thread submits calls
and another cancels each one right behind it. Each runs in a fresh interpreter: a crash fails
the test rather than the run.
"""

import json
import textwrap

import pytest
from hostile import assert_clean_exit, describe, run_python

pytestmark = pytest.mark.stress

COMMON = """
    import asyncio, faulthandler, gc, json, queue, sys, threading, time
    import pyactors as ray

    faulthandler.dump_traceback_later(45, exit=True)  # a hang fails with every stack
    from pyactors.exceptions import TaskCancelledError

    class Churn:
        # Cyclic garbage whose finalizer gives up the GIL wherever the collector ran.
        alive = 0

        def __init__(self):
            self.cycle = self
            Churn.alive += 1

        def __del__(self):
            Churn.alive -= 1
            time.sleep(0)

    stop_churn = threading.Event()

    def churn():
        # A few pieces of garbage at a time: every collection then switches threads a few
        # times, without a pile of finalizers stalling whoever happened to allocate.
        while not stop_churn.is_set():
            if Churn.alive < 8:
                Churn()
            else:
                time.sleep(0.0002)

    def stop():
        stop_churn.set()
        churner.join(5)
        gc.set_threshold(700, 10, 10)
        ray.shutdown()

    gc.set_threshold(25, 5, 5)
    sys.setswitchinterval(1e-5)
    ray.init(loop=sys.argv[1])
    churner = threading.Thread(target=churn, name="churn", daemon=True)
    churner.start()

    def cancel_behind(submit, n):
        # Submits n calls; a second thread cancels each one as soon as it exists.
        refs, handoff = [], queue.SimpleQueue()

        def canceller():
            while (ref := handoff.get()) is not None:
                ref.cancel()

        thread = threading.Thread(target=canceller)
        thread.start()
        for i in range(n):
            ref = submit(i, refs)
            refs.append(ref)
            handoff.put(ref)
        handoff.put(None)
        thread.join(20)
        return refs

    def outcomes(refs, expected):
        counts = {"value": 0, "cancelled": 0}
        _, not_ready = ray.wait(refs, num_returns=len(refs), timeout=20)
        assert not not_ready, f"{len(not_ready)} calls never completed"
        for i, ref in enumerate(refs):
            try:
                value = ray.get(ref, timeout=0)
            except TaskCancelledError:
                counts["cancelled"] += 1
            else:
                assert value == expected(i), (i, value)
                counts["value"] += 1
        return counts
"""


# Rounds of the first scenario: enough that the race it guards against (a use-after-free when
# the interleaving is lost) shows up in about half the runs on 3.10 if it comes back.
ROUNDS = 20


def run_scenario(body, loop_kind, *args):
    # The debug allocator fills freed memory with a pattern: a use-after-free crashes at once
    # instead of reading stale data that happens to look right.
    result = run_python(
        textwrap.dedent(COMMON) + textwrap.dedent(body),
        loop_kind,
        *args,
        timeout=55,
        env={"PYTHONMALLOC": "debug"},
    )
    assert_clean_exit(result)
    return json.loads(result.stdout.strip().splitlines()[-1]), result


def test_cancels_racing_admission_and_invocation(loop_kind):
    """Each call takes fresh argument objects, so a call whose arguments were dropped while
    the method was being invoked reads freed memory (a crash on 3.10 before invoke() held its
    own references). Every call ends exactly once, and every slot is freed."""
    summary, result = run_scenario(
        """
        @ray.remote(concurrency_groups={"pool": 2})
        class Echo:
            def __init__(self):
                self.ran = []
                self.active = 0
                self.idle = None
                self.both = threading.Barrier(2)

            async def echo(self, i, box):
                self.active += 1
                try:
                    self.ran.append(i)
                    await asyncio.sleep(0)
                    return box[0]
                finally:
                    self.active -= 1
                    if self.active == 0 and self.idle is not None:
                        self.idle.set()

            def plain(self, i, box):
                self.ran.append(i)
                return box[0]

            @ray.method(concurrency_group="pool", blocking=True)
            def blocking(self, i, box):
                self.ran.append(i)
                return box[0]

            @ray.method(concurrency_group="pool", blocking=True)
            def pool_drained(self):
                self.both.wait(20)  # as Threaded.drained, for the worker threads of "pool"

            async def drained(self):
                # Calls start in submission order: once no body submitted before this one
                # is running, each has ended and given back its slot.
                while self.active:
                    self.idle = asyncio.Event()
                    await self.idle.wait()
                return sorted(self.ran)

        @ray.remote(max_concurrency=2)
        class Threaded:
            def __init__(self):
                self.ran = []
                self.both = threading.Barrier(2)

            def plain(self, i, box):
                self.ran.append(i)
                return box[0]

            def drained(self):
                # Two of these running at once hold both slots: every call submitted before
                # them has ended and given its slot back (a leaked slot breaks the barrier).
                self.both.wait(20)
                return sorted(self.ran)

        totals = {"value": 0, "cancelled": 0}
        echo, threaded = Echo.remote(), Threaded.remote()
        for round_ in range(int(sys.argv[2])):
            for method in (echo.echo, echo.plain, echo.blocking, threaded.plain):
                refs = cancel_behind(lambda i, refs: method.remote(i, [str(i) * 3]), 300)
                counts = outcomes(refs, lambda i: str(i) * 3)
                for key in totals:
                    totals[key] += counts[key]
        ray.get([echo.pool_drained.remote() for _ in range(2)], timeout=25)
        ran = ray.get(echo.drained.remote()) + ray.get(
            [threaded.drained.remote() for _ in range(2)])[0]
        stats = [*ray.stats(echo).values(), ray.stats(threaded)["default"]]
        stop()
        print(json.dumps({"totals": totals, "ran": len(ran), "distinct": len(set(ran)),
                          "stats": stats}))
    """,
        loop_kind,
        str(ROUNDS),
    )
    totals, stats = summary["totals"], summary["stats"]
    assert totals["value"] + totals["cancelled"] == ROUNDS * 4 * 300, describe(result)
    assert summary["ran"] >= totals["value"], summary
    for group in stats:
        assert group["running"] == group["queued"] == 0, summary
    # + the drained() calls
    assert sum(g["completed"] for g in stats) == totals["value"] + 5, summary
    assert sum(g["cancelled"] for g in stats) == totals["cancelled"], summary


def test_cancels_racing_dependency_chains(loop_kind):
    """Calls that take the previous call's ref as their argument, cancelled right behind the
    submitter: arguments complete, fail and get cancelled while calls register for them.
    Every call ends once; a call whose argument was cancelled fails unrun."""
    summary, result = run_scenario(
        """
        @ray.remote
        class Chain:
            def __init__(self):
                self.ran = 0
                self.active = 0
                self.idle = None

            async def step(self, previous, i):
                self.ran += 1
                self.active += 1
                try:
                    await asyncio.sleep(0)
                finally:
                    self.active -= 1
                    if self.idle is not None:
                        self.idle.set()
                return i

            async def drained(self):
                # A step cancelled while it ran may still unwind when its ref is settled:
                # wait until none runs, then one turn of the loop, behind the completions
                # the last ones scheduled as they ended (after waking this one up).
                while self.active:
                    self.idle = asyncio.Event()
                    await self.idle.wait()
                await asyncio.sleep(0)
                return self.ran

        chain = Chain.remote()
        totals = {"value": 0, "cancelled": 0, "failed": 0}
        for round_ in range(10):
            def submit(i, refs):
                previous = refs[-1] if refs else ray.put(None)
                return chain.step.remote(previous, [i])
            refs = cancel_behind(submit, 300)
            _, not_ready = ray.wait(refs, num_returns=len(refs), timeout=20)
            assert not not_ready, f"{len(not_ready)} chained calls never completed"
            for i, ref in enumerate(refs):
                try:
                    assert ray.get(ref, timeout=0) == [i]
                    totals["value"] += 1
                except TaskCancelledError:
                    totals["cancelled"] += 1
        ran = ray.get(chain.drained.remote(), timeout=25)
        stats = ray.stats(chain)["default"]
        stop()
        print(json.dumps({"totals": totals, "ran": ran, "stats": stats}))
    """,
        loop_kind,
    )
    totals, stats = summary["totals"], summary["stats"]
    assert totals["value"] + totals["cancelled"] == 3000, describe(result)
    assert stats["running"] == stats["queued"] == stats["waiting_for_arguments"] == 0, summary
    assert totals["value"] <= summary["ran"] <= 3000, summary
