"""Long dependency chains: each call takes the previous call's ref as its argument. Whatever
ends the head - it fails, it is cancelled, its actor is killed, the interpreter exits - the end
travels down the chain without recursion, so no length can overflow the C stack."""

import asyncio

import pytest
from gates import Gated
from hostile import assert_clean_exit, run_python

import pyactors as ray
from pyactors.exceptions import ActorDiedError, TaskCancelledError, TaskError

LINKS = 50_000  # a recursive hand-over crashed the interpreter from about 30,000 links


@ray.remote
class Link(Gated):
    def __init__(self):
        self.ran = 0

    async def head(self, how):
        await self.wait()
        if how == "raise":
            raise ValueError("the head failed")
        await asyncio.Event().wait()  # ended only by cancel or kill

    async def step(self, previous):
        self.ran += 1
        return previous + 1

    def steps_run(self):
        return self.ran


def build_chain(first, actor, links):
    refs = [first]
    for _ in range(links):
        refs.append(actor.step.remote(refs[-1]))
    return refs


def assert_chain_failed(refs, error_type):
    _, not_ready = ray.wait(refs, num_returns=len(refs), timeout=60)
    assert not not_ready, f"{len(not_ready)} links never completed"
    for ref in (refs[1], refs[len(refs) // 2], refs[-1]):
        with pytest.raises(error_type):
            ray.get(ref, timeout=0)


def test_a_failing_head_fails_every_link(loop_kind):
    head_actor, links = Link.remote(), Link.remote()
    refs = build_chain(head_actor.head.remote("raise"), links, LINKS)
    assert ray.stats(links)["default"]["waiting_for_arguments"] == LINKS
    head_actor.open.remote()
    assert_chain_failed(refs, ValueError)
    with pytest.raises(TaskError, match="the head failed"):
        ray.get(refs[-1])
    assert ray.get(links.steps_run.remote()) == 0  # a failed argument fails the call unrun
    stats = ray.stats(links)["default"]
    assert stats["failed"] == LINKS and stats["waiting_for_arguments"] == 0, stats


@pytest.mark.parametrize("cancel", ["ray.cancel", "ref.cancel"])
def test_a_cancelled_head_cancels_every_link(loop_kind, cancel):
    head_actor, links = Link.remote(), Link.remote()
    head = head_actor.head.remote("hang")
    refs = build_chain(head, links, LINKS)
    head_actor.open.remote()
    if cancel == "ray.cancel":
        assert ray.cancel(head)
    else:
        assert head.cancel()
    assert_chain_failed(refs, TaskCancelledError)
    assert ray.get(links.steps_run.remote()) == 0


def test_killing_the_head_actor_fails_every_link(loop_kind):
    head_actor, links = Link.remote(), Link.remote()
    refs = build_chain(head_actor.head.remote("hang"), links, LINKS)
    ray.kill(head_actor)
    assert_chain_failed(refs, ActorDiedError)


def test_killing_the_actor_that_holds_the_chain(loop_kind):
    """The head and every link are calls of one actor: its death fails them all, and each
    failure also releases the next link."""
    actor = Link.remote()
    refs = build_chain(actor.head.remote("hang"), actor, LINKS)
    ray.kill(actor)
    assert_chain_failed(refs, ActorDiedError)


def test_a_long_chain_that_succeeds(loop_kind):
    actor = Link.remote()
    refs = build_chain(ray.put(0), actor, 100_000)
    assert ray.get(refs[-1], timeout=60) == 100_000


def test_interpreter_exit_with_a_long_pipeline_in_flight(loop_kind):
    """The script ends while a pipeline of remote functions waits on an actor's call that never
    ends: shutdown at exit stops actors before remote functions, so the head fails first and
    its failure travels down all 50,000 links; the interpreter exits cleanly."""
    result = run_python(
        """
        import asyncio, sys
        import pyactors as ray

        @ray.remote
        class Source:
            async def head(self):
                await asyncio.Event().wait()

        @ray.remote
        async def step(previous):
            return previous + 1

        ray.init(loop=sys.argv[1])
        ref = Source.remote().head.remote()
        for _ in range(50_000):
            ref = step.remote(ref)
        print("built", flush=True)
    """,
        loop_kind,
    )
    assert_clean_exit(result)
    assert result.stdout.strip() == "built"
