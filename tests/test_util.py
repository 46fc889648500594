"""pyactors.util: Ray's ActorPool and actor-backed Queue, starting with Ray's own documented
examples (`import ray` -> `import pyactors as ray`)."""

import asyncio
import queue as stdlib_queue
import threading

import pytest

import pyactors as ray
from pyactors.exceptions import ActorDiedError, GetTimeoutError
from pyactors.util import ActorPool
from pyactors.util.queue import Empty, Full, Queue


@ray.remote
class Actor:
    def double(self, n):
        return n * 2


def test_rays_actor_pool_example(loop_kind):
    # Ray's doc_code/actor-pool.py
    a1, a2 = Actor.remote(), Actor.remote()
    pool = ActorPool([a1, a2])
    gen = pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4])
    assert list(gen) == [2, 4, 6, 8]
    assert ray.util.ActorPool is ActorPool


@ray.remote
class Worker:
    def __init__(self):
        self.calls = 0
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def work(self, value, release=None):
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        if release is not None:
            release.wait(30)
        with self.lock:
            self.running -= 1
        if value == "boom":
            raise ValueError("boom")
        return value

    def seen(self):
        return self.calls, self.most


def test_each_actor_runs_one_value_at_a_time_and_results_keep_their_order(loop_kind):
    actors = [Worker.remote() for _ in range(3)]
    pool = ActorPool(actors)
    values = list(range(30))
    assert list(pool.map(lambda a, v: a.work.remote(v), values)) == values
    seen = ray.get([a.seen.remote() for a in actors])
    assert sum(calls for calls, _ in seen) == 30
    assert all(most == 1 for _, most in seen), seen  # the pool never doubled up an actor
    assert sorted(pool.map_unordered(lambda a, v: a.work.remote(v), values)) == values


def test_submit_waits_for_a_free_actor_and_get_next_unordered_returns_the_first_done(loop_kind):
    worker = Worker.remote()
    pool = ActorPool([worker])
    release = threading.Event()
    pool.submit(lambda a, v: a.work.remote(v, release), "slow")
    pool.submit(lambda a, v: a.work.remote(v), "queued")  # no free actor: waits in the pool
    assert not pool.has_free() and pool.pop_idle() is None
    with pytest.raises(GetTimeoutError):
        pool.get_next(timeout=0.01)
    assert isinstance(GetTimeoutError(), TimeoutError)
    release.set()
    assert pool.get_next() == "slow"
    assert pool.get_next_unordered() == "queued"
    assert not pool.has_next()
    with pytest.raises(StopIteration):
        pool.get_next()
    assert pool.has_free() and pool.pop_idle() == worker
    assert not pool.has_free()
    pool.push(worker)
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(worker)


def test_a_failing_call_raises_from_get_next_and_its_actor_stays_in_the_pool(loop_kind):
    pool = ActorPool([Worker.remote()])
    pool.submit(lambda a, v: a.work.remote(v), "boom")
    with pytest.raises(ValueError, match="boom"):
        pool.get_next()
    assert pool.has_free()
    assert list(pool.map(lambda a, v: a.work.remote(v), [1, 2])) == [1, 2]


def test_a_dead_actor_leaves_the_pool(loop_kind):
    dead, alive = Worker.remote(), Worker.remote()
    ray.kill(dead)
    pool = ActorPool([alive, dead])  # pop() takes the last: the dead actor first
    pool.submit(lambda a, v: a.work.remote(v), 1)
    with pytest.raises(ActorDiedError):
        pool.get_next()
    assert list(pool.map(lambda a, v: a.work.remote(v), [1, 2, 3])) == [1, 2, 3]
    assert pool.pop_idle() == alive and pool.pop_idle() is None


def test_ignore_if_timedout_skips_the_late_result(loop_kind):
    pool = ActorPool([Worker.remote(), Worker.remote()])
    release = threading.Event()
    pool.submit(lambda a, v: a.work.remote(v, release), "late")
    pool.submit(lambda a, v: a.work.remote(v), "quick")
    with pytest.raises(TimeoutError):
        pool.get_next(timeout=0.01, ignore_if_timedout=True)
    assert pool.get_next() == "quick"
    release.set()


def test_bad_input_to_the_pool(loop_kind):
    with pytest.raises(TypeError, match="takes actor handles"):
        ActorPool([1])
    pool = ActorPool([Worker.remote()])
    with pytest.raises(TypeError, match="must return the ObjectRef of a call"):
        pool.submit(lambda a, v: v, 1)
    assert pool.has_free()  # the actor was not lost


# -- Queue -------------------------------------------------------------------------------------


def test_rays_queue_example(loop_kind):
    # Ray's doc_code/actor-queue.py, with the consumers' prints kept as results.
    queue = Queue(maxsize=100)

    @ray.remote
    def consumer(id, queue):
        got = []
        try:
            while True:
                got.append(queue.get(block=True, timeout=1))
        except Empty:
            pass
        return got

    [queue.put(i) for i in range(10)]
    consumers = [consumer.remote(id, queue) for id in range(2)]
    got = ray.get(consumers)
    assert sorted(got[0] + got[1]) == list(range(10))
    queue.shutdown()


def test_put_and_get_block_and_time_out(loop_kind):
    q = Queue(maxsize=2)
    assert q.empty() and not q.full() and len(q) == 0
    q.put("a")
    q.put_nowait("b")
    assert q.full() and q.qsize() == 2
    with pytest.raises(Full):
        q.put_nowait("c")
    with pytest.raises(stdlib_queue.Full):  # a queue.Full too
        q.put("c", timeout=0.01)
    assert q.get() == "a" and q.get_nowait() == "b"
    with pytest.raises(Empty):
        q.get_nowait()
    with pytest.raises(stdlib_queue.Empty):
        q.get(timeout=0.01)
    # A blocked get() returns as soon as another thread puts.
    got = []
    reader = threading.Thread(target=lambda: got.append(q.get(timeout=30)))
    reader.start()
    q.put("late")
    reader.join(30)
    assert got == ["late"]
    with pytest.raises(ValueError, match="non-negative"):
        q.get(timeout=-1)
    q.shutdown()


def test_batches_are_all_or_nothing(loop_kind):
    q = Queue(maxsize=3)
    q.put_nowait_batch([1, 2])
    with pytest.raises(Full):
        q.put_nowait_batch([3, 4])
    assert q.qsize() == 2
    with pytest.raises(Empty):
        q.get_nowait_batch(3)
    assert q.get_nowait_batch(2) == [1, 2]
    with pytest.raises(TypeError):
        q.put_nowait_batch(5)
    with pytest.raises(ValueError):
        q.get_nowait_batch(-1)
    q.shutdown()


def test_async_put_and_get(loop_kind):
    q = Queue()

    async def main():
        await q.put_async(1)
        await q.put_async(2)
        got = [await q.get_async(), await q.get_async(timeout=5)]
        with pytest.raises(Empty):
            await q.get_async(block=False)
        with pytest.raises(Empty):
            await q.get_async(timeout=0.01)
        return got

    assert asyncio.run(main()) == [1, 2]
    q.shutdown()


def test_a_queue_shared_by_an_actor_producer_and_consumers(loop_kind):
    q = Queue(maxsize=5)  # smaller than the work: the producer waits for room

    @ray.remote
    class Producer:
        def produce(self, queue, n):
            for i in range(n):
                queue.put(i, timeout=30)
            return n

    @ray.remote
    def consume(queue, n):
        return [queue.get(timeout=30) for _ in range(n)]

    produced = Producer.remote().produce.remote(q, 40)
    consumed = [consume.remote(q, 20) for _ in range(2)]
    assert ray.get(produced) == 40
    items = ray.get(consumed)
    assert sorted(items[0] + items[1]) == list(range(40))
    for part in items:
        assert part == sorted(part)  # each consumer sees the producer's order
    q.shutdown()


def test_shutdown_fails_what_still_waits_and_ends_the_actor(loop_kind):
    q = Queue()
    waiting = q.actor.get.remote(None)  # a get() that nothing will satisfy
    q.shutdown(grace_period_s=0.01)
    with pytest.raises(ActorDiedError):
        ray.get(waiting, timeout=30)
    with pytest.raises(RuntimeError, match="shut down"):
        q.put(1)
    q.shutdown()  # again: nothing to do
