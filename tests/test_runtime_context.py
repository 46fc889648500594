"""get_runtime_context(): the ids Ray's programs read, observed inside the call."""

import asyncio

import pytest

import pyactors as ray

pytestmark = pytest.mark.usefixtures("place")


@ray.remote
class Reporter:
    def __init__(self):
        self.init_task = ray.get_runtime_context().get_task_id()

    def plain(self):
        return self._report()

    async def awaits(self):
        await asyncio.sleep(0)
        return self._report()

    async def no_await(self):
        return self._report()

    def init_task_id(self):
        return self.init_task

    def _report(self):
        context = ray.get_runtime_context()
        return {
            "task": context.get_task_id(),
            "actor": context.get_actor_id(),
            "name": context.get_actor_name(),
            "canceled": context.is_canceled(),
            "job": context.get_job_id(),
            "node": context.get_node_id(),
            "worker": context.get_worker_id(),
            "reconstructed": context.was_current_actor_reconstructed,
        }


@ray.remote
def function_task_id():
    return ray.get_runtime_context().get_task_id()


@pytest.mark.parametrize("method", ["plain", "awaits", "no_await"])
def test_ids_inside_an_actor_call(loop_kind, place, method):
    actor = Reporter.options(name="reporter").remote()
    ref = getattr(actor, method).remote()
    report = ray.get(ref)
    driver = ray.get_runtime_context()
    assert report["task"] == ref.hex()  # the task id is the call's own
    assert report["actor"] == actor._pyactors_core.actor_id
    assert report["name"] == "reporter"
    assert report["canceled"] is False
    assert report["job"] == driver.get_job_id()
    assert report["node"] == driver.get_node_id() and len(report["node"]) == 56
    # One worker per process: the driver's in one, a process actor's own otherwise.
    assert (report["worker"] == driver.get_worker_id()) is (place == "in-process")
    assert report["reconstructed"] is False


def test_ids_of_init_functions_and_the_driver(loop_kind):
    actor = Reporter.remote()
    init_task = ray.get(actor.init_task_id.remote())
    assert init_task is not None and init_task != ray.get(actor.plain.remote())["task"]
    assert ray.get(actor.plain.remote())["name"] is None  # an unnamed actor
    ref = function_task_id.remote()
    assert ray.get(ref) == ref.hex()
    driver = ray.get_runtime_context()
    assert driver.get_task_id() is None and driver.get_actor_id() is None
    with pytest.raises(RuntimeError, match="only meaningful inside a call"):
        driver.is_canceled()


def test_a_new_runtime_is_a_new_job(loop_kind):
    first = ray.get_runtime_context().get_job_id()
    node = ray.get_runtime_context().get_node_id()
    ray.shutdown()
    ray.init(loop=loop_kind)
    assert ray.get_runtime_context().get_job_id() != first
    assert ray.get_runtime_context().get_node_id() == node  # the same process: the same node
