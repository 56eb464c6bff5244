"""A child made by fork() after pyinit ran a parallel kernel can initialize, with the values the
parent gets: libgomp would otherwise hang it (see Note [Forked children run serially]). torch's own
OpenMP-parallel ops run there too; its MKL-threaded ones (exp_ after set_num_threads(2)) hang in
such a child with or without pyinit, so they are not part of this test."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

FORK_CHILD = textwrap.dedent(
    """
    import os, sys, time
    import torch, pyinit
    torch.set_num_threads(2)
    t = torch.empty(1 << 21)
    torch.manual_seed(0)
    pyinit.uniform_(t)                        # a parallel kernel in the parent
    torch.manual_seed(0)
    expected = pyinit.normal_(torch.empty(1 << 21))
    pid = os.fork()
    if pid == 0:
        torch.manual_seed(0)
        got = pyinit.normal_(torch.empty(1 << 21))
        torch.randn(1 << 21) * 2               # torch's own OpenMP-parallel op
        torch.set_num_threads(2)               # pyinit's helper threads, made anew in the child
        torch.manual_seed(0)
        again = pyinit.normal_(torch.empty(1 << 21))
        os._exit(0 if torch.equal(got, expected) and torch.equal(again, expected) else 3)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)

POOL_CHILD = textwrap.dedent(
    """
    import hashlib
    import multiprocessing as mp
    import torch, pyinit

    def init(seed):
        torch.manual_seed(seed)
        w = pyinit.kaiming_uniform_(torch.empty(1024, 1024))
        return hashlib.sha256(w.numpy().tobytes()).hexdigest()

    if __name__ == "__main__":
        torch.set_num_threads(2)
        pyinit.uniform_(torch.empty(1 << 21))
        expected = [init(s) for s in range(3)]
        with mp.get_context("fork").Pool(2) as pool:
            got = pool.map(init, range(3))
        raise SystemExit(0 if got == expected else 3)
    """
)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
@pytest.mark.skipif(
    torch.get_num_threads() < 2 and (__import__("os").cpu_count() or 1) < 2,
    reason="needs 2 CPU threads to start a parallel region",
)
@pytest.mark.parametrize("script", [FORK_CHILD, POOL_CHILD], ids=["os.fork", "fork-pool"])
def test_forked_child_initializes(script):
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], timeout=60, capture_output=True, text=True
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the forked child hung")
    assert done.returncode == 0, done.stderr[-2000:]
