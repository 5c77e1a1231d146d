"""Benchmarks: poolwatch against the shell poller it replaces, on this machine, in one run.

`python -m bench --help`; docs/benchmarks.md holds the results and how they were taken.
"""
