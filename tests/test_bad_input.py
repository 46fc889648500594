"""Bad input gets a clear error in the caller that names the problem and the fix, and loses
nothing already submitted."""

import asyncio

import pytest

import pyactors as ray
from test_objectref import Echo


@pytest.mark.parametrize("groups, error, match", [
    ({"default": 2}, ValueError, "'default' is a reserved group name"),
    ({"": 2}, ValueError, "non-empty"),
    ({3: 2}, TypeError, "name must be a str, got int 3"),
    ({"io": 0}, ValueError, r"concurrency_groups\['io'\] must be a positive int.*0"),
    ({"io": -1}, ValueError, "-1"),
    ({"io": 1.5}, TypeError, "float 1.5"),
    ({"io": True}, TypeError, "bool True"),
    ({"io": "2"}, TypeError, "str '2'"),
    (["io"], TypeError, "must be a dict"),
])
def test_bad_concurrency_groups_fail_at_decoration_and_in_options(groups, error, match):
    with pytest.raises(error, match=match):
        @ray.remote(concurrency_groups=groups)
        class A:
            async def f(self):
                pass
    with pytest.raises(error, match=match):
        Echo.options(concurrency_groups=groups)


@pytest.mark.parametrize("value, error", [(0, ValueError), (-5, ValueError),
                                          (2.0, TypeError), ("10", TypeError)])
def test_bad_max_concurrency(value, error):
    with pytest.raises(error, match=f"max_concurrency must be a positive int.*{value!r}"):
        Echo.options(max_concurrency=value)
    with pytest.raises(error, match="max_concurrency"):
        ray.remote(max_concurrency=value)(type("A", (), {}))


@pytest.mark.parametrize("name, error", [("", ValueError), (7, TypeError)])
def test_bad_group_name_in_method(name, error):
    with pytest.raises(error, match="concurrency group name"):
        ray.method(concurrency_group=name)


@ray.remote(concurrency_groups={"io": 1})
class Declares:
    @ray.method(concurrency_group="compute")  # not defined by the decorator
    async def f(self):
        return "ran in compute"

    @ray.method(concurrency_group="io")
    async def g(self):
        return "io"


def test_a_method_group_the_actor_does_not_define_fails_in_the_caller():
    with pytest.raises(ValueError, match=r"Declares.f .*'compute'.*\['default', 'io'\]"):
        Declares.remote()
    with pytest.raises(ValueError, match="'compute'"):
        Declares.options(concurrency_groups={"io": 2})
    # defining it through options() fixes it
    a = Declares.options(concurrency_groups={"io": 1, "compute": 2}).remote()
    assert ray.get(a.f.remote()) == "ran in compute"


def test_an_unknown_call_time_group_fails_in_the_caller_and_loses_nothing():
    e = Echo.remote()
    submitted = [e.echo.remote(i) for i in range(10)]
    with pytest.raises(ValueError, match=r"no concurrency group 'gpu'.*\['default', 'io'\]"):
        e.echo.options(concurrency_group="gpu")
    with pytest.raises(TypeError, match="concurrency_group must be a str"):
        e.echo.options(concurrency_group=1)
    assert ray.get(submitted) == list(range(10))


def test_calling_a_method_directly_says_to_use_remote():
    e = Echo.remote()
    with pytest.raises(TypeError, match=r"Echo.echo\(\) cannot be called directly: use "
                                        r"Echo.echo.remote\(...\)"):
        e.echo(1)
    with pytest.raises(AttributeError, match=r"Echo has no method 'nope'.*'echo'"):
        e.nope.remote()


def test_instantiating_a_remote_class_or_calling_a_remote_function_says_to_use_remote():
    with pytest.raises(TypeError, match=r"use Echo.remote\(...\)"):
        Echo()

    @ray.remote
    def f():
        return 1

    with pytest.raises(TypeError, match=r"f.remote\(...\)"):
        f()


def test_bad_constructor_arguments_fail_in_the_caller():
    with pytest.raises(TypeError, match=r"Echo.remote\(\): .*argument"):
        Echo.remote(1, 2)


@pytest.mark.parametrize("bad", [1, "ref", None, (ray.put(1),), {ray.put(1)}])
def test_get_and_wait_take_only_refs(bad):
    with pytest.raises(TypeError, match="takes an ObjectRef or a list of ObjectRefs"):
        ray.get(bad)
    with pytest.raises(TypeError, match="list of ObjectRefs"):
        ray.wait(bad)


def test_a_non_ref_inside_a_list_is_named():
    with pytest.raises(TypeError, match="item 1 of the list is int 5"):
        ray.get([ray.put(1), 5])
    with pytest.raises(TypeError, match="item 0 of the list is str 'x'"):
        ray.wait(["x"])


def test_wait_on_a_single_ref_says_to_pass_a_list():
    with pytest.raises(TypeError, match=r"not a single ObjectRef: use wait\(\[ref\]\)"):
        ray.wait(ray.put(1))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"num_returns": 0}, ValueError, "between 1 and len"),
    ({"num_returns": 3}, ValueError, "between 1 and len"),
    ({"num_returns": 1.0}, TypeError, "num_returns must be an int"),
    ({"timeout": -1}, ValueError, "timeout must be >= 0"),
    ({"timeout": "1"}, TypeError, "timeout must be None or a number"),
])
def test_bad_wait_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ray.wait([ray.put(1), ray.put(2)], **kwargs)


def test_wait_rejects_duplicates_and_get_rejects_bad_timeouts():
    ref = ray.put(1)
    with pytest.raises(ValueError, match="duplicates"):
        ray.wait([ref, ref])
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        ray.get(ref, timeout=-0.5)
    with pytest.raises(TypeError, match="put\\(\\) of an ObjectRef"):
        ray.put(ref)


@ray.remote(concurrency_groups={"io": 1})
class BlocksInside:
    # Refs arrive nested in a list: top-level ref arguments would be resolved to values.
    async def get_inside(self, refs):
        return ray.get(refs[0])

    @ray.method(concurrency_group="io")
    def sync_get_inside(self, refs):
        return ray.get(refs[0])

    async def poll_inside(self, refs):
        return ray.get(refs[0], timeout=0), ray.wait(refs, timeout=0)[0] == refs

    async def wait_inside(self, refs):
        return ray.wait(refs)

    async def still_serving(self):
        await asyncio.sleep(0)
        return "ok"


def test_blocking_get_on_a_group_loop_thread_raises_instead_of_deadlocking():
    a = BlocksInside.remote()
    ref = ray.put(1)
    for call in (a.get_inside, a.sync_get_inside):
        with pytest.raises(RuntimeError, match=r"get\(\) would block an event loop.*await ref"):
            ray.get(call.remote([ref]))
    with pytest.raises(RuntimeError, match=r"wait\(\) would block"):
        ray.get(a.wait_inside.remote([ref]))
    assert ray.get(a.poll_inside.remote([ref])) == (1, True)  # timeout=0 polls
    assert ray.get(a.still_serving.remote()) == "ok"


@pytest.mark.parametrize("options, error, match", [
    ({"bogus": 1}, TypeError, r"unsupported option\(s\) \['bogus'\]"),
    ({"num_returns": 2}, ValueError, "num_returns=1"),
])
def test_bad_call_options(options, error, match):
    e = Echo.remote()
    with pytest.raises(error, match=match):
        e.echo.options(**options)


def test_ray_scheduling_options_are_accepted():
    @ray.remote(num_cpus=1, max_restarts=2)
    class A:
        def f(self):
            return 1

    a = A.options(num_gpus=0, lifetime="detached").remote()
    assert ray.get(a.f.options(name="task").remote()) == 1

    @ray.remote(num_cpus=2, max_retries=0)
    def g():
        return 2

    assert ray.get(g.options(num_cpus=1).remote()) == 2
    with pytest.raises(TypeError, match=r"unsupported option\(s\) \['max_concurrency'\]; "
                                        r"supported: num_returns=1,"):
        g.options(max_concurrency=2)
    with pytest.raises(TypeError, match="max_concurrency and concurrency_groups apply to actor"):
        ray.remote(max_concurrency=2)(lambda: 1)


def test_bad_init_arguments():
    ray.shutdown()
    with pytest.raises(ValueError, match="init\\(loop='trio'\\)"):
        ray.init(loop="trio")
    with pytest.raises(ValueError, match="connects to no cluster"):
        ray.init("ray://head:10001")
    with pytest.raises(TypeError, match="unsupported option"):
        ray.init(bogus=True)
    ray.init()
    with pytest.raises(RuntimeError, match="already called"):
        ray.init()
    ray.init(ignore_reinit_error=True)
