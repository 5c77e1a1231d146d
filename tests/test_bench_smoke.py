"""The benchmark harness still runs: its cheapest measurement (`--once` cold start) end to end,
with its own PostgreSQL and Redis, printing the table. Times are not checked (bench/ measures,
it does not assert)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m <args>` from the checkout, as the README runs the benchmarks."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.integration
def test_bench_quick_once_prints_a_table() -> None:
    done = bench("bench", "--quick", "--only", "once", timeout=100)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| `--once` cold start, wall | host only |" in done.stdout
    assert "NOT MEASURED" not in done.stdout


def test_bench_rejects_an_unknown_measurement() -> None:
    done = bench("bench", "--only", "nonsense", timeout=60)
    assert done.returncode == 2
    assert "unknown ['nonsense']" in done.stderr


@pytest.mark.integration
def test_bench_quick_churn_prints_growth_per_hour() -> None:
    """The churn soak end to end in about 20 s: every row is there and measured. Neither growth
    nor the alerts' verdict is judged: 12 s decide neither, and bench/ does not assert times."""
    done = bench("bench", "--quick", "--only", "churn", timeout=100)
    assert done.returncode == 0, done.stderr[-2000:]
    for row in ("open descriptors", "of which sockets", "threads", "resident memory"):
        assert f"| churn soak: {row} |" in done.stdout
    assert "/h | — |" in done.stdout
    assert "NOT MEASURED" not in done.stdout
    assert "| churn soak: alerts |" in done.stdout


@pytest.mark.integration
def test_bench_login_probe_prints_its_tables() -> None:
    """The login probe's benchmark end to end, briefly: both tables, every source measured."""
    done = bench("bench.login_probe", "--probes", "3", "--minutes", "0.05", timeout=100)
    assert done.returncode == 0, done.stderr[-2000:]
    for row in ("| PostgreSQL (SCRAM) |", "| Redis (no AUTH) |", "| PgBouncer → PostgreSQL |"):
        assert row in done.stdout
    assert "| 30s (default) |" in done.stdout
    assert "| off | 0.0 | 0 | — |" in done.stdout


@pytest.mark.integration
def test_bench_quick_watched_prints_the_backend_cpu_before_and_after() -> None:
    """The watched-cost measurement end to end with 500 tables: both rows are there, measured.
    The numbers are not judged (3 s windows decide nothing)."""
    done = bench("bench", "--quick", "--only", "watched", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for size_interval in ("1s (every poll, as before)", "5m (the default)"):
        assert f", size_interval {size_interval} | " in done.stdout
    assert "% of a core" in done.stdout
    assert "NOT MEASURED" not in done.stdout


@pytest.mark.integration
def test_bench_quick_goals_prints_the_three_figures() -> None:
    """Issue 25's goals table end to end with few containers: the three figures, the start-up
    breakdown and a load average beside each figure. Not judged: 10 containers decide nothing."""
    done = bench("bench", "--quick", "--only", "goals", timeout=200)
    assert done.returncode == 0, done.stderr[-2000:]
    for goal in (
        "(a) CPU per poll, poolwatch ÷ shell poller",
        "(b) resident memory (VmRSS)",
        "(c) cold `poolwatch --once`, wall",
        "(c) of which: imports",
    ):
        assert f"| {goal} |" in done.stdout
    assert "MALLOC_ARENA_MAX=" in done.stdout
    assert "NOT MEASURED" not in done.stdout
