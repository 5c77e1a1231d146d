"""Benchmarks: poolwatch against the shell poller it replaces, on this machine, in one run.

`python -m bench --help`; docs/performance.md ("Benchmarks") holds the results and how they
were taken.
"""
