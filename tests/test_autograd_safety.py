"""Writes are visible to autograd as torch's are: the version counter moves by what torch.nn.init's
own implementation adds (so a backward through a tensor initialized in place raises torch's error),
and an inference tensor outside InferenceMode is refused with torch's message, before any write."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.init as tinit

import pyinit

VERSION_CASES = {
    "uniform_": ("uniform_", (5, 7), ()),
    "normal_": ("normal_", (5, 7), ()),
    "kaiming_uniform_": ("kaiming_uniform_", (5, 7), ()),
    "xavier_normal_": ("xavier_normal_", (5, 7), ()),
    "trunc_normal_ no resample": ("trunc_normal_", (1,), (0.0, 1.0, -50.0, 50.0)),
    "trunc_normal_ resampled": ("trunc_normal_", (64, 64), ()),
    "constant_": ("constant_", (5, 7), (0.5,)),
    "ones_": ("ones_", (5, 7), ()),
    "zeros_": ("zeros_", (5, 7), ()),
    "eye_": ("eye_", (5, 7), ()),
    "dirac_": ("dirac_", (4, 4, 3), ()),
    "dirac_ groups": ("dirac_", (6, 2, 3, 3), (3,)),
    "orthogonal_": ("orthogonal_", (5, 7), ()),
    "sparse_": ("sparse_", (10, 7), (0.3,)),
    "sparse_ no zeros": ("sparse_", (10, 7), (0.0,)),
    "uniform_ empty": ("uniform_", (0, 3), ()),
}


@pytest.mark.parametrize("case", sorted(VERSION_CASES))
def test_version_counter_as_torch(case):
    name, shape, args = VERSION_CASES[case]
    bumps = []
    for lib in (tinit, pyinit):
        torch.manual_seed(0)
        w = torch.nn.Parameter(torch.randn(shape))
        before = w._version
        getattr(lib, name)(w, *args)
        bumps.append(w._version - before)
    assert bumps[1] == bumps[0], f"torch bumps {bumps[0]}, pyinit {bumps[1]}"


@pytest.mark.parametrize("name", ["uniform_", "normal_", "kaiming_uniform_", "constant_"])
def test_backward_after_reinit_raises_as_torch(name):
    args = (0.5,) if name == "constant_" else ()
    messages = []
    for lib in (tinit, pyinit):
        w = torch.nn.Parameter(torch.randn(4, 4))
        y = (w * w).sum()  # saves w for backward
        getattr(lib, name)(w, *args)
        with pytest.raises(RuntimeError, match="modified by an inplace operation") as info:
            y.backward()
        messages.append(str(info.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize(
    "name",
    [
        "uniform_",
        "normal_",
        "trunc_normal_",
        "zeros_",
        "eye_",
        "dirac_",
        "orthogonal_",
        "sparse_",
        "masked_uniform_",
    ],
)
def test_inference_tensor_refused_before_writing(name):
    shape = (4, 4, 3) if name == "dirac_" else (4, 4)
    args = (0.5,) if name == "sparse_" else ()
    with torch.inference_mode():
        t = torch.full(shape, 7.0)
    with torch.inference_mode():
        probe = torch.zeros(1)
    with pytest.raises(RuntimeError) as expected:
        tinit.zeros_(probe)  # torch's message (torch writes, then raises)
    state = torch.get_rng_state()
    with pytest.raises(RuntimeError) as got:
        getattr(pyinit, name)(t, *args)
    assert str(got.value) == str(expected.value)
    assert torch.equal(t, torch.full(shape, 7.0))  # refused before any write (torch writes first)
    assert torch.equal(torch.get_rng_state(), state)


def test_inference_tensor_inside_inference_mode_is_written():
    with torch.inference_mode():
        t = torch.zeros(4, 4)
        torch.manual_seed(0)
        pyinit.uniform_(t)
        torch.manual_seed(0)
        expected = tinit.uniform_(torch.zeros(4, 4))
    assert torch.equal(t, expected)


@pytest.mark.parametrize(
    "name",
    [
        "uniform_",
        "normal_",
        "trunc_normal_",
        "kaiming_normal_",
        "constant_",
        "eye_",
        "sparse_",
        "orthogonal_",
    ],
)
@pytest.mark.parametrize("view", ["transposed", "sliced"])
def test_version_counter_of_views_as_torch(name, view):
    args = {"constant_": (0.5,), "sparse_": (0.3,)}.get(name, ())
    bumps = []
    for lib in (tinit, pyinit):
        torch.manual_seed(0)
        base = torch.randn(8, 10)
        target = base.t() if view == "transposed" else base[:, ::2]
        before = base._version
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pyinit.PyinitFallbackWarning)  # non-dense trunc_normal_
            getattr(lib, name)(target, *args)
        bumps.append(base._version - before)
    assert bumps[1] == bumps[0], f"torch bumps {bumps[0]}, pyinit {bumps[1]}"
