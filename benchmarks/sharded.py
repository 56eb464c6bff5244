"""Sharded initialization on gloo processes: ``python -m benchmarks.sharded [--worlds 2,4]``.

Each world size spawns that many CPU processes (gloo), makes a ``Shard(0)`` DTensor of
``--shape`` (float32) and times, side by side in one interleaved loop (a barrier before each
call; the figure is the slowest rank's, median over repeats):

- ``fill_ (local)``: ``fill_`` on the local shard, the ceiling;
- ``torch.nn.init``: torch's own initializer (``--initializer``: ``kaiming_uniform_``, a = sqrt(5),
  or ``trunc_normal_``, std 0.02) on the DTensor (on torch 2.13 every rank gets the same values:
  not the single-device tensor);
- ``pyinit[torch]``: equal to the single-device tensor; every rank draws the whole tensor;
- ``pyinit[philox]``: equal to the single-device philox tensor; every rank writes only its shard.

Then ``materialize_`` of an FSDP2 model built in ``pyinit.deferred()`` (``--layers`` x
``nn.Linear(--width, --width)``, each layer and the root fully_shard-ed; construction and sharding
untimed): philox with the sharded replay (each rank computes its shards only, Note [Sharded
replay] in pyinit/_deferred.py), philox with it turned off (every parameter made whole on every
rank, as before), and the torch stream (whole on every rank: sequential).

Torch threads per process: cores // world (at least 1).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

# --initializer: its keyword arguments.
_INITIALIZERS = {"kaiming_uniform_": {"a": math.sqrt(5)}, "trunc_normal_": {"std": 0.02}}


def _worker(rank, world, port, shape, repeats, layers, width, initializer, queue):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.tensor import Shard, distribute_tensor

        import pyinit

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        mesh = init_device_mesh("cpu", (world,))
        dt = distribute_tensor(torch.zeros(shape), mesh, [Shard(0)])
        kwargs = _INITIALIZERS[initializer]

        def fill():
            with torch.no_grad():
                dt.to_local().fill_(0.5)

        def in_stream(name):
            def run():
                with pyinit.stream(name):
                    getattr(pyinit, initializer)(dt, **kwargs)

            return run

        from torch import nn
        from torch.distributed.fsdp import fully_shard

        from pyinit import _deferred

        def materialize(stream, sharded_replay=True):
            def run():
                with pyinit.stream(stream):
                    with pyinit.deferred():
                        model = nn.Sequential(*(nn.Linear(width, width) for _ in range(layers)))
                    for layer in model:
                        fully_shard(layer, mesh=mesh)
                    fully_shard(model, mesh=mesh)
                    _deferred._SHARDED_REPLAY = sharded_replay
                    try:
                        dist.barrier()
                        t0 = time.perf_counter()
                        pyinit.materialize_(model, "cpu")
                        return time.perf_counter() - t0
                    finally:
                        _deferred._SHARDED_REPLAY = True

            return run

        contenders = {
            "fill_ (local)": fill,
            "torch.nn.init": lambda: getattr(torch.nn.init, initializer)(dt, **kwargs),
            "pyinit[torch]": in_stream("torch"),
            "pyinit[philox]": in_stream("philox"),
            "materialize_[philox]": materialize("philox"),
            "  (full replay)": materialize("philox", sharded_replay=False),
            "materialize_[torch]": materialize("torch"),
        }
        times = {k: [] for k in contenders}
        for fn in contenders.values():  # warm-up
            fn()
        for _ in range(repeats):
            for label, fn in contenders.items():
                dist.barrier()
                t0 = time.perf_counter()
                timed = fn()  # materialize_ times itself (construction and sharding untimed)
                elapsed = time.perf_counter() - t0
                elapsed = torch.tensor([timed if isinstance(timed, float) else elapsed])
                dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)  # the slowest rank
                times[label].append(float(elapsed))
        if rank == 0:
            queue.put({k: statistics.median(v) for k, v in times.items()})
    finally:
        dist.destroy_process_group()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sharded", description=__doc__)
    p.add_argument("--worlds", default="2,4", help="world sizes (default 2,4)")
    p.add_argument("--shape", default="8192,2048", help="global shape (default 8192,2048)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--port", type=int, default=29600, help="gloo port base (+ world size)")
    p.add_argument("--layers", type=int, default=8, help="Linear layers of the materialize_ model")
    p.add_argument("--width", type=int, default=2048, help="their in/out features")
    p.add_argument("--initializer", default="kaiming_uniform_", choices=sorted(_INITIALIZERS))
    args = p.parse_args(argv)
    shape = tuple(int(s) for s in args.shape.split(","))
    print(
        f"sharded {args.initializer} on a Shard(0) DTensor {shape} float32, gloo, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}; slowest rank, median of "
        f"{args.repeats}; materialize_: {args.layers} x nn.Linear({args.width}, {args.width}) "
        "under FSDP2"
    )
    print(f"{'world':>5}  {'contender':<22}{'median':>10}  {'x fill_':>8}  {'vs torch':>9}")
    ctx = mp.get_context("spawn")
    for world in (int(w) for w in args.worlds.split(",")):
        queue = ctx.SimpleQueue()
        mp.start_processes(
            _worker,
            args=(
                world,
                args.port + world,
                shape,
                args.repeats,
                args.layers,
                args.width,
                args.initializer,
                queue,
            ),
            nprocs=world,
            start_method="spawn",
        )
        result = queue.get()
        fill, base = result["fill_ (local)"], result["torch.nn.init"]
        full = result["  (full replay)"]
        for label, t in result.items():
            if label.startswith("materialize_") or label.startswith("  "):
                # materialize_ of the whole model: compared with the full replay, not with fill_
                speedup = f"{full / t:>8.2f}x vs full replay"
                print(f"{world:>5}  {label:<22}{t * 1e3:>8.2f} ms  {speedup}")
                continue
            print(f"{world:>5}  {label:<22}{t * 1e3:>8.2f} ms  {t / fill:>8.2f}  {base / t:>8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
