"""ObjectRef arguments: resolved before the call runs; nested refs pass through."""

import asyncio
import threading

import pytest
from test_objectref import Gate
from test_threaded import gate as threaded_gate

import pyactors as ray
from pyactors.exceptions import TaskCancelledError, TaskError

pytestmark = pytest.mark.usefixtures("place")


@ray.remote
class Calc:
    def __init__(self):
        self.calls = 0

    async def add(self, a, b=0):
        self.calls += 1
        return a + b

    async def kinds(self, a, nested, key=None):
        return type(a).__name__, [type(x).__name__ for x in nested], type(key).__name__

    async def await_nested(self, nested):
        return [await ref for ref in nested]

    def count(self):
        return self.calls

    async def boom(self):
        raise ValueError("upstream")


@ray.remote
def square(x):
    return x * x


def test_top_level_refs_are_replaced_by_their_values_positional_and_keyword():
    c = Calc.remote()
    assert ray.get(c.add.remote(square.remote(3), b=c.add.remote(1, b=ray.put(1)))) == 11
    assert ray.get(square.remote(c.add.remote(2, 2))) == 16


def test_refs_nested_in_containers_stay_refs_and_can_be_awaited():
    c = Calc.remote()
    one = ray.put(1)
    assert ray.get(c.kinds.remote(one, [one, 2], key=one)) == ("int", ["ObjectRef", "int"], "int")
    assert ray.get(c.await_nested.remote([square.remote(2), c.add.remote(1, 2)])) == [4, 3]


def test_a_call_waiting_for_arguments_holds_no_slot_in_an_async_group():
    c, g = Calc.options(max_concurrency=1).remote(), Gate.remote()
    held = g.wait.remote(10)
    waiting = c.add.remote(held, b=1)  # waits for `held` without taking c's only slot
    assert ray.get([c.add.remote(i) for i in range(5)]) == list(range(5))
    assert not waiting.done()
    assert ray.get(c.count.remote()) == 5
    g.open.remote()
    assert ray.get(waiting) == 11


def test_a_failed_argument_fails_the_call_without_running_it():
    c = Calc.remote()
    failed = c.boom.remote()
    dependent = c.add.remote(failed, 1)
    with pytest.raises(ValueError) as info:
        ray.get(dependent)
    assert isinstance(info.value, TaskError) and "upstream" in str(info.value)
    with pytest.raises(ValueError):
        ray.get(square.remote(failed))
    assert ray.get(c.count.remote()) == 0


def test_a_late_failing_argument_fails_the_waiting_call():
    c, g = Calc.remote(), threaded_gate()

    @ray.remote
    def fail_after(value):
        raise KeyError(value)

    held = g.wait.remote("k")
    dependent = c.add.remote(fail_after.remote(held), 1)
    g.open.remote()
    with pytest.raises(KeyError):
        ray.get(dependent)
    assert ray.get(c.count.remote()) == 0


@pytest.mark.parametrize("when", ["before submission", "while the call waits"])
def test_an_argument_cancelled_through_asyncio_fails_the_call_without_running_it(when):
    c, g = Calc.remote(), Gate.remote()
    held = g.wait.remote(10)
    if when == "before submission":
        held.cancel()
    dependent = c.add.remote(held, 1)
    keyword_dependent = c.add.remote(1, b=held)
    if when == "while the call waits":
        held.cancel()
    for ref in (dependent, keyword_dependent):
        with pytest.raises(TaskCancelledError):
            ray.get(ref)
    assert ray.get(c.count.remote()) == 0
    g.open.remote()


def test_arguments_from_many_threads_and_loops_resolve_once_each():
    c = Calc.remote()
    results = []

    def submit(offset):
        refs = [c.add.remote(square.remote(i), b=offset) for i in range(50)]
        results.append(ray.get(refs) == [i * i + offset for i in range(50)])

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()

    async def from_loop():
        return await asyncio.gather(
            *[c.add.remote(ray.put(i), b=square.remote(2)) for i in range(20)]
        )

    assert asyncio.run(from_loop()) == [i + 4 for i in range(20)]
    for t in threads:
        t.join(30)
    assert results == [True] * 4
    assert ray.get(c.count.remote()) == 4 * 50 + 20


@ray.remote
def fan_out(depth):
    # Each level blocks in get() on two calls of the next: far more blocked calls than the
    # pool has threads (num_cpus), which must not deadlock.
    if depth == 0:
        return 1
    return sum(ray.get([fan_out.remote(depth - 1), fan_out.remote(depth - 1)]))


def test_remote_functions_blocked_in_get_lend_their_slot():
    assert ray.get(fan_out.remote(4), timeout=60) == 16
