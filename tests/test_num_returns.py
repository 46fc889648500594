"""num_returns=N: a call returns N refs, one per value of the sequence the body returns."""

import asyncio

import pytest
from gates import Gated

import pyactors as ray
from pyactors.exceptions import TaskCancelledError, TaskError

pytestmark = pytest.mark.usefixtures("place")


def test_rays_task_example(loop_kind):
    # Ray's doc_code/tasks.py ("Multiple returns")
    @ray.remote(num_returns=3)
    def return_multiple():
        return 0, 1, 2

    object_ref0, object_ref1, object_ref2 = return_multiple.remote()
    assert ray.get([object_ref0, object_ref1, object_ref2]) == [0, 1, 2]


@ray.remote
class Splitter(Gated):
    # Ray's actors.rst ("Multiple returns" of actor methods)
    @ray.method(num_returns=3)
    def return_multiple(self):
        return 1, 2, 3

    @ray.method(num_returns=2)
    async def two_later(self):
        await self.wait()  # until open()
        return "a", "b"

    def pair(self):
        return ["x", "y"]

    def boom(self):
        raise KeyError("boom")


def test_rays_actor_method_example(loop_kind):
    a = Splitter.remote()
    obj_ref1, obj_ref2, obj_ref3 = a.return_multiple.remote()
    assert ray.get(obj_ref1) == 1 and ray.get(obj_ref2) == 2 and ray.get(obj_ref3) == 3


def test_options_choose_the_count_per_call(loop_kind):
    a = Splitter.remote()
    assert ray.get(a.pair.options(num_returns=2).remote()) == ["x", "y"]
    assert ray.get(a.pair.remote()) == ["x", "y"]  # one ref again, holding the list
    assert a.pair.options(num_returns=0).remote() is None
    one = a.return_multiple.options(num_returns=1).remote()
    assert ray.get(one) == (1, 2, 3)


def test_a_wrong_count_fails_every_ref_with_a_clear_error(loop_kind):
    a = Splitter.remote()
    refs = a.pair.options(num_returns=3).remote()
    for ref in refs:
        with pytest.raises(ValueError, match=r"returned 2 values, but num_returns=3"):
            ray.get(ref)
    refs = a.return_multiple.options(num_returns=2).remote()
    with pytest.raises(TaskError, match="returned 3 values, but num_returns=2"):
        ray.get(refs[1])


def test_a_non_sequence_fails_every_ref(loop_kind):
    @ray.remote(num_returns=2)
    def scalar():
        return 5

    for ref in scalar.remote():
        with pytest.raises(TypeError, match=r"returned int 5, not a sequence of 2 values"):
            ray.get(ref)


def test_an_error_in_the_body_reaches_every_ref(loop_kind):
    refs = Splitter.remote().boom.options(num_returns=2).remote()
    for ref in refs:
        with pytest.raises(KeyError):
            ray.get(ref)


def test_outputs_are_refs_like_any_other(loop_kind):
    a = Splitter.remote()
    first, second = a.two_later.remote()
    assert ray.wait([first, second], timeout=0)[0] == []

    async def main():
        a.open.remote()
        return await asyncio.gather(first, second)

    assert asyncio.run(main()) == ["a", "b"]

    @ray.remote
    def join(x, y):
        return x + y

    assert ray.get(join.remote(first, second)) == "ab"  # outputs as ref arguments


def test_cancelling_one_output_cancels_the_call(loop_kind):
    a = Splitter.remote()
    first, second = a.two_later.remote()
    ray.get(a.pair.remote())  # calls start in order: two_later() has started
    assert ray.cancel(second) is True
    for ref in (first, second):
        with pytest.raises(TaskCancelledError):
            ray.get(ref, timeout=30)
