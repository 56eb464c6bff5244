"""torch.compile(fullgraph=True): every public initializer traces into one graph in both random
streams (the stream choice is read without a graph break) and writes what eager writes, leaving the
same generator state.

torch.nn.init itself compiles all of these with fullgraph=True on torch 2.13 except trunc_normal_
(its rejection sampler branches on data); pyinit's trunc_normal_ is one operator and compiles.
In the philox stream the graph calls the operators that draw their key when the graph runs
(pyinit::philox_*_drawn_, Note [The philox stream under torch.compile] in pyinit/_streams.py), so
the compiled call draws from the default generator exactly as the eager call does.
Not covered, for torch.nn.init as for pyinit: an explicit ``generator=`` (Dynamo cannot take a
torch.Generator as a graph input).
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import bitwise_equal

import pyinit

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),
    # Inductor's own lowering of the philox orthogonal_ tail (torch 2.13).
    pytest.mark.filterwarnings("ignore:`torch._prims_common.check` is deprecated:FutureWarning"),
]

CASES = {
    "uniform_": lambda t: pyinit.uniform_(t, -1.0, 2.0),
    "normal_": lambda t: pyinit.normal_(t, 0.5, 2.0),
    "xavier_uniform_": lambda t: pyinit.xavier_uniform_(t),
    "xavier_normal_": lambda t: pyinit.xavier_normal_(t),
    "kaiming_uniform_": lambda t: pyinit.kaiming_uniform_(t, a=math.sqrt(5)),
    "kaiming_normal_": lambda t: pyinit.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
    "trunc_normal_": lambda t: pyinit.trunc_normal_(t, std=0.02),
    "masked_uniform_": lambda t: pyinit.masked_uniform_(t),
    "constant_": lambda t: pyinit.constant_(t, 0.3),
    "ones_": lambda t: pyinit.ones_(t),
    "zeros_": lambda t: pyinit.zeros_(t),
    "eye_": lambda t: pyinit.eye_(t),
    "dirac_": lambda t: pyinit.dirac_(t.view(4, 3, 16)),
    "orthogonal_": lambda t: pyinit.orthogonal_(t),
    "sparse_": lambda t: pyinit.sparse_(t, 0.5),
    # pyinit extensions (docs/initializers.md)
    "lecun_normal_": lambda t: pyinit.lecun_normal_(t),
    "he_uniform_": lambda t: pyinit.he_uniform_(t),
    "variance_scaling_": lambda t: pyinit.variance_scaling_(
        t, 0.5, "fan_geo_avg", "untruncated_normal"
    ),
    "trunc_normal_tf_": lambda t: pyinit.trunc_normal_tf_(t, 0.1, 0.02),
    "orthogonal_columns_": lambda t: pyinit.orthogonal_columns_(t, 2.0, 1),
    "delta_orthogonal_": lambda t: pyinit.delta_orthogonal_(t.view(4, 3, 16)),
}


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _eager_and_compiled(fn, shape=(12, 16)):
    torch.manual_seed(0)
    eager = fn(torch.empty(shape)).clone()
    eager_state = torch.get_rng_state()
    torch.manual_seed(0)
    compiled = torch.compile(fn, fullgraph=True)(torch.empty(shape)).clone()
    return eager, compiled, eager_state, torch.get_rng_state()


@pytest.mark.parametrize("stream", ["torch", "philox"])
@pytest.mark.parametrize("name", list(CASES))
def test_compiled_equals_eager(name, stream):
    with pyinit.stream(stream):
        eager, compiled, eager_state, compiled_state = _eager_and_compiled(CASES[name])
    assert bitwise_equal(compiled, eager)
    assert torch.equal(compiled_state, eager_state)


PHILOX_CALLS = {
    "uniform_": lambda t: pyinit.philox.uniform_(t, -1.0, 2.0),
    "kaiming_normal_": lambda t: pyinit.philox.kaiming_normal_(t, nonlinearity="relu"),
    "trunc_normal_": lambda t: pyinit.philox.trunc_normal_(t, std=0.02),
    "orthogonal_": lambda t: pyinit.philox.orthogonal_(t),
    "sparse_": lambda t: pyinit.philox.sparse_(t, 0.25),
}


@pytest.mark.parametrize("name", list(PHILOX_CALLS))
def test_compiled_per_call_philox_wrappers(name):
    # pyinit.philox.* select their stream inside the compiled function.
    eager, compiled, eager_state, compiled_state = _eager_and_compiled(PHILOX_CALLS[name])
    assert bitwise_equal(compiled, eager)
    assert torch.equal(compiled_state, eager_state)
    torch.manual_seed(0)
    torch_stream = CASES[name](torch.empty(12, 16)) if name in CASES else None
    if torch_stream is not None and name != "sparse_":
        assert not bitwise_equal(compiled, torch_stream)  # not the torch stream's values


@pytest.mark.parametrize("shape", [(96, 64), (64, 160)], ids=["tall", "wide"])
def test_compiled_philox_orthogonal_with_two_threads(shape):
    # The philox QR runs with one thread in the graph too (pyinit::qr_serial_): LAPACK's roundings
    # change with the thread count from about 64 x 64 on.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pyinit.stream("philox"):
            eager, compiled, eager_state, compiled_state = _eager_and_compiled(
                CASES["orthogonal_"], shape
            )
    finally:
        torch.set_num_threads(threads)
    assert bitwise_equal(compiled, eager)
    assert torch.equal(compiled_state, eager_state)


def test_compiled_philox_draws_at_run_time():
    # Each run of the graph draws a fresh key, as successive eager calls do.
    fn = torch.compile(CASES["normal_"], fullgraph=True)
    with pyinit.stream("philox"):
        torch.manual_seed(3)
        eager = [CASES["normal_"](torch.empty(64)).clone() for _ in range(2)]
        torch.manual_seed(3)
        compiled = [fn(torch.empty(64)).clone() for _ in range(2)]
    assert not bitwise_equal(eager[0], eager[1])
    assert all(bitwise_equal(c, e) for c, e in zip(compiled, eager, strict=True))


def test_compiled_philox_failure_raises_while_tracing():
    # The Meta kernel checks std as torch's meta normal_ does: the error comes at compile time.
    fn = torch.compile(lambda t: pyinit.philox.normal_(t, 0.0, -1.0), fullgraph=True)
    state = torch.get_rng_state()
    with pytest.raises(Exception, match="normal expects std >= 0.0"):
        fn(torch.empty(8))
    assert torch.equal(torch.get_rng_state(), state)


def test_compiled_torch_stream_equals_torch_nn_init():
    torch.manual_seed(0)
    expected = torch.nn.init.kaiming_uniform_(torch.empty(12, 16), a=math.sqrt(5))
    _, compiled, _, _ = _eager_and_compiled(CASES["kaiming_uniform_"])
    assert bitwise_equal(compiled, expected)


def test_block_choice_is_read_under_compile():
    # A compiled function reads the innermost pyinit.stream block, not only the process default.
    pyinit.set_stream("philox")
    try:
        with pyinit.stream("torch"):
            eager, compiled, eager_state, compiled_state = _eager_and_compiled(
                CASES["kaiming_uniform_"]
            )
    finally:
        pyinit.set_stream("torch")
    assert bitwise_equal(compiled, eager) and torch.equal(compiled_state, eager_state)


def test_selecting_philox_recompiles_instead_of_reusing_the_torch_graph():
    fn = torch.compile(CASES["uniform_"], fullgraph=True)
    torch.manual_seed(0)
    in_torch = fn(torch.empty(64)).clone()
    torch.manual_seed(0)
    with pyinit.stream("philox"):
        in_philox = fn(torch.empty(64)).clone()
        torch.manual_seed(0)
        eager_philox = CASES["uniform_"](torch.empty(64))
    assert bitwise_equal(in_philox, eager_philox)
    assert not bitwise_equal(in_philox, in_torch)
