"""Benchmarks (`make bench`): see harness.py for what a figure is, __main__.py for the run."""
