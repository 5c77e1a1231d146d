"""Medians, ranges and percentiles, formatted for the table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, `inclusive`)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values: Sequence[float], fmt: str = "{:.3f}", unit: str = "") -> str:
    """`median (min-max)` over the repetitions, e.g. `0.012 s (0.010-0.015)`."""
    if not values:
        return "—"
    mid = fmt.format(median(values))
    if len(values) == 1:
        return f"{mid}{unit} (n=1)"
    return f"{mid}{unit} ({fmt.format(min(values))}-{fmt.format(max(values))}, n={len(values)})"


MIB = 1024 * 1024
