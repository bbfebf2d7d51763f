"""Benchmarks (``make bench`` / ``python -m bench``); figures go to docs/performance.md."""
