"""CPU initializers under contention: ``python -m benchmarks.contention [--busy 0,1,2]``.

For each count of busy processes (each a Python loop that keeps one core busy), times torch.nn.init
and pyinit (both streams) side by side, interleaved, at sizes 2^12..2^22 float32, median of
``--repeats``; the last column is the slowest pyinit contender's speedup over torch.nn.init (a value
below 1 would mean pyinit is slower than torch there). See Note [The caller never waits for a thread
that has not started] (csrc/cpu/parallel.h).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch

import pyinit

INITIALIZERS = ("uniform_", "normal_", "kaiming_uniform_")


def _contenders(name: str, w: torch.Tensor):
    def torch_init():
        getattr(torch.nn.init, name)(w)

    def pyinit_torch():
        getattr(pyinit, name)(w)

    def pyinit_philox():
        getattr(pyinit.philox, name)(w)

    return {
        "torch.nn.init": torch_init,
        "pyinit[torch]": pyinit_torch,
        "pyinit[philox]": pyinit_philox,
    }


def _measure(contenders: dict, repeats: int) -> dict[str, float]:
    times = {k: [] for k in contenders}
    for fn in contenders.values():
        fn()
    for _ in range(repeats):
        for label, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.contention", description=__doc__)
    p.add_argument("--busy", default="0,1,2", help="busy processes per run (default 0,1,2)")
    p.add_argument("--sizes", default="12,14,16,18,20,22", help="log2 element counts")
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args(argv)
    sizes = [1 << int(e) for e in args.sizes.split(",")]
    print(
        f"torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
        f"median of {args.repeats}, float32; ms per call"
    )
    header = f"{'busy':>4} {'initializer':<17}{'elements':>9}"
    print(f"{header}  {'torch.nn.init':>13} {'pyinit[torch]':>13} {'pyinit[philox]':>14}  worst")
    worst_overall = float("inf")
    for busy in (int(b) for b in args.busy.split(",")):
        loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            time.sleep(0.2)
            for name in INITIALIZERS:
                for n in sizes:
                    w = torch.empty(n // 256, 256) if n >= 256 else torch.empty(1, n)
                    r = _measure(_contenders(name, w), args.repeats)
                    base = r["torch.nn.init"]
                    worst = min(base / r["pyinit[torch]"], base / r["pyinit[philox]"])
                    worst_overall = min(worst_overall, worst)
                    print(
                        f"{busy:>4} {name:<17}{f'2^{n.bit_length() - 1}':>9}  "
                        f"{base * 1e3:>13.3f} {r['pyinit[torch]'] * 1e3:>13.3f} "
                        f"{r['pyinit[philox]'] * 1e3:>14.3f}  {worst:>5.2f}x"
                    )
        finally:
            for loop in loops:
                loop.kill()
    print(f"slowest pyinit contender vs torch.nn.init, over every row: {worst_overall:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
