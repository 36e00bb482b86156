"""Benchmarks of analytics-pipeline: ``python -m bench`` (``make bench``); results in bench/RESULTS.md."""
