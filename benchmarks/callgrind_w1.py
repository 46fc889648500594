"""Callgrind driver: N W1 round trips, after the same setup whatever N is.

    valgrind --tool=callgrind --callgrind-out-file=/tmp/w1.N.out \\
        python -m benchmarks.callgrind_w1 N [--impl pyactors|floor] [--loop uvloop|asyncio]

Instructions per call = (Ir with N=2000 - Ir with N=0) / 2000: the N=0 run pays for the
interpreter, the imports, the actor's start and shutdown, so the difference is the calls alone.
"""

import argparse

from benchmarks.workloads import IMPLEMENTATIONS, LOOP_KINDS


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.callgrind_w1")
    parser.add_argument("calls", type=int)
    parser.add_argument("--impl", choices=IMPLEMENTATIONS, default="pyactors")
    parser.add_argument("--loop", choices=LOOP_KINDS, default=LOOP_KINDS[0])
    args = parser.parse_args()
    impl = IMPLEMENTATIONS[args.impl]
    with impl.start(args.loop) as target:
        impl.roundtrips(target, args.calls)


if __name__ == "__main__":
    main()
