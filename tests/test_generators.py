"""Generator methods and remote functions: refs streamed as the body yields, the body running
on the actor's group like any call - in this process and in worker processes alike. Ray's
documented examples first (doc_code/streaming_generator.py, with its sleeps shortened)."""

import asyncio
import threading
import time

import pytest
from gates import Gated

import pyactors as ray
from pyactors import DynamicObjectRefGenerator, ObjectRefGenerator
from pyactors.exceptions import TaskCancelledError

pytestmark = pytest.mark.usefixtures("place")

# -- Ray's examples ------------------------------------------------------------------------------


@ray.remote
def task():
    for i in range(5):
        time.sleep(0.001)
        yield i


def test_rays_streaming_example(loop_kind):
    gen = task.remote()
    assert isinstance(gen, ObjectRefGenerator)
    ref = next(gen)
    assert ray.get(ref) == 0
    ref = next(gen)
    assert ray.get(ref) == 1
    assert [ray.get(ref) for ref in gen] == [2, 3, 4]


def test_rays_exception_example(loop_kind):
    @ray.remote
    def failing():
        for i in range(5):
            if i == 1:
                raise ValueError
            yield i

    gen = failing.remote()
    assert ray.get(next(gen)) == 0
    with pytest.raises(ValueError):
        ray.get(next(gen))
    with pytest.raises(StopIteration):
        next(gen)


@ray.remote
class Actor:
    def f(self):
        yield from range(5)


@ray.remote
class AsyncActor:
    async def f(self):
        for i in range(5):
            yield i


@ray.remote(max_concurrency=5)
class ThreadedActor:
    def f(self):
        yield from range(5)


@pytest.mark.parametrize("actor_class", [Actor, AsyncActor, ThreadedActor])
def test_rays_actor_example(loop_kind, actor_class):
    actor = actor_class.remote()
    assert [ray.get(ref) for ref in actor.f.remote()] == [0, 1, 2, 3, 4]


def test_rays_asyncio_example(loop_kind):
    async def main():
        return [await ref async for ref in task.remote()]

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]

    async def two_at_once():
        async def one():
            return [await ref async for ref in task.remote()]

        return await asyncio.gather(one(), one())

    assert asyncio.run(two_at_once()) == [[0, 1, 2, 3, 4]] * 2


@ray.remote
class Gate(Gated):
    pass


def test_rays_wait_examples(loop_kind):
    # Ray's example sleeps before each yield; here the body waits for a gate the test opens.
    gates = [Gate.remote(), Gate.remote()]

    @ray.remote
    def gated(gates):
        for i, gate in enumerate(gates):
            ray.get(gate.wait.remote())
            yield i

    gen = gated.remote(gates)
    ready, unready = ray.wait([gen], timeout=0)
    assert ready == [] and unready == [gen]
    gates[0].open.remote()
    ready, unready = ray.wait([gen])
    assert ready == [gen] and unready == []
    assert ray.get(next(gen)) == 0
    assert ray.wait([gen], timeout=0) == ([], [gen])  # the second yield has not happened
    gates[1].open.remote()
    # The complex example: a generator and a plain ref waited for together.
    unready, result = [gen, ray.put("plain")], []
    while unready:
        ready, unready = ray.wait(unready)
        for r in ready:
            if isinstance(r, ObjectRefGenerator):
                try:
                    result.append(ray.get(next(r)))
                except StopIteration:
                    pass
                else:
                    unready.append(r)
            else:
                result.append(ray.get(r))
    assert sorted(result, key=str) == [1, "plain"]


# -- where and when the body runs ---------------------------------------------------------------


@ray.remote(concurrency_groups={"io": 1})
class Streamer(Gated):
    def __init__(self):
        self.produced = []
        self.ended = asyncio.Event()  # set on the default group's loop, where both run

    @ray.method(concurrency_group="io")
    def where(self, n):
        for _ in range(n):
            yield threading.current_thread().name, ray.get_runtime_context().concurrency_group

    async def first_then_wait(self):
        yield "first"
        await self.wait()  # until open()
        yield "second"

    @ray.method(_generator_backpressure_num_objects=2)
    async def many(self, n):
        try:
            for i in range(n):
                self.produced.append(i)
                yield i
        finally:
            self.ended.set()

    async def forever(self):
        try:
            while True:
                self.produced.append(len(self.produced))
                yield len(self.produced)
                await asyncio.sleep(0)
        finally:
            self.ended.set()

    def count(self):
        return len(self.produced)

    async def has_ended(self):
        """Waits for the generator's body to end (its finally may run after its last value
        reached the caller)."""
        await asyncio.wait_for(self.ended.wait(), 30)
        return True

    @ray.method(concurrency_group="io")
    def echo(self, value):
        return value


def test_the_body_runs_on_the_actors_group_thread(loop_kind):
    actor = Streamer.remote()
    items = [ray.get(ref) for ref in actor.where.remote(3)]
    names = {name for name, _ in items}
    assert len(names) == 1 and names.pop().endswith(":io")
    assert {group for _, group in items} == {"io"}


def test_each_item_is_ready_as_soon_as_it_is_yielded(loop_kind):
    actor = Streamer.remote()
    gen = actor.first_then_wait.remote()
    assert ray.get(next(gen), timeout=30) == "first"  # while the body still waits
    assert not gen.next_ready() and not gen.is_finished()
    actor.open.remote()
    assert ray.get(next(gen), timeout=30) == "second"
    with pytest.raises(StopIteration):
        next(gen)
    assert gen.is_finished()
    assert ray.get(gen.completed()) is None


def test_backpressure_bounds_the_unconsumed_items(loop_kind, place):
    actor = Streamer.remote()
    gen = actor.many.remote(20)
    # In a worker process the body may run one value ahead: it waits in the worker's stream.
    ahead = 1 if place == "process" else 0
    for consumed in range(20):
        ref = next(gen)
        produced = ray.get(actor.count.remote())
        assert produced <= consumed + 1 + 2 + ahead, (consumed, produced)
        assert ray.get(ref) == consumed
    assert ray.get(actor.has_ended.remote())


@ray.remote(concurrency_groups={"control": 1})
class Released:
    """A threaded actor whose generators wait for release(), called in another group."""

    def __init__(self):
        self.released = threading.Event()

    @ray.method(concurrency_group="control")
    def release(self):
        self.released.set()

    def slow(self):
        yield "started"
        self.released.wait(30)
        yield "done"

    def after(self):
        return "after"

    def values(self):
        yield 0
        self.released.wait(30)
        yield 1
        yield 2


def test_a_generator_call_holds_its_slot_until_the_body_ends(loop_kind):
    actor = Released.remote()  # one slot in its default group
    gen = actor.slow.remote()
    assert ray.get(next(gen), timeout=30) == "started"
    later = actor.after.remote()
    assert ray.wait([later], timeout=0.05)[0] == []  # queued behind the generator
    assert ray.stats(actor)["default"]["running"] == 1
    actor.release.remote()
    assert [ray.get(r) for r in gen] == ["done"]
    assert ray.get(later, timeout=30) == "after"


def test_cancel_stops_the_body(loop_kind):
    actor = Streamer.remote()
    gen = actor.forever.remote()
    assert ray.get(next(gen), timeout=30) == 1
    assert ray.cancel(gen) is True
    refs = list(gen)  # ends: the last ref says why
    with pytest.raises(TaskCancelledError):
        ray.get(refs[-1], timeout=30)
    assert ray.get(actor.has_ended.remote(), timeout=30)


def test_cancel_stops_a_plain_body_between_two_values(loop_kind):
    actor = Released.remote()
    gen = actor.values.remote()
    assert ray.get(next(gen), timeout=30) == 0  # the body runs on, until it is released
    assert ray.cancel(gen) is True
    actor.release.remote()
    rest = list(gen)
    with pytest.raises(TaskCancelledError):
        ray.get(rest[-1], timeout=30)
    assert len(rest) <= 2  # it stopped after at most the value it was yielding


def test_dropping_the_generator_stops_a_body_waiting_for_room(loop_kind):
    actor = Streamer.remote()
    gen = actor.many.remote(1000)
    ray.get(next(gen))
    del gen  # nobody can read the rest: the body must not hold its slot forever
    assert ray.get(actor.echo.remote("io is free"), timeout=30) == "io is free"
    assert ray.get(actor.has_ended.remote(), timeout=60)
    assert ray.get(actor.count.remote()) < 1000


def test_num_returns_dynamic_and_n(loop_kind):
    actor = Actor.remote()
    ref = actor.f.options(num_returns="dynamic").remote()
    dynamic = ray.get(ref)
    assert isinstance(dynamic, DynamicObjectRefGenerator)
    assert [ray.get(r) for r in dynamic] == [0, 1, 2, 3, 4]
    assert ray.get(actor.f.options(num_returns=5).remote()) == [0, 1, 2, 3, 4]

    @ray.remote(num_returns="dynamic")
    def dynamic_task(n):
        for i in range(n):
            yield i * 10

    assert [ray.get(r) for r in ray.get(dynamic_task.remote(3))] == [0, 10, 20]


def test_bad_input_names_the_fix(loop_kind):
    with pytest.raises(TypeError, match="iterate it"):
        ray.get(task.remote())
    with pytest.raises(ValueError, match="only a generator method"):

        @ray.remote
        class NotAGenerator:
            @ray.method(num_returns="streaming")
            def f(self):
                return 1

    with pytest.raises(ValueError, match="is not a generator"):
        Actor.remote().f.options()  # fine
        AsyncActor.remote()  # fine
        ray.remote(lambda: 1).options(_generator_backpressure_num_objects=1)


@ray.remote
def fails_after_two():
    yield from range(2)
    raise Exception("error")


def test_an_exception_after_some_values_keeps_them_as_ray_documents(loop_kind):
    """Ray's dynamic_generators.rst: "the values that it already stored will still be
    accessible through their ObjectRefs. The remaining ObjectRefs will contain the raised
    exception. ... with num_returns="dynamic", the exception will be stored as an additional
    final ObjectRef." (doc_code/generator.py)"""
    refs = fails_after_two.options(num_returns=4).remote()
    assert [ray.get(ref) for ref in refs[:2]] == [0, 1]
    for ref in refs[2:]:
        with pytest.raises(Exception, match="error"):
            ray.get(ref)
    dynamic = list(ray.get(fails_after_two.options(num_returns="dynamic").remote()))
    assert len(dynamic) == 3 and ray.get(dynamic[:2]) == [0, 1]
    with pytest.raises(Exception, match="error"):
        ray.get(dynamic[2])
    first, second = fails_after_two.options(num_returns=2).remote()
    assert ray.get([first, second]) == [0, 1]  # the exception comes after both


def test_rays_raylet_import_path(loop_kind):
    from pyactors._raylet import ObjectRefGenerator as FromRaylet

    assert FromRaylet is ObjectRefGenerator
