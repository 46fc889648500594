"""W7, fresh process: import the library, start it, create an actor and get one result.

    python -m benchmarks.fresh IMPL [--loop uvloop|asyncio] [--then W1,W2,...]

Prints one JSON line: ``w7_fresh_s``, the seconds from before the import to the first result
(the interpreter's own start is not counted; the compare script also reports the process's
wall time, spawn to exit), and ``w7_fresh_rss_mb``, the process's peak RSS (for Ray: the RSS
summed over the driver and every process it started, taken at the first result, and its peak
RSS and PSS beside). Nothing is imported before the clock starts beyond what the interpreter
loads anyway, so the figure is what a user's script pays.

``--then`` runs those workloads in the same process afterwards (``benchmarks.compare`` does
this for Ray, which takes long to start).
"""

import os
import sys
import time


def fresh_pyactors(loop):
    import pyactors as ray

    ray.init(loop=loop)

    @ray.remote
    class Fresh:
        async def noop(self):
            return None

    return ray.get(Fresh.remote().noop.remote())


def fresh_floor(loop):
    from benchmarks.floor import FloorActor

    return FloorActor(loop).call_noop().result()


def fresh_rct(loop):
    import asyncio
    import threading

    from benchmarks.floor import new_event_loop

    async def noop():
        return None

    event_loop = new_event_loop(loop)
    threading.Thread(target=event_loop.run_forever, daemon=True).start()
    return asyncio.run_coroutine_threadsafe(noop(), event_loop).result()


def fresh_on_ray(api, start):
    """Ray's API module `api` (ray, or pyactors on its Ray backend), started by `start`."""
    start()

    @api.remote
    class Fresh:
        async def noop(self):
            return None

    return api.get(Fresh.remote().noop.remote())


def fresh_ray(loop):
    import ray

    from benchmarks.impl_ray import INIT_OPTIONS

    return fresh_on_ray(ray, lambda: ray.init(**INIT_OPTIONS))


def fresh_pyactors_ray(loop):
    import pyactors
    from benchmarks.impl_ray import INIT_OPTIONS

    return fresh_on_ray(pyactors, lambda: pyactors.init(backend="ray", **INIT_OPTIONS))


def fresh_pykka(loop):
    import pykka

    class Fresh(pykka.ThreadingActor):
        def noop(self):
            return None

    return Fresh.start().proxy().noop().get()


FRESH = {
    "pyactors": fresh_pyactors,
    "floor": fresh_floor,
    "rct": fresh_rct,
    "ray": fresh_ray,
    "pyactors-ray": fresh_pyactors_ray,
    "pykka": fresh_pykka,
}


def peak_rss_mb():
    """This process's peak RSS: VmHWM, which starts afresh at exec. (Not getrusage's
    ru_maxrss, which Linux carries across exec: a child spawned by a big parent would report
    the parent's size.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def parse(argv):
    # No argparse: it would import modules the measured libraries might otherwise pay for.
    impl, loop, then = argv[0], None, []
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "--loop":
            loop = next(rest)
        elif arg == "--then":
            then = [w for w in next(rest).split(",") if w]
        else:
            raise SystemExit(
                f"usage: python -m benchmarks.fresh IMPL [--loop L] [--then W1,..]; "
                f"unexpected {arg!r}"
            )
    if impl not in FRESH:
        raise SystemExit(f"IMPL must be one of {', '.join(FRESH)}")
    return impl, loop, then


def main(argv):
    impl, loop, then = parse(argv)
    start = time.perf_counter()
    FRESH[impl](loop)
    seconds = time.perf_counter() - start
    peak_mb = peak_rss_mb()  # before importing anything more

    import json

    from benchmarks.workloads import IMPLEMENTATIONS, memory_mb

    result = {"w7_fresh_s": seconds, "w7_fresh_rss_mb": peak_mb}
    if impl in ("ray", "pyactors-ray"):  # Ray's processes count
        tree = memory_mb(tree=True)
        result.update(
            w7_fresh_rss_mb=tree["rss_mb"],
            w7_fresh_pss_mb=tree["pss_mb"],
            w7_fresh_processes=tree["processes"],
            w7_fresh_driver_peak_rss_mb=peak_mb,
        )
    if then:
        from benchmarks.compare import run_workloads

        result.update(run_workloads(impl, loop, then))
    elif IMPLEMENTATIONS[impl].one_process:
        from benchmarks.compare import run_workloads

        result.update(run_workloads(impl, loop, []))  # the same teardown as with --then
    print(json.dumps(result), flush=True)
    os._exit(0)  # the runtime was stopped above, or was given up on (see run_workloads)


if __name__ == "__main__":
    main(sys.argv[1:])
