"""The benchmark harness on its smallest configuration: outputs present and well formed.

No timing assertions: benchmarks measure; tests only check that the suite runs and reports its rows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("pyinit")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/ lives at the root
from benchmarks import SCHEMA  # noqa: E402
from benchmarks.cli import main, parse_sizes  # noqa: E402

ROW_KEYS = {
    "section",
    "device",
    "dtype",
    "initializer",
    "shape",
    "numel",
    "threads",
    "contender",
    "role",
    "stream",
    "bytes",
    "median_s",
    "min_s",
    "times_s",
    "repeats",
    "gbps",
    "pct_fill",
    "speedup",
    "baseline",
    "note",
}
INITIALIZERS = ["uniform_", "masked_uniform_", "constant_", "dirac_"]


@pytest.fixture(scope="module")
def smallest(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    argv = [
        "--quick",
        "--no-compile",
        "--no-progress",
        "--devices",
        "cpu,cuda",
        "--initializers",
        ",".join(INITIALIZERS),
        "--sizes",
        "10",
        "--threads",
        "1",
        "--thread-size",
        "10",
        "--small-params",
        "4",
        "--model-scale",
        "64",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--out",
        str(out),
        "--tag",
        "t",
    ]
    assert main(argv) == 0
    return out, json.loads((out / "t.json").read_text())


def test_outputs_written(smallest):
    out, doc = smallest
    assert (out / "t.txt").read_text().startswith("pyinit benchmarks")
    assert (out / "t-cpu.png").stat().st_size > 0
    assert doc["schema"] == SCHEMA
    for key in ("torch", "pyinit", "cpu_model", "cpu_capability", "torch_threads", "gpu"):
        assert key in doc["env"]
    assert doc["config"]["initializers"] == INITIALIZERS


def test_rows_complete(smallest):
    _, doc = smallest
    rows = doc["rows"]
    assert rows and all(ROW_KEYS <= row.keys() for row in rows)
    sweep = [r for r in rows if r["section"] == "sweep"]
    assert {r["initializer"] for r in sweep} == set(INITIALIZERS)
    for name in INITIALIZERS:
        group = [r for r in sweep if r["initializer"] == name]
        roles = {r["role"] for r in group}
        assert {"ceiling", "baseline", "pyinit"} <= roles, name
        assert all(r["median_s"] is not None and r["gbps"] > 0 for r in group), group
    masked = {r["contender"] for r in sweep if r["initializer"] == "masked_uniform_"}
    assert "composition" in masked and "torch.compile" not in masked
    assert {r["section"] for r in rows} == {"sweep", "threads", "small", "model"}
    small = [r for r in rows if r["section"] == "small"]
    assert all(r["us_per_param"] > 0 and r["params"] == 4 for r in small)


def test_gpu_skipped_or_measured(smallest):
    _, doc = smallest
    import torch

    devices = {r["device"] for r in doc["rows"]}
    if torch.cuda.is_available():
        assert "cuda" in devices
    else:
        assert devices == {"cpu"}
        assert any("cuda" in item["what"] for item in doc["skipped"])


def test_parse_sizes():
    assert parse_sizes("10,12") == [1024, 4096]
    assert parse_sizes("10:14:2") == [1024, 4096, 16384]
    assert parse_sizes("1000") == [1000]


def test_streams_are_a_dimension(tmp_path, monkeypatch):
    """Each random initializer gets one pyinit row per stream, called as users call it:
    pyinit.uniform_ in the default (torch) stream, pyinit.philox.uniform_ for philox."""
    import pyinit
    import pyinit.philox

    used = []

    def recording(label, fn):
        def call(*args, **kwargs):
            used.append((label, pyinit.get_stream()))
            return fn(*args, **kwargs)

        return call

    monkeypatch.setattr(pyinit, "uniform_", recording("pyinit", pyinit.uniform_))
    monkeypatch.setattr(pyinit.philox, "uniform_", recording("philox", pyinit.philox.uniform_))
    argv = [
        "--quick",
        "--no-progress",
        "--no-plots",
        "--sections",
        "sweep",
        "--sizes",
        "10",
        "--devices",
        "cpu",
        "--initializers",
        "uniform_,zeros_",
        "--streams",
        "torch,philox",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--out",
        str(tmp_path),
        "--tag",
        "s",
    ]
    assert main(argv) == 0
    rows = json.loads((tmp_path / "s.json").read_text())["rows"]
    labels = {(r["initializer"], r["contender"]) for r in rows if r["role"] == "pyinit"}
    assert labels == {
        ("uniform_", "pyinit[torch]"),
        ("uniform_", "pyinit[philox]"),
        ("zeros_", "pyinit"),
    }
    assert {("pyinit", "torch"), ("philox", "torch")} <= set(used)


def test_shard_blocks_runs(capsys):
    """benchmarks/shard_blocks.py (run on the GPU machine by .ci/gpu_check.sh) runs and prints
    every contender of every initializer, none failed."""
    from benchmarks import shard_blocks

    assert shard_blocks.main(["--device", "cpu", "--shape", "64,32", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for name in ("uniform_", "normal_", "trunc_normal_"):
        for label in ("fill_ (shard)", "torch whole", "pyinit whole", "blocks rows", "blocks cols"):
            assert any(line.startswith(f"{name:13s} {label}") for line in out.splitlines()), label
    assert "failed" not in out
