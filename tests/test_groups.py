"""Concurrency groups of async actors (seed 000): one loop and thread per group, limits,
FIFO admission, call-time overrides. Everything is observed inside the actor."""

import asyncio
import threading

import pytest
from gates import Countdown, LoopGate

import pyactors as ray

pytestmark = [pytest.mark.usefixtures("place"), pytest.mark.places("in-process", "process", "ray")]


def where():
    """(thread ident, id of the running loop) of the caller."""
    return threading.get_ident(), id(asyncio.get_running_loop())


@ray.remote(concurrency_groups={"io": 2, "compute": 4})
class AsyncIOActor:
    # The seed's example, with each method reporting where it ran.
    def __init__(self):
        self.init_thread = threading.get_ident()
        try:
            self.init_loop = id(asyncio.get_running_loop())
        except RuntimeError:
            self.init_loop = None

    @ray.method(concurrency_group="io")
    async def f1(self):
        return where()

    @ray.method(concurrency_group="io")
    def f2(self):
        return where()

    @ray.method(concurrency_group="compute")
    def f3(self):
        return where()

    @ray.method(concurrency_group="compute")
    async def f4(self):
        return where()

    async def f5(self):
        return where()

    def init_location(self):
        return self.init_thread, self.init_loop


def test_each_group_has_its_own_loop_on_its_own_thread():
    a = AsyncIOActor.remote()
    f1, f2, f3, f4, f5 = ray.get(
        [a.f1.remote(), a.f2.remote(), a.f3.remote(), a.f4.remote(), a.f5.remote()]
    )
    assert f1 == f2, "f1 and f2 are both declared in 'io'"
    assert f3 == f4, "f3 and f4 are both declared in 'compute'"
    io, compute, default = f1, f3, f5
    assert len({io[0], compute[0], default[0]}) == 3, "one thread per group"
    assert len({io[1], compute[1], default[1]}) == 3, "one event loop per group"
    assert threading.get_ident() not in {io[0], compute[0], default[0]}


def test_plain_def_methods_run_on_their_groups_loop_thread():
    a = AsyncIOActor.remote()
    # f2 (def) and f1 (async def) share io's thread and, inside f2, io's loop is running.
    assert ray.get(a.f2.remote()) == ray.get(a.f1.remote())
    assert ray.get(a.f3.remote()) == ray.get(a.f4.remote())


def test_init_runs_on_the_default_groups_thread_and_loop():
    """As in Ray, an __init__ that uses the loop runs with the default group's loop (here it
    is even running: get_running_loop() works there)."""
    a = AsyncIOActor.remote()
    init_location = ray.get(a.init_location.remote())
    assert init_location == ray.get(a.f5.remote())


def test_call_time_group_applies_to_that_call_only():
    a = AsyncIOActor.remote()
    io, compute = ray.get([a.f1.remote(), a.f3.remote()])
    overridden = ray.get(a.f2.options(concurrency_group="compute").remote())
    assert overridden == compute
    # The seed's second example: a later plain call goes back to the declared group.
    assert ray.get(a.f2.options().remote()) == io
    assert ray.get(a.f2.remote()) == io


@ray.remote(concurrency_groups={"io": 2, "compute": 4})
class Meter:
    """Counts calls in flight per group, as seen by the calls themselves."""

    def __init__(self, expected_starts):
        self.running = {}
        self.peak = {}
        self.starts = []  # (group, i, running at start, finished at start)
        self.finished = 0
        self.gates = {}
        self.started = Countdown(expected_starts)

    async def _hold(self, group, i):
        if group not in self.gates:
            self.gates[group] = LoopGate()
        self.running[group] = self.running.get(group, 0) + 1
        self.peak[group] = max(self.peak.get(group, 0), self.running[group])
        self.starts.append((group, i, self.running[group], self.finished))
        self.started.count()
        await self.gates[group].wait()
        self.running[group] -= 1
        self.finished += 1
        return i

    @ray.method(concurrency_group="io")
    async def io(self, i):
        return await self._hold("io", i)

    @ray.method(concurrency_group="compute")
    async def compute(self, i):
        return await self._hold("compute", i)

    async def default(self, i):
        return await self._hold("default", i)

    async def ping(self):
        return dict(self.running)

    @ray.method(concurrency_group="compute")
    def compute_ping(self):
        return dict(self.running)

    @ray.method(concurrency_group="ctl")
    def open_io(self):
        self.gates["io"].open()

    @ray.method(concurrency_group="ctl")
    def open_compute(self):
        self.gates["compute"].open()

    @ray.method(concurrency_group="ctl")
    def open_default(self):
        self.gates["default"].open()

    @ray.method(concurrency_group="ctl")
    def wait_started(self):
        self.started.wait()

    @ray.method(concurrency_group="ctl")
    def report(self):
        return self.peak, self.starts


def meter(expected_starts, **options):
    groups = {"io": 2, "compute": 4, "ctl": 1}
    return Meter.options(concurrency_groups=groups, **options).remote(expected_starts)


def test_named_groups_never_exceed_their_limits_and_start_in_fifo_order(place):
    m = meter(2 + 4 + 7)
    io = [m.io.remote(i) for i in range(30)]
    compute = [m.compute.remote(i) for i in range(30)]
    default = [m.default.remote(i) for i in range(7)]
    ray.get(m.wait_started.remote())  # io and compute full, every default call started
    peak, _ = ray.get(m.report.remote())
    assert peak == {"io": 2, "compute": 4, "default": 7}

    ray.get([m.open_io.remote(), m.open_compute.remote(), m.open_default.remote()])
    assert ray.get(io) == list(range(30))
    assert ray.get(compute) == list(range(30))
    assert ray.get(default) == list(range(7))
    peak, starts = ray.get(m.report.remote())
    assert peak == {"io": 2, "compute": 4, "default": 7}
    if place != "ray":  # Ray does not promise the order in which queued calls start
        for group in ("io", "compute"):
            assert [i for g, i, _, _ in starts if g == group] == list(range(30)), "FIFO starts"


def test_default_group_limit_is_1000_when_max_concurrency_is_not_given():
    m = meter(1000)
    refs = [m.default.remote(i) for i in range(1001)]
    ray.get(m.wait_started.remote())
    ray.get(m.open_default.remote())
    assert ray.get(refs) == list(range(1001))
    peak, starts = ray.get(m.report.remote())
    assert peak["default"] == 1000
    last = next(s for s in starts if s[1] == 1000)
    assert last[3] >= 1, "the 1001st call started only after another one finished"


def peaks_once_saturated(m, refs, *openers):
    """Let the groups fill up, open their gates, and return the peak in flight per group."""
    ray.get(m.wait_started.remote())
    ray.get([opener.remote() for opener in openers])
    ray.get(refs)
    return ray.get(m.report.remote())[0]


def test_max_concurrency_sets_only_the_default_groups_limit():
    m = meter(3 + 2, max_concurrency=3)
    refs = [m.default.remote(i) for i in range(10)] + [m.io.remote(i) for i in range(5)]
    assert peaks_once_saturated(m, refs, m.open_default, m.open_io) == {"default": 3, "io": 2}


def test_concurrency_groups_given_in_options_replace_the_decorators():
    m = Meter.options(concurrency_groups={"io": 3, "compute": 1, "ctl": 1}).remote(3 + 1)
    refs = [m.io.remote(i) for i in range(6)] + [m.compute.remote(i) for i in range(3)]
    assert peaks_once_saturated(m, refs, m.open_io, m.open_compute) == {"io": 3, "compute": 1}


def test_a_saturated_group_does_not_delay_other_groups():
    m = meter(2)
    held = [m.io.remote(i) for i in range(10)]  # io full, 8 queued behind it
    ray.get(m.wait_started.remote())
    # default and compute serve calls while io stays saturated
    assert ray.get([m.ping.remote() for _ in range(10)]) == [{"io": 2}] * 10
    assert ray.get(m.compute_ping.remote()) == {"io": 2}
    assert ray.wait(held, num_returns=len(held), timeout=0)[0] == []
    ray.get(m.open_io.remote())
    assert ray.get(held) == list(range(10))


@ray.remote(concurrency_groups={"io": 1})
class Blocker:
    @ray.method(concurrency_group="io")
    def block(self, event):
        event.wait()  # blocks io's loop thread entirely
        return "unblocked"

    async def ping(self):
        return "pong"


@pytest.mark.in_process_only("a threading.Event shared with the actor")
def test_a_blocked_loop_thread_does_not_delay_other_groups():
    b = Blocker.remote()
    release = threading.Event()
    blocked = b.block.remote(release)
    assert ray.get([b.ping.remote() for _ in range(20)]) == ["pong"] * 20
    assert not blocked.done()
    release.set()
    assert ray.get(blocked) == "unblocked"
