"""The seed's concurrency-group example: which group, thread and event loop each call runs in.

Run: python examples/quickstart.py   (with `import ray` instead, it runs on Ray unchanged)
"""

import asyncio
import threading

import pyactors as ray


def where(method):
    """Where the calling method runs: its name, thread and event loop."""
    return method, threading.current_thread().name, id(asyncio.get_running_loop())


@ray.remote(concurrency_groups={"io": 2, "compute": 4})
class AsyncIOActor:
    def __init__(self):
        pass

    @ray.method(concurrency_group="io")
    async def f1(self):
        return where("f1")

    @ray.method(concurrency_group="io")
    def f2(self):
        return where("f2")

    @ray.method(concurrency_group="compute")
    def f3(self):
        return where("f3")

    @ray.method(concurrency_group="compute")
    def f4(self):
        return where("f4")

    def f5(self):
        return where("f5")


def main():
    a = AsyncIOActor.remote()
    refs = [
        a.f1.remote(),  # executed in the "io" group.
        a.f2.remote(),  # executed in the "io" group.
        a.f3.remote(),  # executed in the "compute" group.
        a.f4.remote(),  # executed in the "compute" group.
        a.f5.remote(),  # executed in the default group.
        a.f2.options(concurrency_group="compute").remote(),  # executed in "compute".
        a.f2.options().remote(),  # executed in "io" again.
    ]
    loops = {}
    print(f"{'call':<42} {'thread':<42} loop")
    for call, (_, thread, loop) in zip(
        ["f1", "f2", "f3", "f4", "f5", 'f2.options(concurrency_group="compute")', "f2.options()"],
        ray.get(refs),
        strict=True,
    ):
        print(f"{call:<42} {thread:<42} #{loops.setdefault(loop, len(loops) + 1)}")

    async def from_asyncio():
        # ObjectRefs are asyncio futures: await them, gather them, wait on them.
        return await asyncio.gather(a.f1.remote(), a.f5.remote())

    print("awaited from asyncio:", [m for m, _, _ in asyncio.run(from_asyncio())])
    ray.shutdown()


if __name__ == "__main__":
    main()
