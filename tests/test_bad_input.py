"""Bad input gets a clear error in the caller that names the problem and the fix, and loses
nothing already submitted."""

import asyncio
import contextlib
import dataclasses
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from gates import Gated
from test_objectref import Echo

import pyactors as ray

# The same errors on the Ray backend: pyactors checks before anything reaches Ray.
pytestmark = [pytest.mark.usefixtures("place"), pytest.mark.places("in-process", "ray")]


@pytest.mark.parametrize(
    "groups, error, match",
    [
        ({"default": 2}, ValueError, "'default' is a reserved group name"),
        ({"": 2}, ValueError, "non-empty"),
        ({3: 2}, TypeError, "name must be a str, got int 3"),
        ({"io": 0}, ValueError, r"concurrency_groups\['io'\] must be a positive int.*0"),
        ({"io": -1}, ValueError, "-1"),
        ({"io": 1.5}, TypeError, "float 1.5"),
        ({"io": True}, TypeError, "bool True"),
        ({"io": "2"}, TypeError, "str '2'"),
        (["io"], TypeError, "must be a dict"),
    ],
)
def test_bad_concurrency_groups_fail_at_decoration_and_in_options(groups, error, match):
    with pytest.raises(error, match=match):

        @ray.remote(concurrency_groups=groups)
        class A:
            async def f(self):
                pass

    with pytest.raises(error, match=match):
        Echo.options(concurrency_groups=groups)


@pytest.mark.parametrize(
    "value, error", [(0, ValueError), (-5, ValueError), (2.0, TypeError), ("10", TypeError)]
)
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


@pytest.mark.not_on_ray("a call through a Ray handle is Ray's to check")
def test_an_unknown_call_time_group_fails_in_the_caller_and_loses_nothing():
    e = Echo.remote()
    submitted = [e.echo.remote(i) for i in range(10)]
    with pytest.raises(ValueError, match=r"no concurrency group 'gpu'.*\['default', 'io'\]"):
        e.echo.options(concurrency_group="gpu")
    with pytest.raises(TypeError, match="concurrency_group must be a str"):
        e.echo.options(concurrency_group=1)
    assert ray.get(submitted) == list(range(10))


@pytest.mark.not_on_ray("a call through a Ray handle is Ray's to check")
def test_calling_a_method_directly_says_to_use_remote():
    e = Echo.remote()
    with pytest.raises(
        TypeError,
        match=r"Echo.echo\(\) cannot be called directly: use "
        r"Echo.echo.remote\(...\)",
    ):
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


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_returns": 0}, ValueError, "between 1 and len"),
        ({"num_returns": 3}, ValueError, "between 1 and len"),
        ({"num_returns": 1.0}, TypeError, "num_returns must be an int"),
        ({"timeout": -1}, ValueError, "timeout must be >= 0"),
        ({"timeout": "1"}, TypeError, "timeout must be None or a number"),
    ],
)
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


@pytest.mark.not_on_ray("Ray allows a blocking get() in an async actor (with a warning)")
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


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"bogus": 1}, TypeError, r"unsupported option\(s\) \['bogus'\]"),
        ({"num_returns": -1}, ValueError, "num_returns must be >= 0"),
    ],
)
@pytest.mark.not_on_ray("a call through a Ray handle is Ray's to check")
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
    ray.kill(a)  # on Ray, a detached actor outlives everything else

    @ray.remote(num_cpus=2, max_retries=0)
    def g():
        return 2

    assert ray.get(g.options(num_cpus=1).remote()) == 2
    with pytest.raises(
        TypeError,
        match=r"unsupported option\(s\) \['max_concurrency'\]; "
        r"supported: num_returns,",
    ):
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


# Ray 2.60's init() parameters and hidden options, besides address, num_cpus and
# ignore_reinit_error: code written for Ray passes them, and they mean nothing in one process.
RAY_INIT_OPTIONS = {
    "num_gpus": 1,
    "resources": {"x": 1},
    "labels": {"a": "b"},
    "object_store_memory": 10**8,
    "local_mode": False,
    "include_dashboard": False,
    "dashboard_host": "127.0.0.1",
    "dashboard_port": 8265,
    "job_config": None,
    "configure_logging": True,
    "logging_level": "INFO",
    "logging_format": None,
    "logging_config": None,
    "log_to_driver": True,
    "namespace": "ns",
    "runtime_env": {},
    "enable_resource_isolation": False,
    "cgroup_path": None,
    "system_reserved_cpu": None,
    "system_reserved_memory": None,
    "proxy_server_url": None,
    "_system_config": {},
    "_temp_dir": "/tmp",
    "_metrics_export_port": None,
    "_plasma_directory": None,
    "_object_spilling_directory": None,
    "_node_ip_address": None,
    "_node_name": None,
    "_driver_object_store_memory": None,
    "_memory": None,
    "_redis_username": None,
    "_redis_password": None,
    "_enable_object_reconstruction": False,
    "_tracing_startup_hook": None,
    "_skip_env_hook": False,
}


def test_init_accepts_every_option_of_rays_init():
    ray.shutdown()
    ray.init(num_cpus=2, **RAY_INIT_OPTIONS)
    assert ray.is_initialized()


@pytest.mark.in_process_only("starts the runtime of this process by its first use")
def test_inits_warnings_name_the_users_line_also_when_the_first_use_starts_it(monkeypatch):
    ray.shutdown()
    monkeypatch.setenv("PYACTORS_RAY_ADDRESS", "ray://head:10001")
    monkeypatch.delenv("PYACTORS_BACKEND", raising=False)
    with pytest.warns(RuntimeWarning, match="PYACTORS_RAY_ADDRESS is set") as direct:
        ray.init()
    ray.shutdown()
    with pytest.warns(RuntimeWarning, match="PYACTORS_RAY_ADDRESS is set") as by_first_use:
        assert ray.get(Target.remote().echo.remote(1)) == 1
    assert [w.filename for w in (*direct, *by_first_use)] == [__file__, __file__]


# -- The table ---------------------------------------------------------------------------------
#
# Every bad input of the public API, with the error it gets. Each Case is one row of the
# table in docs/bad-input.md (test_the_readme_table_is_this_table keeps the two identical) and
# one parametrised test: the call raises `error`, and the message contains `says` (what is
# wrong) and `names` (how it names the offending value or option). In `says` and `names`,
# "{ref}" stands for repr() of the ObjectRef the call was given.
#
# After changing CASES, print the table's rows for docs/bad-input.md with (in tests/):
#   python -c "import test_bad_input as t; print(*(c.row() for c in t.CASES), sep='\n')"

BAD_INPUT_PAGE = Path(__file__).parent.parent / "docs" / "bad-input.md"
REF_PLACEHOLDER = "{ref}"


@ray.remote(concurrency_groups={"io": 2})
class Target(Gated):
    def __init__(self, start=0):
        self.start = start

    async def echo(self, value):
        return value

    @ray.method(concurrency_group="io")
    async def io_echo(self, value):
        return value

    # Refs arrive nested in a list: top-level ref arguments would be resolved to values.
    async def get_inside(self, refs):
        return ray.get(refs[0])

    async def wait_inside(self, refs):
        return ray.wait(refs)


@ray.remote
class NeedsArg:
    def __init__(self, x):
        self.x = x


@ray.remote
def plus_one(x):
    return x + 1


async def coroutine_method(self):
    pass


class Env:
    """What the calls of one test case act on, made in that test's runtime."""

    def __init__(self):
        self.ref = ray.put(1)
        self.ref2 = ray.put(2)
        self._target = None

    @property
    def target(self):
        if self._target is None:
            self._target = Target.remote()
        return self._target


@dataclasses.dataclass(frozen=True)
class Case:
    call: str  # the table's "Call" (markdown)
    bad: str  # the table's "Bad input" (markdown)
    error: type
    says: str  # what is wrong, as the message puts it
    names: str  # the offending value or option, as the message names it
    runs: tuple  # each: env -> makes the bad call (every one must raise the same)
    shuts_down: bool = False  # the call restarts the runtime

    @property
    def id(self):
        return f"{self.call} {self.bad}".replace("`", "")

    def fragments(self, env: Env) -> tuple[str, str]:
        return tuple(s.replace(REF_PLACEHOLDER, repr(env.ref)) for s in (self.says, self.names))

    def row(self) -> str:
        error = f"`{self.error.__name__}`"
        says, names = (s.replace(REF_PLACEHOLDER, "ObjectRef(…)") for s in (self.says, self.names))
        return f"| {self.call} | {self.bad} | {error} | `{says}` … `{names}` |"


def case(call, bad, error, says, names, *runs, shuts_down=False):
    return Case(call, bad, error, says, names, runs, shuts_down)


def decorated_class(**options):
    class A:
        async def f(self):
            pass

    return ray.remote(**options)(A)


def decorated_function(**options):
    def f():
        return 1

    return ray.remote(**options)(f)


def actor_option(bad, error, says, names, **options):
    """A row for an option that @remote on a class and Cls.options() validate alike."""
    return case(
        "`@remote(...)` class, `Cls.options(...)`",
        bad,
        error,
        says,
        names,
        lambda env: decorated_class(**options),
        lambda env: Target.options(**options),
    )


def reinit(**kwargs):
    def run(env):
        ray.shutdown()
        ray.init(**kwargs)

    return run


POSITIVE_INT = "must be a positive int"
NO_REFS = "takes an ObjectRef or a list of ObjectRefs"
NAN = float("nan")

CASES = [
    # -- remote(...) on a class, and ActorClass.options(...) ---------------------------------
    actor_option(
        "`max_concurrency=0`",
        ValueError,
        f"max_concurrency {POSITIVE_INT}",
        "got 0",
        max_concurrency=0,
    ),
    actor_option(
        "`max_concurrency=2.0`",
        TypeError,
        f"max_concurrency {POSITIVE_INT}",
        "got float 2.0",
        max_concurrency=2.0,
    ),
    actor_option(
        '`max_concurrency="10"`',
        TypeError,
        f"max_concurrency {POSITIVE_INT}",
        "got str '10'",
        max_concurrency="10",
    ),
    actor_option(
        "`max_concurrency=True`",
        TypeError,
        f"max_concurrency {POSITIVE_INT}",
        "got bool True",
        max_concurrency=True,
    ),
    actor_option(
        "`max_concurrency=2**63`",
        ValueError,
        "max_concurrency must be at most",
        "got 9223372036854775808",
        max_concurrency=2**63,
    ),
    actor_option(
        "`max_pending_calls=0`",
        ValueError,
        f"max_pending_calls (or -1) {POSITIVE_INT}",
        "got 0",
        max_pending_calls=0,
    ),
    actor_option(
        "`max_pending_calls=-2`",
        ValueError,
        f"max_pending_calls (or -1) {POSITIVE_INT}",
        "got -2",
        max_pending_calls=-2,
    ),
    actor_option(
        "`max_pending_calls=1.5`",
        TypeError,
        f"max_pending_calls (or -1) {POSITIVE_INT}",
        "got float 1.5",
        max_pending_calls=1.5,
    ),
    actor_option(
        '`max_pending_calls="3"`',
        TypeError,
        f"max_pending_calls (or -1) {POSITIVE_INT}",
        "got str '3'",
        max_pending_calls="3",
    ),
    actor_option(
        '`concurrency_groups=["io"]`',
        TypeError,
        "concurrency_groups must be a dict",
        "got list ['io']",
        concurrency_groups=["io"],
    ),
    actor_option(
        '`concurrency_groups="io"`',
        TypeError,
        "concurrency_groups must be a dict",
        "got str 'io'",
        concurrency_groups="io",
    ),
    actor_option(
        '`concurrency_groups={"default": 2}`',
        ValueError,
        "is a reserved group name",
        "'default'",
        concurrency_groups={"default": 2},
    ),
    actor_option(
        '`concurrency_groups={"": 2}`',
        ValueError,
        "a concurrency group name must be a non-empty str",
        "got ''",
        concurrency_groups={"": 2},
    ),
    actor_option(
        "`concurrency_groups={3: 2}`",
        TypeError,
        "a concurrency group name must be a str",
        "got int 3",
        concurrency_groups={3: 2},
    ),
    actor_option(
        '`concurrency_groups={"io": 0}`',
        ValueError,
        f"concurrency_groups['io'] {POSITIVE_INT}",
        "got 0",
        concurrency_groups={"io": 0},
    ),
    actor_option(
        '`concurrency_groups={"io": -1}`',
        ValueError,
        f"concurrency_groups['io'] {POSITIVE_INT}",
        "got -1",
        concurrency_groups={"io": -1},
    ),
    actor_option(
        '`concurrency_groups={"io": 1.5}`',
        TypeError,
        f"concurrency_groups['io'] {POSITIVE_INT}",
        "got float 1.5",
        concurrency_groups={"io": 1.5},
    ),
    actor_option(
        '`concurrency_groups={"io": True}`',
        TypeError,
        f"concurrency_groups['io'] {POSITIVE_INT}",
        "got bool True",
        concurrency_groups={"io": True},
    ),
    actor_option(
        '`concurrency_groups={"io": "2"}`',
        TypeError,
        f"concurrency_groups['io'] {POSITIVE_INT}",
        "got str '2'",
        concurrency_groups={"io": "2"},
    ),
    actor_option(
        '`concurrency_groups={"io": None}`',
        TypeError,
        f"concurrency_groups['io'] {POSITIVE_INT}",
        "got NoneType None",
        concurrency_groups={"io": None},
    ),
    actor_option(
        '`concurrency_groups={"io": 2**63}`',
        ValueError,
        "concurrency_groups['io'] must be at most",
        "got 9223372036854775808",
        concurrency_groups={"io": 2**63},
    ),
    actor_option(
        "`max_restarts=-2`",
        ValueError,
        "max_restarts must be an int >= 0 (or -1",
        "got -2",
        max_restarts=-2,
    ),
    actor_option(
        '`max_task_retries="1"`',
        TypeError,
        "max_task_retries must be an int >= 0 (or -1",
        "got str '1'",
        max_task_retries="1",
    ),
    actor_option(
        "`max_pending_calls=2**63`",
        ValueError,
        "max_pending_calls (or -1) must be at most",
        "got 9223372036854775808",
        max_pending_calls=2**63,
    ),
    actor_option(
        "`bogus=1` (unknown option)", TypeError, "got unsupported option(s)", "['bogus']", bogus=1
    ),
    case(
        "`@remote(...)` class",
        '`name="svc"` (a creation option)',
        TypeError,
        "got unsupported option(s)",
        "['name']",
        lambda env: decorated_class(name="svc"),
    ),
    case(
        "`Cls.options(...)`",
        '`name=""`',
        ValueError,
        "name must be a non-empty str",
        "got ''",
        lambda env: Target.options(name=""),
    ),
    case(
        "`Cls.options(...)`",
        "`name=7`",
        TypeError,
        "name must be a non-empty str",
        "got int 7",
        lambda env: Target.options(name=7),
    ),
    case(
        "`Cls.options(...)`",
        "`get_if_exists=True` without `name=`",
        ValueError,
        "needs a name=",
        "get_if_exists=True",
        lambda env: Target.options(get_if_exists=True),
    ),
    case(
        "`Cls.options(...)`",
        '`name="svc", get_if_exists="yes"`',
        TypeError,
        "get_if_exists",
        "got str 'yes'",
        lambda env: Target.options(name="svc", get_if_exists="yes"),
    ),
    case(
        "`Cls.options(...)`",
        "`num_returns=2` (a call option)",
        TypeError,
        "got unsupported option(s)",
        "['num_returns']",
        lambda env: Target.options(num_returns=2),
    ),
    case(
        "`Cls.options(name=...).remote()`",
        "a name a live actor has",
        ray.exceptions.ActorNameTakenError,
        "already exists",
        "an actor named 'svc'",
        lambda env: (Target.options(name="svc").remote(), Target.options(name="svc").remote()),
    ),
    case(
        "`Cls.remote(...)`",
        "a `@method(concurrency_group=...)` the actor does not define",
        ValueError,
        "but the actor defines the groups",
        "concurrency_group='compute'",
        lambda env: Declares.remote(),
    ),
    case(
        "`Cls.remote(...)`",
        "too many arguments for `__init__`",
        TypeError,
        "too many positional arguments",
        "Target.remote()",
        lambda env: Target.remote(1, 2),
    ),
    case(
        "`Cls.remote(...)`",
        "an unknown keyword argument",
        TypeError,
        "got an unexpected keyword argument",
        "'bogus'",
        lambda env: Target.remote(bogus=1),
    ),
    case(
        "`Cls.remote(...)`",
        "a missing argument",
        TypeError,
        "missing a required argument",
        "'x'",
        lambda env: NeedsArg.remote(),
    ),
    case(
        "`Cls(...)`",
        "instantiating an actor class",
        TypeError,
        "cannot be instantiated directly",
        "Target.remote(...)",
        lambda env: Target(),
    ),
    # -- remote(...) itself, and on a function ----------------------------------------------
    case(
        "`remote(...)`",
        "`remote(1, 2)`",
        TypeError,
        "remote() takes a class or function",
        "(1, 2)",
        lambda env: ray.remote(1, 2),
    ),
    case(
        "`remote(...)`",
        "`remote(1)`",
        TypeError,
        "remote() takes a class or function",
        "got int 1",
        lambda env: ray.remote(1),
    ),
    case(
        "`remote(...)`",
        "decorating neither a class nor a function",
        TypeError,
        "@remote decorates a class or a function",
        "got int 1",
        lambda env: ray.remote()(1),
    ),
    case(
        "`@remote(...)` def",
        "`max_concurrency=2`",
        TypeError,
        "apply to actor classes",
        "['max_concurrency']",
        lambda env: decorated_function(max_concurrency=2),
    ),
    case(
        "`@remote(...)` def",
        '`concurrency_groups={"io": 1}`',
        TypeError,
        "apply to actor classes",
        "['concurrency_groups']",
        lambda env: decorated_function(concurrency_groups={"io": 1}),
    ),
    case(
        "`@remote(...)` def",
        "`max_pending_calls=3`",
        TypeError,
        "got unsupported option(s)",
        "['max_pending_calls']",
        lambda env: decorated_function(max_pending_calls=3),
    ),
    case(
        "`@remote(...)` def",
        "`bogus=1` (unknown option)",
        TypeError,
        "got unsupported option(s)",
        "['bogus']",
        lambda env: decorated_function(bogus=1),
    ),
    case(
        "`f(...)`",
        "calling a remote function directly",
        TypeError,
        "cannot be called directly",
        "plus_one.remote(...)",
        lambda env: plus_one(1),
    ),
    case(
        "`f.options(...)`",
        '`concurrency_group="io"`',
        ValueError,
        "concurrency groups belong to actors",
        "concurrency_group='io'",
        lambda env: plus_one.options(concurrency_group="io"),
    ),
    case(
        "`f.options(...)`",
        "`num_returns=-1`",
        ValueError,
        "num_returns must be >= 0",
        "num_returns=-1",
        lambda env: plus_one.options(num_returns=-1),
    ),
    case(
        "`@remote(...)` def",
        '`num_returns="2"`',
        TypeError,
        "num_returns must be an int >= 0",
        "got str '2'",
        lambda env: decorated_function(num_returns="2"),
    ),
    case(
        "`f.options(...)`",
        "`bogus=1` (unknown option)",
        TypeError,
        "got unsupported option(s)",
        "['bogus']",
        lambda env: plus_one.options(bogus=1),
    ),
    # -- method(...) -------------------------------------------------------------------------
    case(
        "`@method(...)`",
        '`concurrency_group=""`',
        ValueError,
        "a concurrency group name must be a non-empty str",
        "got ''",
        lambda env: ray.method(concurrency_group=""),
    ),
    case(
        "`@method(...)`",
        "`concurrency_group=7`",
        TypeError,
        "a concurrency group name must be a str",
        "got int 7",
        lambda env: ray.method(concurrency_group=7),
    ),
    case(
        "`@method(...)`",
        "`num_returns=-2`",
        ValueError,
        "num_returns must be >= 0",
        "num_returns=-2",
        lambda env: ray.method(num_returns=-2),
    ),
    case(
        "`@method(...)`",
        "`num_returns=1.0`",
        TypeError,
        "num_returns",
        "got float 1.0",
        lambda env: ray.method(num_returns=1.0),
    ),
    case(
        "`@method(...)`",
        "`blocking=1`",
        TypeError,
        "method(blocking=...) must be a bool",
        "got int 1",
        lambda env: ray.method(blocking=1),
    ),
    case(
        "`@method(...)`",
        '`blocking="yes"`',
        TypeError,
        "method(blocking=...) must be a bool",
        "got str 'yes'",
        lambda env: ray.method(blocking="yes"),
    ),
    case(
        "`@method(...)`",
        "`blocking=True` on an `async def`",
        ValueError,
        "blocking=True is for plain def methods",
        "async def coroutine_method",
        lambda env: ray.method(blocking=True)(coroutine_method),
    ),
    case(
        "`@method(...)`",
        "`bogus=1` (unknown option)",
        TypeError,
        "got unsupported option(s)",
        "['bogus']",
        lambda env: ray.method(bogus=1),
    ),
    case(
        "`@method(...)`",
        "`method(1)`",
        TypeError,
        "method() takes only keyword options",
        "got int 1",
        lambda env: ray.method(1),
    ),
    case(
        "`@method(...)`",
        "decorating a non-function",
        TypeError,
        "@method decorates a method",
        "got int 5",
        lambda env: ray.method()(5),
    ),
    # -- handle.m.options(...) and handle.m(...) ---------------------------------------------
    case(
        "`h.m.options(...)`",
        '`concurrency_group="gpu"` (not defined)',
        ValueError,
        "has no concurrency group",
        "'gpu'",
        lambda env: env.target.echo.options(concurrency_group="gpu"),
    ),
    case(
        "`h.m.options(...)`",
        '`concurrency_group=""`',
        ValueError,
        "has no concurrency group",
        "''",
        lambda env: env.target.echo.options(concurrency_group=""),
    ),
    case(
        "`h.m.options(...)`",
        "`concurrency_group=1`",
        TypeError,
        "concurrency_group must be a str",
        "got int 1",
        lambda env: env.target.echo.options(concurrency_group=1),
    ),
    case(
        "`h.m.options(...)`",
        "`num_returns=-1`",
        ValueError,
        "num_returns must be >= 0",
        "num_returns=-1",
        lambda env: env.target.echo.options(num_returns=-1),
    ),
    case(
        "`h.m.options(...)`",
        "`num_returns=1.0`",
        TypeError,
        "num_returns",
        "got float 1.0",
        lambda env: env.target.echo.options(num_returns=1.0),
    ),
    case(
        "`h.m.options(...)`",
        "`max_concurrency=2` (an actor option)",
        TypeError,
        "got unsupported option(s)",
        "['max_concurrency']",
        lambda env: env.target.echo.options(max_concurrency=2),
    ),
    case(
        "`h.m.options(...)`",
        "`bogus=1` (unknown option)",
        TypeError,
        "got unsupported option(s)",
        "['bogus']",
        lambda env: env.target.echo.options(bogus=1),
    ),
    case(
        "`h.m(...)`",
        "calling a method directly",
        TypeError,
        "cannot be called directly",
        "Target.echo.remote(...)",
        lambda env: env.target.echo(1),
    ),
    case(
        "`h.m`",
        "a method the actor does not have",
        AttributeError,
        "has no method",
        "'nope'",
        lambda env: env.target.nope,
    ),
    # -- get ----------------------------------------------------------------------------------
    case("`get(...)`", "`1`", TypeError, NO_REFS, "got int 1", lambda env: ray.get(1)),
    case(
        "`get(...)`", "`None`", TypeError, NO_REFS, "got NoneType None", lambda env: ray.get(None)
    ),
    case(
        "`get(...)`",
        "a tuple of refs",
        TypeError,
        NO_REFS,
        "got tuple ({ref},)",
        lambda env: ray.get((env.ref,)),
    ),
    case(
        "`get(...)`",
        "a set of refs",
        TypeError,
        NO_REFS,
        "got set {{ref}}",
        lambda env: ray.get({env.ref}),
    ),
    case(
        "`get(...)`",
        "a list holding a non-ref",
        TypeError,
        "item 1 of the list is",
        "int 5",
        lambda env: ray.get([env.ref, 5]),
    ),
    case(
        "`get(...)`",
        '`timeout="1"`',
        TypeError,
        "timeout must be None or a number",
        "got str '1'",
        lambda env: ray.get(env.ref, timeout="1"),
    ),
    case(
        "`get(...)`",
        "`timeout=1j`",
        TypeError,
        "timeout must be None or a number",
        "got complex 1j",
        lambda env: ray.get(env.ref, timeout=1j),
    ),
    case(
        "`get(...)`",
        "`timeout=True`",
        TypeError,
        "timeout must be None or a number",
        "got bool True",
        lambda env: ray.get(env.ref, timeout=True),
    ),
    case(
        "`get(...)`",
        "`timeout=-1`",
        ValueError,
        "timeout must be >= 0",
        "got -1",
        lambda env: ray.get(env.ref, timeout=-1),
    ),
    case(
        "`get(...)`",
        '`timeout=float("nan")`',
        ValueError,
        "timeout must be",
        "got nan",
        lambda env: ray.get(env.ref, timeout=NAN),
    ),
    case(
        "`get(...)`",
        "called in an `async def` method",
        RuntimeError,
        "get() would block an event loop",
        "loop thread of concurrency group 'default' of actor Target(",
        lambda env: ray.get(env.target.get_inside.remote([env.ref])),
    ),
    # -- wait ---------------------------------------------------------------------------------
    case(
        "`wait(...)`",
        "one ref, not a list",
        TypeError,
        "not a single ObjectRef",
        "use wait([ref])",
        lambda env: ray.wait(env.ref),
    ),
    case(
        "`wait(...)`",
        "`1`",
        TypeError,
        "wait() takes a list of ObjectRefs",
        "got int 1",
        lambda env: ray.wait(1),
    ),
    case(
        "`wait(...)`",
        "a tuple of refs",
        TypeError,
        "wait() takes a list of ObjectRefs",
        "got tuple ({ref},)",
        lambda env: ray.wait((env.ref,)),
    ),
    case(
        "`wait(...)`",
        "a set of refs",
        TypeError,
        "wait() takes a list of ObjectRefs",
        "got set {{ref}}",
        lambda env: ray.wait({env.ref}),
    ),
    case(
        "`wait(...)`",
        "a list holding a non-ref",
        TypeError,
        "item 0 of the list is",
        "str 'x'",
        lambda env: ray.wait(["x"]),
    ),
    case(
        "`wait(...)`",
        "the same ref twice",
        ValueError,
        "duplicates",
        "{ref}",
        lambda env: ray.wait([env.ref, env.ref]),
    ),
    case(
        "`wait(...)`",
        "`num_returns=0`",
        ValueError,
        "num_returns must be between 1 and len(refs)",
        "got 0",
        lambda env: ray.wait([env.ref, env.ref2], num_returns=0),
    ),
    case(
        "`wait(...)`",
        "`num_returns=3` for 2 refs",
        ValueError,
        "num_returns must be between 1 and len(refs) = 2",
        "got 3",
        lambda env: ray.wait([env.ref, env.ref2], num_returns=3),
    ),
    case(
        "`wait(...)`",
        "`num_returns=1.0`",
        TypeError,
        "num_returns must be an int",
        "got float 1.0",
        lambda env: ray.wait([env.ref], num_returns=1.0),
    ),
    case(
        "`wait(...)`",
        '`num_returns="1"`',
        TypeError,
        "num_returns must be an int",
        "got str '1'",
        lambda env: ray.wait([env.ref], num_returns="1"),
    ),
    case(
        "`wait(...)`",
        "`num_returns=True`",
        TypeError,
        "num_returns must be an int",
        "got bool True",
        lambda env: ray.wait([env.ref], num_returns=True),
    ),
    case(
        "`wait(...)`",
        '`timeout="1"`',
        TypeError,
        "timeout must be None or a number",
        "got str '1'",
        lambda env: ray.wait([env.ref], timeout="1"),
    ),
    case(
        "`wait(...)`",
        "`timeout=-1`",
        ValueError,
        "timeout must be >= 0",
        "got -1",
        lambda env: ray.wait([env.ref], timeout=-1),
    ),
    case(
        "`wait(...)`",
        '`timeout=float("nan")`',
        ValueError,
        "timeout must be",
        "got nan",
        lambda env: ray.wait([env.ref], timeout=NAN),
    ),
    case(
        "`wait(...)`",
        '`fetch_local="no"`',
        TypeError,
        "wait(fetch_local=...) must be a bool",
        "got str 'no'",
        lambda env: ray.wait([env.ref], fetch_local="no"),
    ),
    case(
        "`wait(...)`",
        "called in an `async def` method",
        RuntimeError,
        "wait() would block an event loop",
        "loop thread of concurrency group 'default' of actor Target(",
        lambda env: ray.get(env.target.wait_inside.remote([env.ref])),
    ),
    # -- put, cancel --------------------------------------------------------------------------
    case(
        "`put(...)`",
        "an ObjectRef",
        TypeError,
        "is not allowed",
        "put() of an ObjectRef",
        lambda env: ray.put(env.ref),
    ),
    case(
        "`cancel(...)`",
        "`1`",
        TypeError,
        "cancel() takes an ObjectRef",
        "got int 1",
        lambda env: ray.cancel(1),
    ),
    case(
        "`cancel(...)`",
        "`None`",
        TypeError,
        "cancel() takes an ObjectRef",
        "got NoneType None",
        lambda env: ray.cancel(None),
    ),
    case(
        "`cancel(...)`",
        "a list of refs",
        TypeError,
        "cancel() takes an ObjectRef",
        "got list [{ref}]",
        lambda env: ray.cancel([env.ref]),
    ),
    case(
        "`cancel(...)`",
        "an actor handle",
        TypeError,
        "cancel() takes an ObjectRef",
        "ActorHandle Actor(Target,",
        lambda env: ray.cancel(env.target),
    ),
    case(
        "`cancel(...)`",
        '`force="yes"`',
        TypeError,
        "cancel(force=...) must be a bool",
        "got str 'yes'",
        lambda env: ray.cancel(env.ref, force="yes"),
    ),
    case(
        "`cancel(...)`",
        "`recursive=1`",
        TypeError,
        "cancel(recursive=...) must be a bool",
        "got int 1",
        lambda env: ray.cancel(env.ref, recursive=1),
    ),
    # -- kill ---------------------------------------------------------------------------------
    case(
        "`kill(...)`",
        "`1`",
        TypeError,
        "kill() takes an actor handle",
        "got int 1",
        lambda env: ray.kill(1),
    ),
    case(
        "`kill(...)`",
        "`None`",
        TypeError,
        "kill() takes an actor handle",
        "got NoneType None",
        lambda env: ray.kill(None),
    ),
    case(
        "`kill(...)`",
        "an actor class",
        TypeError,
        "kill() takes an actor handle",
        "got ActorClass <ActorClass",
        lambda env: ray.kill(Target),
    ),
    case(
        "`kill(...)`",
        "an ObjectRef",
        TypeError,
        "kill() takes an actor handle",
        "got ObjectRef {ref}",
        lambda env: ray.kill(env.ref),
    ),
    case(
        "`kill(...)`",
        "`no_restart=False`",
        ValueError,
        "kill(no_restart=False) is not supported",
        "calls sys.exit()",
        lambda env: ray.kill(env.target, no_restart=False),
    ),
    case(
        "`kill(...)`",
        '`no_restart="no"`',
        TypeError,
        "no_restart",
        "got str 'no'",
        lambda env: ray.kill(env.target, no_restart="no"),
    ),
    # -- get_actor ----------------------------------------------------------------------------
    case(
        "`get_actor(...)`",
        "`1`",
        TypeError,
        "get_actor() takes a non-empty str name",
        "got int 1",
        lambda env: ray.get_actor(1),
    ),
    case(
        "`get_actor(...)`",
        "`None`",
        TypeError,
        "get_actor() takes a non-empty str name",
        "got NoneType None",
        lambda env: ray.get_actor(None),
    ),
    case(
        "`get_actor(...)`",
        '`b"svc"`',
        TypeError,
        "get_actor() takes a non-empty str name",
        "got bytes b'svc'",
        lambda env: ray.get_actor(b"svc"),
    ),
    case(
        "`get_actor(...)`",
        '`""`',
        ValueError,
        "get_actor() takes a non-empty str name",
        "got ''",
        lambda env: ray.get_actor(""),
    ),
    case(
        "`get_actor(...)`",
        "`namespace=5`",
        TypeError,
        "get_actor(namespace=...) must be None or a str",
        "got int 5",
        lambda env: ray.get_actor("svc", namespace=5),
    ),
    case(
        "`get_actor(...)`",
        "a name no live actor has",
        ValueError,
        "there is no live actor named",
        "'nope'",
        lambda env: ray.get_actor("nope"),
    ),
    # -- set_concurrency, stats ---------------------------------------------------------------
    case(
        "`set_concurrency(...)`",
        "not a handle",
        TypeError,
        "set_concurrency() takes an actor handle",
        "got int 1",
        lambda env: ray.set_concurrency(1, "io", 2),
    ),
    case(
        "`set_concurrency(...)`",
        "group `1`",
        TypeError,
        "group must be a str",
        "got int 1",
        lambda env: ray.set_concurrency(env.target, 1, 2),
    ),
    case(
        "`set_concurrency(...)`",
        "group `None`",
        TypeError,
        "group must be a str",
        "got NoneType None",
        lambda env: ray.set_concurrency(env.target, None, 2),
    ),
    case(
        "`set_concurrency(...)`",
        'group `"gpu"` (not defined)',
        ValueError,
        "has no concurrency group",
        "'gpu'",
        lambda env: ray.set_concurrency(env.target, "gpu", 2),
    ),
    case(
        "`set_concurrency(...)`",
        "limit `0`",
        ValueError,
        f"limit {POSITIVE_INT}",
        "got 0",
        lambda env: ray.set_concurrency(env.target, "io", 0),
    ),
    case(
        "`set_concurrency(...)`",
        "limit `-1`",
        ValueError,
        f"limit {POSITIVE_INT}",
        "got -1",
        lambda env: ray.set_concurrency(env.target, "io", -1),
    ),
    case(
        "`set_concurrency(...)`",
        "limit `2.0`",
        TypeError,
        f"limit {POSITIVE_INT}",
        "got float 2.0",
        lambda env: ray.set_concurrency(env.target, "io", 2.0),
    ),
    case(
        "`set_concurrency(...)`",
        'limit `"2"`',
        TypeError,
        f"limit {POSITIVE_INT}",
        "got str '2'",
        lambda env: ray.set_concurrency(env.target, "io", "2"),
    ),
    case(
        "`set_concurrency(...)`",
        "limit `True`",
        TypeError,
        f"limit {POSITIVE_INT}",
        "got bool True",
        lambda env: ray.set_concurrency(env.target, "io", True),
    ),
    case(
        "`set_concurrency(...)`",
        "limit `None`",
        TypeError,
        f"limit {POSITIVE_INT}",
        "got NoneType None",
        lambda env: ray.set_concurrency(env.target, "io", None),
    ),
    case(
        "`set_concurrency(...)`",
        "limit `2**63`",
        ValueError,
        "limit must be at most",
        "got 9223372036854775808",
        lambda env: ray.set_concurrency(env.target, "io", 2**63),
    ),
    case(
        "`stats(...)`",
        "not a handle",
        TypeError,
        "stats() takes an actor handle",
        "got int 1",
        lambda env: ray.stats(1),
    ),
    # -- init ---------------------------------------------------------------------------------
    case(
        "`init(...)`",
        '`loop="trio"`',
        ValueError,
        "choose one of",
        "init(loop='trio')",
        reinit(loop="trio"),
        shuts_down=True,
    ),
    case(
        "`init(...)`", "`loop=1`", TypeError, "loop", "got int 1", reinit(loop=1), shuts_down=True
    ),
    case(
        "`init(...)`",
        '`address="ray://head:10001"`',
        ValueError,
        "connects to no cluster",
        "init(address='ray://head:10001')",
        reinit(address="ray://head:10001"),
        shuts_down=True,
    ),
    case(
        "`init(...)`",
        "`address=5`",
        TypeError,
        "address",
        "got int 5",
        reinit(address=5),
        shuts_down=True,
    ),
    case(
        "`init(...)`",
        "`bogus=True` (unknown option)",
        TypeError,
        "got unsupported option(s)",
        "['bogus']",
        reinit(bogus=True),
        shuts_down=True,
    ),
    case(
        "`init(...)`",
        "`num_cpus=0`",
        ValueError,
        f"num_cpus {POSITIVE_INT}",
        "got 0",
        reinit(num_cpus=0),
        shuts_down=True,
    ),
    case(
        "`init(...)`",
        '`num_cpus="2"`',
        TypeError,
        f"num_cpus {POSITIVE_INT}",
        "got str '2'",
        reinit(num_cpus="2"),
        shuts_down=True,
    ),
    case(
        "`init(...)`",
        "`num_cpus=2**63`",
        ValueError,
        "num_cpus must be at most",
        "got 9223372036854775808",
        reinit(num_cpus=2**63),
        shuts_down=True,
    ),
    case(
        "`init(...)`",
        "`blocked_loop_warning=0`",
        ValueError,
        "init(blocked_loop_warning=...) must be more than 0 seconds",
        "got 0",
        reinit(blocked_loop_warning=0),
        shuts_down=True,
    ),
    case(
        "`init(...)`",
        '`blocked_loop_warning="1"`',
        TypeError,
        "init(blocked_loop_warning=...) must be a number of seconds",
        "got str '1'",
        reinit(blocked_loop_warning="1"),
        shuts_down=True,
    ),
    case(
        "`init(...)`",
        "a second `init()`",
        RuntimeError,
        "was already called",
        "ignore_reinit_error=True",
        lambda env: ray.init(),
    ),
]


def rays_own(c: Case) -> str | None:
    """Why the Ray backend answers a row as Ray does, not as the table says (docs/bad-input.md
    says so above the table); None where both backends answer alike."""
    if c.call in ("`h.m.options(...)`", "`h.m(...)`", "`h.m`"):
        return "a call through a Ray handle is Ray's to check"
    if c.call == "`set_concurrency(...)`":
        return "pyactors-only: on a Ray actor, a RuntimeError says so"
    if c.bad == "`no_restart=False`":
        return "Ray restarts actors"
    if c.bad == "called in an `async def` method":
        return "Ray allows a blocking get()/wait() in an async actor (with a warning)"
    return None


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=[pytest.mark.not_on_ray(rays_own(c))] if rays_own(c) else [])
        for c in CASES
    ],
    ids=lambda c: c.id,
)
def test_bad_input(case):
    env = Env()
    says, names = case.fragments(env)
    for run in case.runs:
        with pytest.raises(case.error) as caught:
            run(env)
        message = str(caught.value)
        assert says in message, f"{says!r} not in {message!r}"
        assert names in message, f"{names!r} not in {message!r}"


@pytest.mark.not_on_ray("it reads the groups' queues with stats(), pyactors-only")
def test_nothing_already_submitted_is_lost():
    env = Env()
    target = env.target
    held = [target.wait.remote(i) for i in range(5)]  # running, waiting for open()
    io = [target.io_echo.remote(i) for i in range(5, 15)]  # io, limit 2: some queued
    via_refs = [target.echo.remote(ray.put(i)) for i in range(15, 20)]
    functions = [plus_one.remote(i) for i in range(20, 25)]
    submitted = held + io + via_refs + functions
    # Every bad input of the table that keeps the runtime (most on this very actor).
    for c in CASES:
        if c.shuts_down:
            continue
        for run in c.runs:
            with contextlib.suppress(Exception):
                run(env)
    assert ray.wait(held, num_returns=len(held), timeout=0)[1] == held  # still held
    assert {group: s["limit"] for group, s in ray.stats(target).items()} == {
        "default": 1000,
        "io": 2,
    }
    target.open.remote()
    assert ray.get(submitted, timeout=30) == [*range(15), *range(15, 20), *range(21, 26)]
    assert ray.get(target.echo.remote("after"), timeout=30) == "after"


def _readme_rows() -> list[str]:
    text = BAD_INPUT_PAGE.read_text(encoding="utf-8")
    section = re.search(r"^# Bad input\n(.*)", text, re.M | re.S)
    assert section, "docs/bad-input.md has no '# Bad input' title"
    rows = [line for line in section.group(1).splitlines() if line.startswith("| ")]
    return rows[1:]  # without the header


@pytest.mark.skipif(not BAD_INPUT_PAGE.exists(), reason="runs from a source checkout")
def test_the_readme_table_is_this_table():
    assert _readme_rows() == [c.row() for c in CASES]


def test_every_case_names_what_it_refuses():
    assert len({c.id for c in CASES}) == len(CASES), "duplicate rows"
    for c in CASES:
        assert c.says and c.names and c.runs, c


@pytest.mark.parametrize("timeout", [Fraction(1, 100), Decimal("0.01"), 0.01, 0])
def test_any_real_number_is_a_timeout(timeout):
    """Fraction and Decimal are real numbers of seconds too."""
    assert_a_timeout(timeout)


@pytest.mark.parametrize("kind", ["float32", "float64", "int64"])
def test_numpy_scalars_are_timeouts(kind):
    numpy = pytest.importorskip("numpy")
    assert_a_timeout(getattr(numpy, kind)(0.01 if kind.startswith("float") else 0))


def assert_a_timeout(timeout):
    target = Target.remote()
    held = target.wait.remote()
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(held, timeout=timeout)
    assert ray.wait([held], timeout=timeout) == ([], [held])
    assert ray.get(ray.put(1), timeout=timeout) == 1
    target.open.remote()  # on Ray an actor with a call pending outlives its handle


def test_a_failed_init_leaves_no_thread_behind():
    # The fixture checks for leftover threads after the test; each failure must leave none.
    for _ in range(3):
        with pytest.raises(ValueError):
            reinit(num_cpus=2**63)(None)
