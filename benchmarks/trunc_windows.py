"""trunc_normal_ by window: torch's two branches side by side (torch >= 2.12: normal proposals when
the mass of N(mean, std) inside [a, b] exceeds 0.3, else uniform proposals with a log-density test,
Note [trunc_normal_ by uniform proposals] in csrc/cpu/torch_stream_trunc_uniform_cpu.cpp).
Run: python -m benchmarks.trunc_windows [--log2 24] [--repeats 5] [--device cpu]

Per window: torch.nn.init.trunc_normal_, pyinit in the torch stream (and whether its values and
generator state equal torch's from the same seed), the philox stream, and the fill_ ceiling, timed
interleaved on one tensor (benchmarks/timing.py: median of the repeats).
"""

from __future__ import annotations

import argparse
import math
import os
import warnings

import torch

import pyinit

from .environment import environment, header_lines, load_lines
from .timing import Contender, Settings, measure

# (mean, std, a, b): the normal-proposal branch, then narrow windows of the uniform-proposal branch.
WINDOWS = {
    "[-2, 2] (normal branch)": (0.0, 1.0, -2.0, 2.0),
    "[-0.2, 0.2] centered": (0.0, 1.0, -0.2, 0.2),
    "[1, 2] tail": (0.0, 1.0, 1.0, 2.0),
    "[0.5, 0.51] tiny": (0.0, 1.0, 0.5, 0.51),
}


def _mass(mean: float, std: float, a: float, b: float) -> float:
    def cdf(x: float) -> float:
        return (1.0 + math.erf((x - mean) / std / math.sqrt(2.0))) / 2.0

    return cdf(b) - cdf(a)


def _same_as_torch(t: torch.Tensor, window: tuple) -> bool:
    """pyinit's torch stream writes torch's values and leaves torch's generator state."""
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    ours, theirs = torch.empty_like(t), torch.empty_like(t)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pyinit.PyinitFallbackWarning)
        pyinit.trunc_normal_(ours, *window, generator=g1)
    torch.nn.init.trunc_normal_(theirs, *window, generator=g2)
    return torch.equal(ours, theirs) and torch.equal(g1.get_state(), g2.get_state())


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.trunc_windows")
    p.add_argument("--log2", type=int, default=24, help="log2 of the element count (float32)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    env = environment()
    print("\n".join(header_lines(env)))
    n = 1 << args.log2
    t = torch.empty(n, device=args.device)
    settings = Settings(repeats=args.repeats, slow_budget_s=30.0, min_repeats=3)
    print(f"trunc_normal_ on 2^{args.log2} float32 ({args.device}), median of {args.repeats}, ms")
    print(
        f"{'window':<26} {'mass':>6} {'fill_':>8} {'torch.nn.init':>14} {'pyinit[torch]':>14} "
        f"{'speedup':>8} {'identical':>9} {'pyinit[philox]':>15}"
    )
    for label, window in WINDOWS.items():
        contenders = [
            Contender("fill_", lambda: t.fill_(0.5), role="ceiling"),
            Contender("torch", lambda w=window: torch.nn.init.trunc_normal_(t, *w), "baseline"),
            Contender("pyinit", lambda w=window: pyinit.trunc_normal_(t, *w), "pyinit"),
        ]

        def run_philox(w=window):
            with pyinit.stream("philox"):
                pyinit.trunc_normal_(t, *w)

        contenders.append(Contender("philox", run_philox, "pyinit", stream="philox"))
        result = measure(contenders, args.device, settings)
        ms = {k: (v["median_s"] or float("nan")) * 1e3 for k, v in result.items()}
        print(
            f"{label:<26} {_mass(*window):6.3f} {ms['fill_']:8.2f} {ms['torch']:14.1f} "
            f"{ms['pyinit']:14.1f} {ms['torch'] / ms['pyinit']:7.2f}x "
            f"{'yes' if _same_as_torch(t, window) else 'NO':>9} {ms['philox']:15.1f}"
        )
    env["load_average_end"] = list(os.getloadavg())
    print("\n".join(load_lines(env)))


if __name__ == "__main__":
    main()
