"""The bare philox generator: philox_bits_ (raw words, no transform) per CPU kernel variant, in
ns and cycles per 32-bit word, beside fill_ on the same tensor, and the float32 uniform_ / normal_
and trunc_normal_ (std 1, [-2, 2]) kernels on it (the generator plus a transform).
Run: python -m benchmarks.philox_bare [--threads 1] [--sizes 17,22] [--variants avx2,avx512]

Sizes (log2 words): 2^17 (512 KiB, L2-resident: the figure is the arithmetic, Philox4x32-10 plus the
transform for uniform_ / normal_) and 2^22 (16 MiB, written to memory). Cycles = ns x the clock: the
"cpu MHz" of /proc/cpuinfo (on a VM, the nominal clock the hypervisor reports, not a measured boost
clock), or --ghz. Best of --repeats batches (each at least 20 ms), the kernels interleaved.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import pyinit  # noqa: F401  (registers the operators)

from .contenders import PHILOX_SIMD

ops = torch.ops.pyinit


def cpu_ghz() -> float | None:
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")]
    except OSError:
        return None
    return max(mhz) / 1000 if mhz else None


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.philox_bare")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--ghz", type=float, help="CPU clock for the cycle figures")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sizes", default="17,22", help="log2 element counts")
    p.add_argument("--variants", help="of portable,avx2,avx512 (default: those this CPU runs)")
    args = p.parse_args()
    variants = ["portable", "avx2"]
    if torch.backends.cpu.get_cpu_capability() == "AVX512":
        variants.append("avx512")
    if args.variants:
        variants = [v for v in args.variants.split(",") if v in variants]
    ghz = args.ghz or cpu_ghz()
    torch.set_num_threads(args.threads)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"{args.threads} thread(s), clock {ghz} GHz, 1-min load {load}")
    print(f"{'words':>8} {'op':>13} {'kernel':>9} {'ns/word':>9} {'cycles/word':>12} {'GB/s':>7}")
    kinds = {
        "bits": lambda t: ops.philox_bits_(t.view(torch.int32), 1234, 5678, 0, [], []),
        "uniform_": lambda t: ops.philox_uniform_(t, -1.0, 1.0, 1234, 5678, [], []),
        "normal_": lambda t: ops.philox_normal_(t, 0.0, 1.0, 1234, 5678, [], []),
        "trunc_normal_": lambda t: ops.philox_trunc_normal_(t, 0.0, 1.0, -2.0, 2.0, 1, 2, [], []),
    }
    for log2 in [int(x) for x in args.sizes.split(",")]:
        t = torch.empty(1 << log2)
        calls = {("fill_", ""): lambda t=t: t.fill_(7.0)}
        for kind, op in kinds.items():
            for v in variants:

                def run(simd=PHILOX_SIMD[v], op=op, t=t):
                    os.environ["PYINIT_PHILOX_SIMD"] = simd
                    op(t)

                calls[(kind, v)] = run
        inner = {}
        for name, fn in calls.items():  # a batch of at least 20 ms
            fn()
            start = time.perf_counter()
            fn()
            inner[name] = max(1, int(0.02 / max(time.perf_counter() - start, 1e-9)))
        best = dict.fromkeys(calls, float("inf"))
        for _ in range(args.repeats):
            for name, fn in calls.items():
                start = time.perf_counter()
                for _ in range(inner[name]):
                    fn()
                best[name] = min(best[name], (time.perf_counter() - start) / inner[name])
        for (kind, v), s in best.items():
            ns = s * 1e9 / t.numel()
            cycles = f"{ns * ghz:12.2f}" if ghz else f"{'?':>12}"
            print(f"{'2^' + str(log2):>8} {kind:>13} {v:>9} {ns:9.3f} {cycles} {4 / ns:7.1f}")
    os.environ.pop("PYINIT_PHILOX_SIMD", None)


if __name__ == "__main__":
    main()
