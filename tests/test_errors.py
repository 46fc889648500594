"""Errors raised in methods and remote functions, as the caller sees them."""

import asyncio
import dataclasses

import pytest

import pyactors as ray
from pyactors.exceptions import TaskError

pytestmark = [pytest.mark.usefixtures("place"), pytest.mark.places("in-process", "process", "ray")]


class QuotaExceeded(Exception):
    def __init__(self, user, limit):
        super().__init__(f"{user} is over {limit}")
        self.user = user
        self.limit = limit


@ray.remote(concurrency_groups={"io": 1})
class Account:
    def __init__(self):
        self.balance = 0

    def deposit(self, amount):
        self.balance += amount
        return self.balance

    @ray.method(concurrency_group="io")
    async def withdraw(self, amount):
        await asyncio.sleep(0)
        if amount > self.balance:
            raise QuotaExceeded("alice", self.balance)
        self.balance -= amount
        return self.balance

    def lookup(self, key):
        return {}[key]

    def open_missing(self):
        with open("/nonexistent/pyactors-test"):
            pass


@ray.remote
def divide(a, b):
    return a / b


def test_error_is_a_task_error_and_an_instance_of_the_original_class(place):
    acct = Account.remote()
    with pytest.raises(KeyError) as info:
        ray.get(acct.lookup.remote("x"))
    err = info.value
    assert isinstance(err, TaskError)
    if place != "ray":  # Ray's holds the cause in its args instead
        assert err.args == ("x",)
    assert isinstance(err.cause, KeyError) and err.cause.args == ("x",)
    with pytest.raises(TaskError):
        ray.get(acct.lookup.remote("x"))


@pytest.mark.not_on_ray(
    "Ray cannot rebuild an exception whose __init__ takes other arguments than its args"
)
def test_error_keeps_the_original_attributes():
    acct = Account.remote()
    ray.get(acct.deposit.remote(5))
    with pytest.raises(QuotaExceeded) as info:
        ray.get(acct.withdraw.remote(10))
    assert (info.value.user, info.value.limit) == ("alice", 5)
    with pytest.raises(FileNotFoundError) as info:
        ray.get(acct.open_missing.remote())
    assert info.value.errno == 2 and info.value.filename == "/nonexistent/pyactors-test"


@pytest.mark.not_on_ray("the message's form, concurrency_group and task_name are pyactors'")
def test_message_names_class_method_group_and_carries_the_remote_traceback():
    acct = Account.remote()
    with pytest.raises(QuotaExceeded) as info:
        ray.get(acct.withdraw.remote(1))
    message = str(info.value)
    assert "Account.withdraw()" in message
    assert "concurrency group 'io'" in message
    assert "Traceback (most recent call last)" in message
    assert "raise QuotaExceeded" in message and "alice is over 0" in message
    assert info.value.concurrency_group == "io" and info.value.task_name == "Account.withdraw"


@pytest.mark.not_on_ray("QuotaExceeded cannot be rebuilt by Ray (see above)")
def test_the_actor_keeps_its_state_and_keeps_serving_after_an_error():
    acct = Account.remote()
    assert ray.get(acct.deposit.remote(10)) == 10
    with pytest.raises(QuotaExceeded):
        ray.get(acct.withdraw.remote(100))
    assert ray.get(acct.withdraw.remote(4)) == 6
    assert ray.get(acct.deposit.remote(1)) == 7


def test_remote_function_errors_and_await(place):
    with pytest.raises(ZeroDivisionError) as info:
        ray.get(divide.remote(1, 0))
    assert isinstance(info.value, TaskError)
    assert "divide()" in str(info.value)
    if place != "ray":
        assert "remote-function pool" in str(info.value)

    async def main():
        with pytest.raises(ZeroDivisionError):
            await divide.remote(1, 0)

    asyncio.run(main())


class Odd(Exception):
    def __init__(self, a, b, *, c):  # cannot be rebuilt from its args alone
        super().__init__(a)
        self.c = c


@ray.remote
def raise_odd():
    raise Odd(1, 2, c=3)


@ray.remote
def raise_base():
    raise KeyboardInterrupt


@pytest.mark.not_on_ray("Ray cannot rebuild Odd, and a remote KeyboardInterrupt is its worker's")
def test_unusual_exceptions_still_surface_as_task_errors():
    with pytest.raises(Odd) as info:
        ray.get(raise_odd.remote())
    assert info.value.c == 3
    # a remote KeyboardInterrupt must not look like the caller's own Ctrl-C
    with pytest.raises(TaskError) as info:
        ray.get(raise_base.remote())
    assert not isinstance(info.value, KeyboardInterrupt)
    assert isinstance(info.value.cause, KeyboardInterrupt)


class Picky(Exception):
    def __new__(cls, *args, key):  # cannot be rebuilt from its args
        error = super().__new__(cls, *args)
        error.key = key
        return error

    def __init__(self, *args, key):
        super().__init__(*args)


class Sealed(Exception):
    def __init_subclass__(cls, **kwargs):  # cannot be subclassed
        raise TypeError("Sealed is final")


@ray.remote
def raise_unrebuildable(kind):
    raise Picky("p", key=7) if kind == "picky" else Sealed("s")


@pytest.mark.not_on_ray("Ray cannot rebuild these (UnserializableException), nor say why")
@pytest.mark.parametrize("kind, cls", [("picky", Picky), ("sealed", Sealed)])
def test_exceptions_that_cannot_be_dual_fall_back_to_a_plain_task_error(kind, cls):
    with pytest.raises(TaskError) as info:
        ray.get(raise_unrebuildable.remote(kind))
    error = info.value
    assert type(error) is TaskError, "no half-built dual error"
    assert type(error.cause) is cls and error.cause.args == (kind[0],)
    assert f"raise_unrebuildable() raised {cls.__name__}" in str(error)
    assert 'raise Picky("p", key=7) if kind == "picky" else Sealed("s")' in str(error)
    if kind == "picky":
        assert error.cause.key == 7


@dataclasses.dataclass(frozen=True)
class FrozenError(Exception):
    code: int


class RefusesAttributes(Exception):
    def __setattr__(self, name, value):  # as attrs' frozen exceptions do
        raise AttributeError(f"{type(self).__name__} is immutable")


@ray.remote
class RaisesImmutable:
    def plain(self, cls):
        raise cls(404)

    async def no_await(self, cls):
        raise cls(404)

    async def awaiting(self, cls):
        await asyncio.sleep(0)
        raise cls(404)

    async def ping(self):
        return "pong"


@pytest.mark.not_on_ray("Ray cannot send these back (UnserializableException)")
@pytest.mark.parametrize("cls", [FrozenError, RefusesAttributes])
@pytest.mark.parametrize("method", ["plain", "no_await", "awaiting"])
def test_exceptions_that_refuse_attributes_reach_the_caller_as_themselves(method, cls):
    actor = RaisesImmutable.remote()
    with pytest.raises(cls) as info:  # not a hang, nor the error of setting an attribute
        ray.get(getattr(actor, method).remote(cls), timeout=30)
    assert isinstance(info.value, TaskError) and info.value.args == (404,)
    assert ray.get(actor.ping.remote(), timeout=30) == "pong"  # and the actor serves on


@pytest.mark.in_process_only("counts attempts in a list of the test")
def test_retry_exceptions_runs_a_function_again(loop_kind):
    """Ray's retry_exceptions with max_retries: the function runs again on those exceptions
    (in the same call here: one process has no other worker)."""
    attempts = []

    @ray.remote(max_retries=2, retry_exceptions=[ConnectionError])
    def flaky(fail_times):
        attempts.append(1)
        if len(attempts) <= fail_times:
            raise ConnectionError("try again")
        return len(attempts)

    assert ray.get(flaky.remote(2)) == 3
    attempts.clear()
    with pytest.raises(ConnectionError):
        ray.get(flaky.remote(5))  # 1 run + 2 retries, then its error
    assert len(attempts) == 3
    attempts.clear()
    assert ray.get(flaky.options(max_retries=5).remote(4)) == 5
    attempts.clear()
    with pytest.raises(ConnectionError):
        ray.get(flaky.options(retry_exceptions=False).remote(1))  # retries off for this call
    assert len(attempts) == 1

    @ray.remote
    def not_retried():
        attempts.append(1)
        raise ValueError("once")

    attempts.clear()
    with pytest.raises(ValueError):
        ray.get(not_retried.remote())
    assert len(attempts) == 1
    with pytest.raises(TypeError, match="retry_exceptions must be a bool or"):
        not_retried.options(retry_exceptions="yes")


def test_the_exception_names_rays_code_catches(loop_kind):
    for name in (
        "RayActorError",
        "ActorDiedError",
        "TaskCancelledError",
        "GetTimeoutError",
        "RayTaskError",
        "ObjectLostError",
        "OwnerDiedError",
        "WorkerCrashedError",
        "AsyncioActorExit",
        "RayError",
    ):
        assert isinstance(getattr(ray.exceptions, name), type), name
