"""The CPU torch stream's parallel draw by MT19937 jump-ahead (Note [MT19937 jump-ahead] in
csrc/cpu/mt19937_jump.h): a jump of J words leaves at::mt19937 exactly as drawing J words does, and
uniform_ / masked_uniform_ / normal_ / trunc_normal_ drawn in parallel ranges write what
torch.nn.init writes and leave the generator in torch's state, at 1, 2 and 4 threads.

The parallel path starts at 2^22 words and 3 threads by default; these tests lower the thresholds
(2 threads, 0 words) and the jump cost the range split assumes through a test hook of pyinit._C,
so that small tensors take it (every range split, every alignment case)."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import torch.nn.init as tinit
from helpers import DTYPES, assert_passes_at_capabilities, bitwise_equal, differing, dtypes

import pyinit
from pyinit import _C

ROOT = Path(__file__).resolve().parent.parent

BLOCK = 624
COUNTS = [0, 1, 2, 623, 624, 625, 1247, 1248, 1249, 5 * BLOCK, 7 * BLOCK + 300]
COUNTS += [2**k + d for k in (10, 14, 17, 20) for d in (-1, 0, 1)]
COUNTS += [BLOCK * 0b1011011 + 17, BLOCK * (2**12 - 1) + 623]


@pytest.mark.parametrize("start", [0, 1, 300, 623, 624, 625, 2000])
@pytest.mark.parametrize("count", COUNTS)
def test_advance_matches_draw(start, count):
    # From a fresh seed (next_ = 0, left_ = 1), a partly used array and an exhausted one.
    equal, _, _ = _C._mt19937_advance_check(20260101 + start, start, count)
    assert equal, f"jump of {count} words after {start} differs from drawing them"


def test_jump_table_is_generated():
    # The header holds exactly what tools/gen_mt19937_jump.py derives: entries beyond the jumps
    # tested above are squares of the tested ones.
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_mt19937_jump.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr


@contextmanager
def jump_settings(min_words: int, cost_words: int):
    previous = _C._set_torch_stream_jump(min_words, cost_words, 2)
    try:
        yield
    finally:
        _C._set_torch_stream_jump(*previous)


@pytest.fixture
def jump_everywhere():
    """The parallel path for every size (threshold 0 words), ranges split evenly."""
    with jump_settings(0, 0):
        yield


INITS = {
    "uniform_": (
        lambda t, g: pyinit.uniform_(t, -3.3, 7.1, generator=g),
        lambda t, g: tinit.uniform_(t, -3.3, 7.1, generator=g),
    ),
    "masked_uniform_": (
        lambda t, g: pyinit.masked_uniform_(t, generator=g),
        lambda t, g: (tinit.uniform_(t, -10.0, 10.0, generator=g), t.mul_(t.abs() >= 5.0)),
    ),
    "normal_": (
        lambda t, g: pyinit.normal_(t, 0.5, 2.0, generator=g),
        lambda t, g: tinit.normal_(t, 0.5, 2.0, generator=g),
    ),
    "trunc_normal_": (
        lambda t, g: pyinit.trunc_normal_(t, 0.0, 1.0, -2.0, 2.0, generator=g),
        lambda t, g: tinit.trunc_normal_(t, 0.0, 1.0, -2.0, 2.0, generator=g),
    ),
    # The uniform-proposal branch (mass 0.14 inside [1, 2];
    # csrc/cpu/torch_stream_trunc_uniform_cpu.cpp).
    "trunc_normal_uniform": (
        lambda t, g: pyinit.trunc_normal_(t, 0.0, 1.0, 1.0, 2.0, generator=g),
        lambda t, g: tinit.trunc_normal_(t, 0.0, 1.0, 1.0, 2.0, generator=g),
    ),
}

# Around the range splits of 2 and 4 threads, the 16-element Box-Muller block, the 624-word array
# and the 2^14-word draw blocks; odd sizes and sizes with many set bits.
SIZES = [1, 15, 16, 17, 623, 625, 1249, 5000, 16384 + 7, 40000, 99999]
# Words drawn before the call: a fresh seed, a partly used array, one exactly used up.
PREDRAWN = [0, 101, 624]


def _run(name, shape, dtype, predrawn, use_generator, view=None):
    results = []
    for init in (INITS[name][1], INITS[name][0]):
        torch.manual_seed(7)
        gen = torch.Generator().manual_seed(11) if use_generator else None
        if predrawn:
            torch.empty(predrawn).uniform_(generator=gen)  # one word per float32 element
        base = torch.empty(shape, dtype=dtype)
        init(base if view is None else view(base), gen)
        states = [torch.get_rng_state()] + ([gen.get_state()] if gen is not None else [])
        results.append((base, states))
    (t_out, t_states), (p_out, p_states) = results
    assert bitwise_equal(p_out, t_out), differing(p_out, t_out)
    same_states = all(torch.equal(a, b) for a, b in zip(p_states, t_states, strict=True))
    assert same_states, "generator state differs after the call"


@pytest.mark.parametrize("name", sorted(INITS))
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("predrawn", PREDRAWN)
@pytest.mark.parametrize("cost", [0, 700], ids=["even", "cost700"])
def test_float32_sizes(threads, name, size, predrawn, cost):
    # cost700: range 0 (no jump) is longer than the others by a jump's assumed cost of 700 words.
    with jump_settings(0, cost):
        _run(name, (size,), torch.float32, predrawn, use_generator=predrawn != 101)


@pytest.mark.parametrize("name", sorted(INITS))
@pytest.mark.parametrize("size", [17, 1249, 40000 + 3])
@dtypes
@pytest.mark.parametrize("use_generator", [False, True], ids=["default_gen", "explicit_gen"])
def test_dtypes(jump_everywhere, threads, name, size, dtype, use_generator):
    _run(name, (size,), dtype, 101, use_generator)


VIEWS = {
    "transposed": lambda b: b.t(),
    "permuted3d": lambda b: b.view(20, 25, 30).permute(2, 0, 1),
}


@pytest.mark.parametrize("name", sorted(INITS))
@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_views(jump_everywhere, threads, name, view, dtype):
    # Non-contiguous dense views: uniform_ in memory order, normal_ / trunc_normal_ serially
    # through the cached sample (torch's normal_fill takes contiguous tensors only).
    _run(name, (500, 30), dtype, 0, use_generator=True, view=VIEWS[view])


@pytest.mark.parametrize("name", sorted(INITS))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
def test_default_threshold(threads, name, dtype):
    # Past the default size threshold (2^22 words; 4 threads pass the thread threshold too), 2-D
    # and not a multiple of 16.
    _run(name, (2053, 2047), dtype, 101, use_generator=True)


def test_fused_uniform_at_every_capability():
    # uniform_ / masked_uniform_ / uniform_many_ of one word per element write straight from the
    # engine (draw_uniform: the AVX2 float kernel tempers in registers, every other dtype and the
    # DEFAULT capability temper into a 624-word buffer): serially at 1 thread, in parallel ranges at
    # 2, at each ATen capability, sizes around the 624-word state and the 8-lane vectors, with words
    # drawn before the call.
    script = (
        "import torch, pyinit, torch.nn.init as t\n"
        "from pyinit import _C\n"
        "bad = []\n"
        "lo, hi = [-k - 1.0 for k in range(3)], [k + 1.0 for k in range(3)]\n"
        "def same(a, b):\n"
        "    return torch.equal(a.view(-1).view(torch.uint8), b.view(-1).view(torch.uint8))\n"
        "for threads, jump in ((1, (2**62, 1, 2)), (2, (0, 0, 2)), (2, (0, 700, 2))):\n"
        "    torch.set_num_threads(threads)\n"
        "    _C._set_torch_stream_jump(*jump)\n"
        "    for dtype in (torch.float32, torch.float16, torch.bfloat16):\n"
        "        for n in (1, 7, 9, 623, 624, 625, 1255, 40003):\n"
        "            for predrawn in (0, 5, 624):\n"
        "                outs, states = [], []\n"
        "                for lib in (t, pyinit):\n"
        "                    torch.manual_seed(3)\n"
        "                    torch.empty(predrawn).uniform_()\n"
        "                    x, y = torch.empty(n, dtype=dtype), torch.empty(n, dtype=dtype)\n"
        "                    lib.uniform_(x, -2.5, 4.0)\n"
        "                    if lib is t:\n"
        "                        t.uniform_(y, -10.0, 10.0); y.mul_(y.abs() >= 5.0)\n"
        "                        ws = [torch.empty(n + 3 * k, dtype=dtype) for k in range(3)]\n"
        "                        for k, w in enumerate(ws): t.uniform_(w, -k - 1.0, k + 1.0)\n"
        "                    else:\n"
        "                        pyinit.masked_uniform_(y)\n"
        "                        ws = [torch.empty(n + 3 * k, dtype=dtype) for k in range(3)]\n"
        "                        torch.ops.pyinit.uniform_many_(ws, lo, hi, None)\n"
        "                    outs.append([x, y] + ws)\n"
        "                    states.append(torch.get_rng_state())\n"
        "                ok = all(same(a, b) for a, b in zip(*outs)) and torch.equal(*states)\n"
        "                if not ok:\n"
        "                    bad.append((threads, jump, dtype, n, predrawn))\n"
        "print(torch.backends.cpu.get_cpu_capability(), bad[:5])\n"
        "raise SystemExit(1 if bad else 0)\n"
    )
    assert_passes_at_capabilities(script)
