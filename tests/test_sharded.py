"""DTensor shards (gloo, CPU, spawned processes): each rank's shard holds exactly its block of the
tensor one device would initialize, with no collective, and every generator ends where one
device's would (Note [DTensor shards], pyinit/_streams.py)."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import socket
from unittest import mock

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo"
)

INITIALIZERS = [
    ("uniform_", {"a": -1.0, "b": 2.0}),
    ("normal_", {"std": 0.5}),
    ("kaiming_uniform_", {"a": math.sqrt(5)}),
    ("xavier_normal_", {}),
    ("trunc_normal_", {"std": 0.02}),
    ("masked_uniform_", {}),
    ("sparse_", {"sparsity": 0.3}),
    ("orthogonal_", {"gain": 2.0}),
    ("constant_", {"val": 3.0}),
    # pyinit extensions (docs/initializers.md): compositions of the primitives above
    ("lecun_normal_", {}),
    ("variance_scaling_", {"scale": 2.0, "mode": "fan_geo_avg", "distribution": "uniform"}),
    ("trunc_normal_tf_", {"mean": 0.1, "std": 0.02}),
    ("orthogonal_columns_", {"gain": 2.0, "column_axis": 1}),
    ("delta_orthogonal_", {"gain": 2.0}),
]

_CONV_INITIALIZERS = ("orthogonal_", "orthogonal_columns_", "kaiming_uniform_")


def _cases(world: int):
    """(shape, mesh shape, placements as names) for this world size."""
    cases = [
        ((7, 5), (world,), ("S0",)),  # uneven rows
        ((6, 9), (world,), ("S1",)),  # uneven columns
        ((3, 4), (world,), ("S0",)),  # with 4 ranks, one shard is empty
        ((5, 3), (world,), ("R",)),
        ((6, 4, 3), (world,), ("S0",)),  # a Conv1d weight (delta_orthogonal_)
        # Conv2d weights: orthogonal_ of the (rows, cols) view; sharded on a flattened dimension
        ((8, 3, 3, 3), (world,), ("S0",)),
        ((8, 3, 3, 3), (world,), ("S1",)),  # uneven from 2 ranks, an empty shard with 4
        ((3, 5, 2, 2), (world,), ("S0",)),  # with 4 ranks, one shard is empty
    ]
    if world == 4:
        cases += [
            ((9, 6), (2, 2), ("S0", "S1")),
            ((8, 6), (2, 2), ("SS0", "S0")),  # FSDP2 + TP style strided shard
            ((7, 5), (2, 2), ("R", "S0")),
        ]
    return cases


def _placements(names):
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.placement_types import _StridedShard

    table = {
        "S0": Shard(0),
        "S1": Shard(1),
        "R": Replicate(),
        "SS0": _StridedShard(0, split_factor=2),
    }
    return [table[n] for n in names]


class _CountCollectives(torch.utils._python_dispatch.TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace in ("c10d", "_c10d_functional", "c10d_functional"):
            self.count += 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def _gloo(rank: int, world: int, port: int):
    """A worker's gloo process group on 127.0.0.1:port, destroyed on the way out."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _worker(rank: int, world: int, port: int, results) -> None:
    with _gloo(rank, world, port):
        import warnings

        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.tensor import distribute_tensor

        import pyinit

        warnings.simplefilter("error", pyinit.PyinitFallbackWarning)
        torch.set_num_threads(1)
        checked = 0
        # The counter sees collectives (so a count of 0 below means something).
        with _CountCollectives() as probe:
            dist.all_reduce(torch.ones(1))
        assert probe.count >= 1, "the collective counter saw nothing"
        for shape, mesh_shape, names in _cases(world):
            mesh = init_device_mesh("cpu", mesh_shape)
            placements = _placements(names)
            for stream in ("torch", "philox"):
                for name, kwargs in INITIALIZERS:
                    if name == "sparse_" and len(shape) != 2:
                        continue
                    if name == "delta_orthogonal_" and len(shape) != 3:
                        continue
                    if len(shape) == 4 and name not in _CONV_INITIALIZERS:
                        continue  # the 4-D cases are there for orthogonal_'s flattened view
                    fn = getattr(pyinit, name)
                    torch.manual_seed(1234)
                    full = torch.empty(shape)
                    with pyinit.stream(stream):
                        fn(full, **kwargs)
                    state_one_device = torch.get_rng_state()
                    expected = distribute_tensor(full, mesh, placements).to_local()
                    dt = distribute_tensor(torch.full(shape, float("nan")), mesh, placements)
                    version = dt._version
                    torch.manual_seed(1234)
                    with _CountCollectives() as counter, pyinit.stream(stream):
                        out = fn(dt, **kwargs)
                    where = f"{name} {stream} {shape} {names} rank {rank}/{world}"
                    assert out is dt, where
                    assert counter.count == 0, f"{where}: {counter.count} collectives"
                    assert torch.equal(dt.to_local(), expected), where
                    assert torch.equal(torch.get_rng_state(), state_one_device), where
                    assert dt._version > version, where
                    checked += 1
        # Distinct shards differ (torch 2.13's own nn.init gives every rank the same values).
        mesh = init_device_mesh("cpu", (world,))
        dt = distribute_tensor(torch.zeros(world * 4, 8), mesh, _placements(("S0",)))
        torch.manual_seed(0)
        pyinit.kaiming_uniform_(dt)
        locals_ = [None] * world
        dist.all_gather_object(locals_, dt.to_local())
        for other in locals_[1:]:
            assert not torch.equal(other, locals_[0])
        results.put((rank, checked))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(worker, world: int) -> dict:
    """Runs worker(rank, world, port, results) on `world` gloo processes; {rank: what it put}."""
    ctx = mp.get_context("spawn")
    for attempt in range(2):
        results = ctx.SimpleQueue()
        try:
            # A child that aborts prints its Python stack (the data the crash below still lacks).
            with mock.patch.dict(os.environ, {"PYTHONFAULTHANDLER": "1"}):
                mp.start_processes(
                    worker, args=(world, _free_port(), results), nprocs=world, start_method="spawn"
                )
            break
        except mp.ProcessExitedException as exc:
            # Known, not yet diagnosed: now and then (about 1 run in 6 of the FSDP2 test, rarely
            # the DTensor one) a child aborts ("terminate called without an active exception",
            # SIGABRT): a C++ std::thread destroyed while joinable, not one of pyinit's (its
            # helpers are detached). One retry on that crash only; a failed assertion
            # (ProcessRaisedException) fails at once.
            if attempt or "SIGABRT" not in str(exc):
                raise
    return dict(results.get() for _ in range(world))


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_equal_one_device(world):
    counts = _spawn(_worker, world)
    assert sorted(counts) == list(range(world))
    assert all(c > 20 for c in counts.values()), counts


# ---- FSDP2 and tensor parallelism, end to end ---------------------------------------------------


def _mlp():
    from torch import nn

    return nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3), nn.LayerNorm(3))


def _mixed():
    """Tensors the sharded replay must make whole (Note [Sharded replay]): a partial write
    (padding_idx), a write after the draw (mul_), a tensor copied into another; and a Linear it
    computes shard by shard (in the philox stream)."""
    from torch import nn

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(7, 4, padding_idx=2)
            self.scaled = nn.Parameter(torch.empty(5, 4))
            nn.init.normal_(self.scaled)
            with torch.no_grad():
                self.scaled.mul_(0.5)
            self.source = nn.Parameter(torch.empty(6, 4))
            nn.init.uniform_(self.source)
            self.copy = nn.Parameter(torch.empty(6, 4))
            with torch.no_grad():
                self.copy.copy_(self.source)
            self.proj = nn.Linear(4, 5)

    return Mixed()


def _trunc():
    """A parameter of trunc_normal_'s (a position embedding), and a Linear."""
    from torch import nn

    class Trunc(nn.Module):
        def __init__(self):
            super().__init__()
            self.pos = nn.Parameter(torch.empty(9, 6))
            nn.init.trunc_normal_(self.pos, std=0.02)
            self.proj = nn.Linear(6, 5)

    return Trunc()


def _model_worker(rank: int, world: int, port: int, results) -> None:
    with _gloo(rank, world, port):
        import warnings

        from torch import nn
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        from torch.distributed.tensor.parallel import (
            ColwiseParallel,
            RowwiseParallel,
            parallelize_module,
        )

        import pyinit

        warnings.simplefilter("error", pyinit.PyinitFallbackWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        torch.set_num_threads(1)
        mesh = init_device_mesh("cpu", (world,))
        rules = {
            nn.Linear: {
                "weight": ("kaiming_uniform_", {"a": math.sqrt(5)}),
                "bias": ("normal_", {"std": 0.1}),
            }
        }

        def full_state(model):
            return {
                k: v.full_tensor() if hasattr(v, "full_tensor") else v
                for k, v in model.state_dict().items()
            }

        def same(a, b):
            return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

        def deferred_fsdp2(build, seed, where):
            """build() in deferred(), fully_shard, materialize_ == build() eagerly from `seed`
            (values and generator state); returns the eager model, the generator state after it,
            the sharded model and the deferred() block's record."""
            torch.manual_seed(seed)
            with pyinit.patch_torch_init():  # eager construction in this stream
                eager = build()
            eager_rng = torch.get_rng_state()
            with pyinit.deferred():
                deferred = build()
            fully_shard(deferred, mesh=mesh)
            torch.manual_seed(seed)
            pyinit.materialize_(deferred, "cpu")
            assert same(full_state(deferred), eager.state_dict()), f"{where} deferred"
            assert torch.equal(torch.get_rng_state(), eager_rng), f"{where} generator"
            return eager, eager_rng, deferred, pyinit._deferred._records[-1]

        checked = 0
        # "torch+blocks": the torch stream with its writes computed shard by shard in the sharded
        # replay as on CUDA (Note [The torch stream in the sharded replay]), here by the CPU
        # operators on blocks.
        for variant in ("torch", "torch+blocks", "philox"):
            stream = variant.split("+")[0]
            devices = frozenset({"cpu", "cuda"}) if variant == "torch+blocks" else frozenset()
            pyinit._deferred._TORCH_BLOCK_REPLAY_DEVICES = devices
            with pyinit.stream(stream):
                # init_module_ on an FSDP2-sharded model == on the model on one device
                torch.manual_seed(0)
                one = _mlp()
                torch.manual_seed(5)
                pyinit.init_module_(one, rules)
                torch.manual_seed(0)
                sharded = _mlp()
                fully_shard(sharded, mesh=mesh)
                torch.manual_seed(5)
                pyinit.init_module_(sharded, rules)
                assert same(full_state(sharded), one.state_dict()), f"fsdp2 init_module_ {stream}"
                # tensor parallelism (colwise then rowwise)
                torch.manual_seed(0)
                tp = _mlp()
                plan = {"0": ColwiseParallel(), "2": RowwiseParallel()}
                parallelize_module(tp, mesh, plan)
                torch.manual_seed(5)
                pyinit.init_module_(tp, rules)
                assert same(full_state(tp), one.state_dict()), f"tp init_module_ {stream}"
                # deferred construction, fully_shard, materialize_ == eager construction
                eager, eager_rng, deferred, record = deferred_fsdp2(_mlp, 0, f"fsdp2 {variant}")
                # Note [Sharded replay]: philox, torch+blocks and fills computed shard by shard,
                # never whole
                assert len(record.pending) == (2 if variant == "torch" else 6), variant
                assert not record.pending.keys() & record.real.keys()
                deferred(torch.rand(4, 6)).sum().backward()  # FSDP2 still works on it
                # tensor parallelism after and inside the deferred() block == eager construction
                for inside in (False, True):
                    with pyinit.deferred():
                        tp = _mlp()
                        if inside:
                            parallelize_module(tp, mesh, plan)
                    if not inside:
                        parallelize_module(tp, mesh, plan)
                    torch.manual_seed(0)
                    pyinit.materialize_(tp, "cpu")
                    where = f"tp deferred {variant}, sharded {'inside' if inside else 'after'}"
                    assert same(full_state(tp), eager.state_dict()), where
                    assert torch.equal(torch.get_rng_state(), eager_rng), where
                # a model whose tensors the sharded replay cannot all compute shard by shard
                record = deferred_fsdp2(_mixed, 1, f"mixed {variant}")[3]
                assert len(record.pending) == (0 if variant == "torch" else 2), variant
                # trunc_normal_ computed shard by shard too (torch+blocks: trunc_normal_blocks_)
                record = deferred_fsdp2(_trunc, 2, f"trunc {variant}")[3]
                assert len(record.pending) == (0 if variant == "torch" else 3), variant
                checked += 3
        pyinit._deferred._TORCH_BLOCK_REPLAY_DEVICES = frozenset({"cuda"})
        # A DTensor of another shape than the tensor it replaced, made in the block from a local
        # shard: its values are the replayed shard's, or, when no recorded operator wrote that
        # shard, materialize_ raises (Note [Sharding inside deferred()]).
        from torch.distributed.tensor import DTensor, Shard

        for written in (False, True):
            with pyinit.deferred():
                odd = nn.Linear(4, 8)
                local = torch.empty(2, 4)
                if written:
                    local.fill_(3.0)
                odd.weight = nn.Parameter(DTensor.from_local(local, mesh, [Shard(0)]))
            if written:
                pyinit.materialize_(odd, "cpu")
                assert torch.equal(odd.weight.to_local(), torch.full((2, 4), 3.0))
            else:
                with pytest.raises(RuntimeError, match="cannot tell the values of weight"):
                    pyinit.materialize_(odd, "cpu")
        results.put((rank, checked))


@pytest.mark.parametrize("world", [2, 3])
def test_fsdp2_and_tensor_parallel_models_equal_one_device(world):
    assert _spawn(_model_worker, world) == {r: 9 for r in range(world)}


# ---- ties across an FSDP2 model, fully_shard inside deferred() ----------------------------------


def _tied_lm():
    """A tied-embedding LM: head.weight is emb.weight. 4 rows: with 3 ranks FSDP2's chunks are
    2, 2, 0 (an empty shard of the tie); 5 features: the blocks' shards are uneven."""
    from torch import nn

    class TiedLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(4, 5)
            self.blocks = nn.ModuleList([nn.Linear(5, 5), nn.Linear(5, 5)])
            self.head = nn.Linear(5, 4, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, tokens):
            x = self.emb(tokens)
            for block in self.blocks:
                x = torch.relu(block(x))
            return self.head(x)

    return TiedLM()


def _tie_worker(rank: int, world: int, port: int, results) -> None:
    with _gloo(rank, world, port):
        import warnings

        from torch import nn
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        import pyinit

        warnings.simplefilter("error", pyinit.PyinitFallbackWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        torch.set_num_threads(1)
        mesh = init_device_mesh("cpu", (world,))
        # Both tied names match the weight rule: initialized once all the same.
        rules = {
            (nn.Linear, nn.Embedding): {
                "weight": ("kaiming_uniform_", {"a": math.sqrt(5)}),
                "bias": ("normal_", {"std": 0.1}),
            }
        }

        def shard(model):  # the blocks on their own, the tie in the root's group
            for block in model.blocks:
                fully_shard(block, mesh=mesh)
            fully_shard(model, mesh=mesh)
            return model

        def check(model, expected, state, where):
            assert model.head.weight is model.emb.weight, where
            assert type(model.emb.weight).__name__ == "DTensor", where
            local = model.emb.weight.to_local()
            assert model.head.weight.to_local().data_ptr() == local.data_ptr(), where
            got = {k: v.full_tensor() for k, v in model.state_dict().items()}
            assert got.keys() == expected.keys(), where
            for k in got:
                assert torch.equal(got[k], expected[k]), f"{where}: {k}"
            assert torch.equal(torch.get_rng_state(), state), f"{where}: generator"
            model(torch.tensor([[0, 3, 1]])).sum().backward()  # FSDP2 still works on it

        checked = 0
        for stream in ("torch", "philox"):
            with pyinit.stream(stream):
                # init_module_ on the sharded model == on one device; the tie initialized once
                torch.manual_seed(0)
                one = _tied_lm()
                torch.manual_seed(5)
                report = pyinit.init_module_(one, rules)
                assert report["head.weight"].status == "tied"
                state = torch.get_rng_state()
                torch.manual_seed(0)
                sharded = shard(_tied_lm())
                torch.manual_seed(5)
                report = pyinit.init_module_(sharded, rules)
                assert report["head.weight"].status == "tied", f"init_module_ {stream}"
                check(sharded, one.state_dict(), state, f"init_module_ {stream}")
                # deferred construction == eager construction, sharded after or inside the block
                torch.manual_seed(0)
                with pyinit.patch_torch_init():
                    eager = _tied_lm()
                state = torch.get_rng_state()
                with pyinit.deferred():
                    after = _tied_lm()
                shard(after)
                with pyinit.deferred():
                    inside = shard(_tied_lm())
                for model, where in ((after, "after"), (inside, "inside")):
                    torch.manual_seed(0)
                    pyinit.materialize_(model, "cpu")
                    check(model, eager.state_dict(), state, f"deferred, sharded {where} {stream}")
                    # Note [Sharded replay]: sharded after the block, philox computes every tensor
                    # (the tie once) on its shard only; sharded inside, everything is made whole
                    records = pyinit._deferred._records
                    pending = next(r for r in reversed(records) if model.emb in r.sources).pending
                    expected = 5 if (stream, where) == ("philox", "after") else 0
                    assert len(pending) == expected, f"pending {where} {stream}"
                checked += 3
        # A tie that fully_shard split (each owner its own group) is refused, before any draw.
        with pyinit.deferred():
            split = _tied_lm()
        fully_shard(split.emb, mesh=mesh)
        fully_shard(split.head, mesh=mesh)
        fully_shard(split, mesh=mesh)
        state = torch.get_rng_state()
        with pytest.raises(RuntimeError, match="one fully_shard group"):
            pyinit.materialize_(split, "cpu")
        assert torch.equal(torch.get_rng_state(), state)
        # Writing into a DTensor inside the block (after fully_shard there) raises.
        with pytest.raises(NotImplementedError, match="inside pyinit.deferred"):
            with pyinit.deferred():
                pyinit.normal_(shard(_tied_lm()).emb.weight)
        with pytest.raises(RuntimeError, match="wrote into a DTensor"):
            with pyinit.deferred():
                shard(_tied_lm()).emb.weight.data.zero_()
        results.put((rank, checked + 3))


@pytest.mark.parametrize("world", [1, 2, 3])
def test_fsdp2_ties_and_sharding_inside_deferred_equal_one_device(world):
    assert _spawn(_tie_worker, world) == {r: 9 for r in range(world)}


# ---- the torch stream on each rank's elements only (CUDA) -------------------------------------

# The torch stream's initializers that run the operators on blocks (Note [The torch stream on
# blocks], csrc/torch_blocks.h); on CUDA each rank computes only its own elements.
_BLOCK_INITIALIZERS = [
    ("uniform_", {"a": -1.0, "b": 2.0}),
    ("normal_", {"std": 0.5}),
    ("kaiming_uniform_", {"a": math.sqrt(5)}),
    ("xavier_normal_", {}),
    ("masked_uniform_", {}),
    ("trunc_normal_", {"std": 0.02}),
    ("trunc_normal_", {"mean": 0.1, "std": 1.5, "a": -2.0, "b": 2.5}),
    ("sparse_", {"sparsity": 0.3}),
]


def _no_whole_tensor(dt, fill):
    raise AssertionError("drew the whole tensor (_sharding.fill_whole)")


def _blocks_worker(device: str, rank: int, world: int, port: int, results) -> None:
    """Two ranks on one device (gloo, no collective in the calls; on CUDA both on GPU 0): DTensors
    made from local shards (DTensor.from_local, so nothing is scattered), initialized in the torch
    stream, each compared with its block of the tensor initialized whole on the same device from the
    same seed, and the device's generator with one device's. None may draw the whole tensor
    (_sharding.fill_whole fails here)."""
    with _gloo(rank, world, port):
        import warnings

        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.tensor import DTensor, Shard

        import pyinit

        warnings.simplefilter("error", pyinit.PyinitFallbackWarning)
        torch.set_num_threads(1)
        if device == "cuda":
            torch.cuda.set_device(0)
        rng_state = torch.cuda.get_rng_state if device == "cuda" else torch.get_rng_state
        mesh = init_device_mesh(device, (world,))
        checked = 0
        # around torch's CUDA grid (S * U = 1_081_344 on an H100/H200), uneven and column shards
        for shape, dim in [((1100, 1000), 0), ((1100, 1000), 1), ((7, 5), 0), ((3, 270_337), 1)]:
            for name, kwargs in _BLOCK_INITIALIZERS:
                fn = getattr(pyinit, name)
                torch.manual_seed(99)
                full = torch.empty(shape, device=device)
                fn(full, **kwargs)
                state_one_device = rng_state()
                expected = torch.tensor_split(full, world, dim=dim)[rank]  # Shard's chunks here
                local = torch.full(expected.shape, float("nan"), device=device)
                dt = DTensor.from_local(
                    local, mesh, [Shard(dim)], run_check=False, shape=shape, stride=full.stride()
                )
                torch.manual_seed(99)
                with (
                    _CountCollectives() as counter,
                    mock.patch.object(pyinit._sharding, "fill_whole", _no_whole_tensor),
                ):
                    fn(dt, **kwargs)
                where = f"{name} {device} {shape} Shard({dim}) rank {rank}/{world}"
                assert counter.count == 0, where
                assert torch.equal(dt.to_local(), expected), where
                assert torch.equal(rng_state(), state_one_device), where
                checked += 1
        results.put((rank, checked))


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=(
                pytest.mark.cuda,
                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
            ),
        ),
    ],
)
def test_torch_stream_blocks_equal_one_device(device):
    counts = _spawn(functools.partial(_blocks_worker, device), 2)
    assert counts == {0: 32, 1: 32}
