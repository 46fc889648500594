"""What `benchmarks.processes` runs in worker processes: a module of its own that imports
nothing but pyactors, so that a worker, which unpickles these by reference (it imports this
module), loads nothing of the benchmark driver, and the memory and creation figures carry none
of it."""

import os

import pyactors

SPIN = 3_000_000  # P4: iterations of a pure-Python loop, about 0.1 s


@pyactors.remote(process=True)
class Probe:
    """A threaded actor (plain methods) in a worker process of its own;
    `Probe.options(process=False).remote()` is the same actor in this process."""

    def noop(self):
        return None

    def echo(self, value):
        return value

    def spin(self, n):
        total = 0
        for i in range(n):
            total += i
        return total

    def pid(self):
        return os.getpid()


def identity(i):
    """P3's task; the process pool baselines run this plain function."""
    return i


remote_identity = pyactors.remote(process=True)(identity)
