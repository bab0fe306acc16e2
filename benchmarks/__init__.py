"""Benchmark scripts, one module each: run them as `python -m benchmarks.NAME` from the repository root."""
