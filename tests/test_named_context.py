"""Named actors and get_runtime_context()."""

import asyncio
import gc
import threading
import weakref

import pytest

import pyactors as ray
from pyactors.exceptions import ActorNameTakenError

pytestmark = [pytest.mark.usefixtures("place"), pytest.mark.places("in-process", "process", "ray")]


@ray.remote(concurrency_groups={"io": 1})
class Service:
    def __init__(self, tag):
        self.tag = tag

    async def tag_of(self):
        return self.tag

    async def context(self):
        ctx = ray.get_runtime_context()
        return ctx.get_actor_id(), ctx.concurrency_group

    @ray.method(concurrency_group="io")
    def io_context(self):
        return ray.get_runtime_context().concurrency_group

    async def call_myself(self):
        me = ray.get_runtime_context().current_actor
        return await me.tag_of.remote(), await me.io_context.remote()


def test_get_actor_returns_a_handle_to_the_named_actor():
    a = Service.options(name="svc").remote("A")
    found = ray.get_actor("svc")
    assert found == a
    assert ray.get(found.tag_of.remote()) == "A"


def test_unknown_and_duplicate_names():
    one = Service.options(name="one").remote("A")  # kept: on Ray a named actor dies unheld
    with pytest.raises(ValueError, match=r"no live actor named 'two'.*\['one'\]"):
        ray.get_actor("two")
    with pytest.raises(ActorNameTakenError, match="'one' already exists") as info:
        Service.options(name="one").remote("B")
    assert isinstance(info.value, ValueError)
    with pytest.raises(TypeError):
        ray.get_actor(3)
    assert ray.get_actor("one") == one


def test_get_if_exists_returns_the_existing_actor():
    a = Service.options(name="shared", get_if_exists=True).remote("first")
    b = Service.options(name="shared", get_if_exists=True).remote("second")
    assert a == b and ray.get(b.tag_of.remote()) == "first"
    with pytest.raises(ValueError, match="get_if_exists=True needs a name"):
        Service.options(get_if_exists=True)


def test_the_name_is_freed_when_the_actor_dies():
    a = Service.options(name="phoenix").remote("old")
    ray.kill(a)
    with pytest.raises(ValueError, match="no live actor named 'phoenix'"):
        ray.get_actor("phoenix")
    b = Service.options(name="phoenix").remote("new")
    assert ray.get(ray.get_actor("phoenix").tag_of.remote()) == "new" and b != a


@ray.remote
class Tracked:
    def __init__(self, refs, fail=False):
        refs.append(weakref.ref(self))
        if fail:
            raise RuntimeError("init failed")

    async def ping(self):
        return "pong"

    def hold(self, started, release):
        started.set()
        release.wait(10)


@pytest.mark.in_process_only(
    "observes its actor through objects of this process (threading primitives, threads, lists)"
)
@pytest.mark.parametrize("death", ["kill", "cancel force=True", "failing __init__"])
def test_a_dead_named_actor_is_released_at_once(death):
    refs = []
    a = Tracked.options(name="gone").remote(refs, fail=death == "failing __init__")
    if death == "kill":
        ray.kill(a)
    elif death == "cancel force=True":
        started, release = threading.Event(), threading.Event()
        ref = a.hold.remote(started, release)
        assert started.wait(10)
        assert ray.cancel(ref, force=True)
        release.set()
        ray.kill(a)  # already dead: this only waits for hold() to let go of the thread
    with pytest.raises(ray.exceptions.ActorDiedError):
        ray.get(a.ping.remote())
    del a
    gc.collect()
    assert len(refs) == 1 and refs[0]() is None, "nothing keeps the instance"
    with pytest.raises(ValueError, match="no live actor named 'gone'"):
        ray.get_actor("gone")


def test_concurrent_get_if_exists_creates_one_actor():
    handles = []
    barrier = threading.Barrier(6)

    def create(i):
        barrier.wait(timeout=10)
        handles.append(Service.options(name="race", get_if_exists=True).remote(i))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(handles) == 6 and all(h == handles[0] for h in handles)


@pytest.mark.not_on_ray("the context's concurrency_group is pyactors'")
def test_runtime_context_inside_an_actor():
    a = Service.remote("A")
    actor_id, group = ray.get(a.context.remote())
    assert actor_id == a._pyactors_core.actor_id and group == "default"
    assert ray.get(a.io_context.remote()) == "io"
    assert ray.get(a.context.options(concurrency_group="io").remote())[1] == "io"
    assert ray.get(a.call_myself.remote()) == ("A", "io")


@pytest.mark.not_on_ray("the context's concurrency_group and in_actor are pyactors'")
def test_runtime_context_outside_an_actor_says_so():
    ctx = ray.get_runtime_context()
    assert ctx.get_actor_id() is None and ctx.concurrency_group is None
    assert not ctx.in_actor
    with pytest.raises(RuntimeError, match="not running in an actor"):
        _ = ctx.current_actor

    @ray.remote
    def in_function():
        return ray.get_runtime_context().get_actor_id()

    assert ray.get(in_function.remote()) is None

    async def in_loop():
        return ray.get_runtime_context().get_actor_id()

    assert asyncio.run(in_loop()) is None


def test_rays_get_or_create(loop_kind):
    # Ray's doc_code/get_or_create.py
    @ray.remote
    class Greeter:
        def __init__(self, value):
            self.value = value

        def say_hello(self):
            return self.value

    a = Greeter.options(name="g1").get_or_create("Hi Alice")
    assert ray.get(a.say_hello.remote()) == "Hi Alice"
    b = Greeter.options(name="g1").get_or_create("Hi Dave")
    assert ray.get(b.say_hello.remote()) == "Hi Alice"
    assert a == b
    with pytest.raises(ValueError, match="needs a name"):
        Greeter.options(max_concurrency=2).get_or_create("x")
