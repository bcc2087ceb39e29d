"""Benchmarks of the sync service (not tests): run `python benchmarks/run.py`."""
