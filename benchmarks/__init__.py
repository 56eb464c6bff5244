"""pyinit's benchmark suite: every initializer beside torch.nn.init, against the fill_ ceiling.

Run it with ``python -m benchmarks`` (``--help`` for the flags); see benchmarks/README.md for what
each column means and for reference results. Benchmarks never run under pytest:
tests/test_benchmarks.py only checks the harness on its smallest configuration.
"""

SCHEMA = "pyinit-bench/1"
