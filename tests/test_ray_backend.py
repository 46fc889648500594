"""The Ray backend: choosing it, what crosses to Ray, Ray's errors caught as pyactors', the
pyactors-only API's answers there, programs switched by the environment, several nodes, and
pyactors actors hosted inside a Ray actor. (The semantic suites whose places include "ray"
run there too.)"""

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pyactors
from pyactors import exceptions

pytestmark = [pytest.mark.usefixtures("place"), pytest.mark.places("ray")]

EXAMPLES = Path(__file__).parent.parent / "examples"


def run_python(code_or_path, env=None, timeout=120):
    """Run a program in a fresh interpreter; its stdout."""
    args = [str(code_or_path)] if isinstance(code_or_path, Path) else ["-c", code_or_path]
    out = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,  # the assert shows stderr
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def session_address():
    import ray

    return ray.get_runtime_context().gcs_address


@pyactors.remote
class Box:
    def __init__(self, value=None):
        self.value = value

    def get(self):
        return self.value

    def fail(self, error):
        raise error

    async def sleep(self, seconds):
        await asyncio.sleep(seconds)
        return seconds

    def where(self):
        import ray

        return os.getpid(), type(self.value).__module__, ray.get_runtime_context().get_actor_id()

    def make_box(self, value):
        # A nested creation: the worker's pyactors runs on Ray too (PYACTORS_BACKEND=ray
        # reaches every worker), so the handle can go back to the driver.
        return Box.remote(value)


@pyactors.remote(num_cpus=2)
def assigned_cpus():
    return pyactors.get_runtime_context().get_assigned_resources().get("CPU")


def test_actors_and_functions_are_ray_actors_and_tasks_in_their_own_processes():
    import ray

    box = Box.remote([1])
    assert isinstance(box, ray.actor.ActorHandle)
    pid, _, actor_id = pyactors.get(box.where.remote())
    assert pid != os.getpid() and actor_id == box._actor_id.hex()
    ref = assigned_cpus.remote()
    assert isinstance(ref, ray.ObjectRef)
    # Ray's scheduling options, ignored in one process, take effect here
    assert pyactors.get(ref) == 2.0
    assert pyactors.get(assigned_cpus.options(num_cpus=1).remote()) == 1.0
    assert isinstance(pyactors.put(3), ray.ObjectRef)


def test_a_worker_that_creates_an_actor_creates_it_on_ray():
    import ray

    # Kept: on Ray an actor created inside another is owned by its worker, and dies with it
    # (the outer one ends when its last handle goes).
    outer = Box.remote()
    inner = pyactors.get(outer.make_box.remote("inner"))
    assert isinstance(inner, ray.actor.ActorHandle)
    assert pyactors.get(inner.get.remote()) == "inner"


def test_rays_errors_are_caught_as_pyactors_errors_from_get_and_await():
    import ray

    from pyactors._ray.errors import adopt

    assert adopt(ray.exceptions) == []  # every counterpart took (already, at init)
    box = Box.remote()
    with pytest.raises(exceptions.TaskError) as info:
        pyactors.get(box.fail.remote(KeyError("k")))
    assert isinstance(info.value, KeyError)  # Ray's dual type, kept
    assert "ray::Box.fail()" in str(info.value)  # Ray's own message, not overridden
    sleeping = box.sleep.remote(60)
    with pytest.raises(exceptions.GetTimeoutError):
        pyactors.get(sleeping, timeout=0.05)
    # Ray's kill lands asynchronously: a call made right after it may still run on the live
    # actor. The sleeping call fails only once the actor is dead; calls after that must too.
    pyactors.kill(box)
    with pytest.raises(exceptions.ActorDiedError):
        pyactors.get(sleeping, timeout=50)
    with pytest.raises(exceptions.ActorDiedError):
        pyactors.get(box.get.remote())

    async def awaited():
        with pytest.raises(exceptions.ActorDiedError):
            await box.get.remote()
        with pytest.raises(exceptions.PyActorsError):
            await Box.remote().fail.remote(ValueError("v"))

    asyncio.run(awaited())


def test_cancel_reaches_ray():
    box = Box.remote()
    ref = box.sleep.remote(30)
    pyactors.cancel(ref)
    with pytest.raises(exceptions.TaskCancelledError):
        pyactors.get(ref, timeout=20)


def test_pyactors_only_calls_on_a_ray_actor_say_so():
    box = Box.remote()
    with pytest.raises(RuntimeError, match=r"pyactors-only.*on Ray"):
        pyactors.stats(box)
    with pytest.raises(RuntimeError, match=r"pyactors-only.*on Ray"):
        pyactors.set_concurrency(box, "default", 2)


def test_bad_input_fails_as_on_the_local_backend_before_reaching_ray():
    box = Box.remote()
    with pytest.raises(TypeError, match="timeout must be None or a number"):
        pyactors.get(box.get.remote(), timeout="1")
    with pytest.raises(ValueError, match="num_returns must be between 1 and len"):
        pyactors.wait([box.get.remote()], num_returns=2)
    with pytest.raises(TypeError, match="item 1 of the list is int"):
        pyactors.get([box.get.remote(), 3])
    with pytest.raises(TypeError, match="unsupported option"):
        Box.options(max_concurency=2)
    with pytest.raises(TypeError, match=r"Box.remote\(\)"):
        Box.remote(1, 2)


def test_a_mixed_list_of_local_and_ray_refs_is_refused_by_name():
    local = pyactors._core.pending_ref()  # an in-process ref, as a hybrid program may hold
    with pytest.raises(TypeError, match="mixes pyactors' refs and Ray's"):
        pyactors.get([local, pyactors.put(2)])
    with pytest.raises(TypeError, match="item 0 of the list is int 5"):
        pyactors.wait([5, pyactors.put(2)])


def test_the_quickstart_runs_on_ray_with_the_same_groups_by_one_environment_variable():
    def groups(out):
        rows = re.findall(
            r"^(\S+)\s+(?:pyactors:AsyncIOActor\(\w+\):|AsyncIO Thread: )(\w+)"
            r"\s+#(\d+)$",
            out,
            re.M,
        )
        return {call: group for call, group, _ in rows}, "awaited from asyncio: ['f1', 'f5']" in out

    local = groups(run_python(EXAMPLES / "quickstart.py", {"PYACTORS_BACKEND": "local"}))
    on_ray = groups(
        run_python(
            EXAMPLES / "quickstart.py",
            {"PYACTORS_BACKEND": "ray", "PYACTORS_RAY_ADDRESS": session_address()},
        )
    )
    assert on_ray == local and len(local[0]) == 7 and local[1]


def test_a_ray_actor_hosts_pyactors_actors_in_its_own_process():
    out = run_python(EXAMPLES / "hybrid.py", {"RAY_ADDRESS": session_address()})
    shards = re.findall(
        r"^shard pid (\d+): cells at \[50\] after 50 rounds, run in pids "
        r"\{(\d+)\} on \['pyactors'\] threads",
        out,
        re.M,
    )
    assert len(shards) == 2 and all(shard == cells for shard, cells in shards)


def test_init_chooses_the_backend_and_names_the_option():
    with pytest.raises(RuntimeError, match="already called"):
        pyactors.init(backend="ray")
    pyactors.shutdown()
    with pytest.raises(ValueError, match="backend='ray', address='auto'"):
        pyactors.init(address="auto")
    with pytest.raises(ValueError, match="choose one of 'local', 'ray'"):
        pyactors.init(backend="spark")
    out = run_python(
        "import pyactors\ntry:\n    pyactors.init()\nexcept ValueError as e:\n    print(e)",
        {"PYACTORS_BACKEND": "Ray"},
    )
    assert "PYACTORS_BACKEND='Ray' in the environment" in out
    pyactors.init(backend="ray")


def test_importing_pyactors_imports_no_ray_even_when_ray_is_chosen():
    out = run_python(
        "import sys, pyactors\nprint('ray' in sys.modules)", {"PYACTORS_BACKEND": "ray"}
    )
    assert out.strip() == "False"


MULTI_NODE = """
import ray, pyactors
from ray.cluster_utils import Cluster

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"a": 1}})
cluster.add_node(num_cpus=2, resources={"b": 1})
cluster.wait_for_nodes()
pyactors.init(backend="ray", address=cluster.address)

@pyactors.remote
class Node:
    def node(self):
        return pyactors.get_runtime_context().get_node_id()

@pyactors.remote(resources={"b": 0.1})
def find(name):
    actor = pyactors.get_actor(name)
    return pyactors.get(actor.node.remote()), pyactors.get_runtime_context().get_node_id()

on_a = Node.options(resources={"a": 0.1}, name="on-a").remote()
on_b = Node.options(resources={"b": 0.1}).remote()
a, b = pyactors.get([on_a.node.remote(), on_b.node.remote()])
found, finder = pyactors.get(find.remote("on-a"))
print(len({a, b}), found == a, finder == b)
pyactors.shutdown()
ray.shutdown()
cluster.shutdown()
"""


def test_actors_on_two_nodes_placed_by_resources_and_found_by_name_across_them():
    out = run_python(MULTI_NODE, {"PYACTORS_BACKEND": "ray"}, timeout=180)
    assert out.split()[-3:] == ["2", "True", "True"]


@pyactors.remote
class Doubler:
    def double(self, value):
        return 2 * value

    def leave(self):
        pyactors.actor.exit_actor()


@pyactors.remote
def produce(queue, items):
    for item in items:
        queue.put(item)
    return len(items)


def test_actor_pool_queue_and_exit_actor_work_with_ray_actors():
    pool = pyactors.util.ActorPool([Doubler.remote() for _ in range(2)])
    assert list(pool.map(lambda actor, v: actor.double.remote(v), range(6))) == [0, 2, 4, 6, 8, 10]
    queue = pyactors.util.queue.Queue(maxsize=2)
    produced = produce.remote(queue, ["a", "b", "c"])  # blocks on the full queue until read
    assert [queue.get(timeout=30) for _ in range(3)] == ["a", "b", "c"]
    assert pyactors.get(produced) == 3
    queue.shutdown()
    leaving = Doubler.remote()
    with pytest.raises(exceptions.ActorDiedError):
        pyactors.get(leaving.leave.remote())


def pair():
    return 1, 2


@pyactors.remote
async def awaiting_double(value):
    await asyncio.sleep(0)
    return 2 * value


@pyactors.remote
async def counting_up_to(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i


def test_remote_functions_keep_their_own_options_whenever_they_were_given():
    one, two = pyactors.remote(pair), pyactors.remote(num_returns=2)(pair)
    assert pyactors.get(one.remote()) == (1, 2)
    assert pyactors.get(list(two.remote())) == [1, 2]  # not the first wrapper's options
    pyactors.shutdown()
    taken_before = one.options(num_returns=2)  # a module-level .options(), before init()
    pyactors.init(backend="ray")
    assert pyactors.get(list(taken_before.remote())) == [1, 2]
    # an async def or async generator, which Ray refuses as tasks, run as they do locally
    assert pyactors.get(awaiting_double.remote(21)) == 42
    assert [pyactors.get(ref) for ref in counting_up_to.remote(3)] == [0, 1, 2]


def test_joining_a_running_ray_with_options_says_they_are_ignored():
    pyactors.shutdown()
    with pytest.warns(RuntimeWarning, match=r"already running.*ignored: \['num_cpus'\]"):
        pyactors.init(backend="ray", num_cpus=8)
