"""Benchmarks (issue 6): tier-0 answer quality, KB latency, Redis memory.

Run ``python -m bench`` (``--quick`` for a tiny sample, ``--only NAME,...`` to pick).
Benchmarks never decide whether the test suite passes; ``tests/bench`` only checks
that each one runs on a tiny synthetic dataset.
"""
