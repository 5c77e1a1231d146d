"""The perfdata, Nagios and Checkmk writers, read back by the strict readers of
tests/plugin_syntax.py (Icinga itself reads them in tests/icinga)."""

from __future__ import annotations

import io
import locale
import os
import subprocess
import sys
from pathlib import Path

import pytest

from poolwatch.core.model import Reading, Severity
from poolwatch.once.formats.checkmk import write_checkmk
from poolwatch.once.formats.nagios import LIMIT, render
from poolwatch.once.formats.perfdata import perfdata_for, plain
from poolwatch.once.results import Result
from tests.plugin_syntax import parse_checkmk, parse_perfdata, parse_plugin_output


def result(
    check: str = "connections",
    value: float = 5,
    unit: str = "connections",
    *,
    source: str = "postgres",
    instance: str = "main",
    limit: float | None = 197,
    labels: dict[str, str] | None = None,
    severity: Severity = Severity.OK,
    threshold: float | None = None,
    warning_at: float | None = 150,
    critical_at: float | None = 180,
    message: str = "PostgreSQL main: connections",
) -> Result:
    reading = Reading(source, instance, check, value, unit, limit, labels or {})
    return Result(reading, severity, threshold, None, message, warning_at, critical_at)


def item_of(r: Result) -> str:
    item = perfdata_for(r)
    assert item is not None
    return item.render()


def test_a_connection_count_is_plain_with_thresholds_min_zero_and_the_limit_as_max() -> None:
    assert item_of(result(value=185)) == "postgres_main_connections=185;150;180;0;197"


@pytest.mark.parametrize(
    ("unit", "limit", "uom", "maximum"),
    [
        ("percent", 100, "%", 100),
        ("bytes", None, "B", None),
        ("seconds", None, "s", None),
        ("connections", 197, "", 197),
        ("bytes_per_second", None, "", None),  # no rate UOM: Icinga would drop `B/s`
        ("deadlocks", None, "", None),  # a count since the last poll, not a counter `c`
        ("bool", None, "", 1),
    ],
)
def test_units(unit: str, limit: float | None, uom: str, maximum: float | None) -> None:
    (item,) = parse_perfdata(item_of(result("x", 7.5, unit, limit=limit))).values()
    assert (item.uom, item.min, item.max) == (uom, 0, maximum)


@pytest.mark.parametrize(
    ("labels", "instance", "rendered"),
    [
        ({"state": "idle"}, "main", "postgres_main_connections_idle=1;;;0"),
        ({"database": "my db"}, "main", "'postgres_main_connections_my db'=1;;;0"),
        ({"database": "it's"}, "main", "'postgres_main_connections_it''s'=1;;;0"),
        ({"database": "a=b"}, "main", "postgres_main_connections_a_b=1;;;0"),
        ({"database": "x::y"}, "main", "postgres_main_connections_x__y=1;;;0"),
        ({}, "/var/lib", "postgres_/var/lib_connections=1;;;0"),
    ],
)
def test_labels_are_quoted_when_needed(
    labels: dict[str, str], instance: str, rendered: str
) -> None:
    r = result(
        instance=instance, labels=labels, value=1, limit=None, warning_at=None, critical_at=None
    )
    assert item_of(r) == rendered
    (item,) = parse_perfdata(rendered).values()
    assert item.label == "_".join(["postgres", instance, "connections", *labels.values()]).replace(
        "=", "_"
    ).replace("::", "__")


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.1 + 0.2, "0.3"), (1e20, "100000000000000000000"), (2.5e-7, "0"), (-0.0, "0"), (3, "3")],
)
def test_numbers_are_plain_decimals(value: float, text: str) -> None:
    assert plain(value) == text


def test_a_result_without_a_finite_value_is_left_out_not_written_as_u() -> None:
    assert perfdata_for(result(value=float("nan"))) is None
    output = render([result(value=float("nan")), result("up", 1, "bool", limit=None)])
    assert "U" not in output.split(" | ")[1]
    assert set(parse_plugin_output(output).perfdata) == {"postgres_main_up"}


def comma_locale(tmp_path: Path) -> dict[str, str]:
    """A German locale built with localedef into a private LOCPATH (the machine has only C)."""
    subprocess.run(
        ["localedef", "-i", "de_DE", "-f", "UTF-8", str(tmp_path / "de_DE.UTF-8")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return {**os.environ, "LOCPATH": str(tmp_path), "LC_ALL": "de_DE.UTF-8"}


def test_numbers_use_a_dot_under_a_comma_locale(tmp_path: Path) -> None:
    code = (
        "import locale; locale.setlocale(locale.LC_ALL, '');"
        "assert locale.localeconv()['decimal_point'] == ',', locale.localeconv();"
        "from poolwatch.core.model import Reading, Severity;"
        "from poolwatch.once.results import Result;"
        "from poolwatch.once.formats.nagios import render;"
        "r = Reading('host', 'h', 'cpu_percent', 12.5, 'percent', 100);"
        "print(render([Result(r, Severity.WARNING, 10.5, None, 'm', 10.5, 95.25)]), end='')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=comma_locale(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "host_h_cpu_percent=12.5%;10.5;95.25;0;100" in done.stdout
    assert "12,5" not in done.stdout
    # and this process's own locale was left alone
    assert locale.localeconv()["decimal_point"] == "."


def test_first_line_names_the_worst_first_and_counts_the_rest() -> None:
    results = [
        result("up", 1, "bool", limit=None),
        result(
            "longest_query_seconds",
            412,
            "seconds",
            limit=None,
            severity=Severity.WARNING,
            threshold=300,
            message="PostgreSQL main: longest query seconds 412.0s, above warning 300.0s",
        ),
        result(
            value=185,
            severity=Severity.CRITICAL,
            threshold=180,
            message="PostgreSQL main: connections 185/197 (94%), above critical 180",
        ),
    ]
    out = parse_plugin_output(render(results))
    assert out.status == "CRITICAL"
    assert out.text == "postgres main connections 185/197 (94%) >= 180; 1 warning"
    assert out.long_output == [
        "CRITICAL: PostgreSQL main: connections 185/197 (94%), above critical 180",
        "WARNING: PostgreSQL main: longest query seconds 412.0s, above warning 300.0s",
    ]
    assert out.perfdata["postgres_main_connections"].crit == 180


def test_a_pipe_or_line_break_in_a_message_cannot_start_perfdata() -> None:
    bad = result(
        "up",
        0,
        "bool",
        limit=None,
        severity=Severity.CRITICAL,
        threshold=0,
        message="PostgreSQL main: down (a | b\nc)",
    )
    out = parse_plugin_output(render([bad]))
    assert out.long_output == ["CRITICAL: PostgreSQL main: down (a / b c)"]


def test_output_is_kept_within_8_kb_cutting_long_output_never_the_first_line() -> None:
    many = [
        result(
            "connections_by_database",
            100 + i,
            labels={"database": f"database_{i:04d}"},
            severity=Severity.CRITICAL,
            threshold=50,
            message=f"PostgreSQL main [database=database_{i:04d}]: " + "x" * 200,
        )
        for i in range(300)
    ]
    output = render(many)
    assert len(output.encode()) <= LIMIT
    out = parse_plugin_output(output)
    assert (
        out.text == "postgres main connections by database 100/197 (51%) >= 50; 299 more critical"
    )
    assert out.perfdata, "perfdata of the worst results survives"
    assert 0 < len(out.long_output) < 300
    assert out.long_output[-1].startswith("(")
    assert "left out: plugin output is kept within 8 KB" in out.long_output[-1]
    # every long-output line kept is whole
    assert all(line.endswith("x" * 200) for line in out.long_output[:-1])


def test_nothing_selected_is_unknown() -> None:
    out = parse_plugin_output(render([]))
    assert (out.status, out.perfdata) == ("UNKNOWN", {})


def test_checkmk_one_service_per_instance_with_metrics_without_units() -> None:
    results = [
        result("up", 1, "bool", limit=None, warning_at=None, critical_at=0),
        result(value=185, severity=Severity.CRITICAL, threshold=180, message="pool full"),
        result("cpu_percent", 12.5, "percent", source="host", instance="vm", limit=100),
        result(
            "disk_percent",
            40,
            "percent",
            source="host",
            instance="/var/lib",
            limit=100,
            labels={"device": "/dev/sda1"},
        ),
    ]
    stream = io.StringIO()
    write_checkmk(results, stream)
    checks = {c.service: c for c in parse_checkmk(stream.getvalue())}
    assert set(checks) == {
        "poolwatch postgres main",
        "poolwatch host vm",
        "poolwatch host /var/lib",
    }
    pg = checks["poolwatch postgres main"]
    assert pg.status == 2
    assert pg.metrics == {"up": [1, None, 0, 0, 1], "connections": [185, 150, 180, 0, 197]}
    assert pg.text == "postgres main connections 185/197 (94%) >= 180\\nCRITICAL: pool full"
    assert checks["poolwatch host vm"].metrics["cpu_percent"] == [12.5, 150, 180, 0, 100]
    assert checks["poolwatch host /var/lib"].metrics == {
        "disk_percent_dev_sda1": [40, 150, 180, 0, 100]
    }
    assert checks["poolwatch host /var/lib"].text == "1 check OK"


FORGED = "x\nPOOLWATCH OK - injected | fake=1"
"""The issue's name: a role or database whose name ends the first line inside a perfdata label."""


def test_a_line_break_in_a_name_ends_no_line_and_forges_no_item() -> None:
    bad = result(
        "connections_by_user",
        160,
        labels={"user": FORGED},
        severity=Severity.WARNING,
        threshold=150,
        message=f"PostgreSQL main [user={FORGED}]: connections 160/197",
    )
    output = render([bad, result()])
    assert output.count("\n") == 2  # the first line and one line of long output, nothing else
    out = parse_plugin_output(output)
    assert out.status == "WARNING"
    assert set(out.perfdata) == {
        "postgres_main_connections_by_user_x?POOLWATCH OK - injected | fake_1",
        "postgres_main_connections",
    }
    assert out.long_output == [
        "WARNING: PostgreSQL main [user=x POOLWATCH OK - injected / fake=1]: connections 160/197"
    ]


def test_escape_sequences_reach_neither_format_as_escapes() -> None:
    """ESC, CSI and DEL from a name or health output are `?`, one for one."""
    bad = result(
        labels={"database": "db\x1b[2J\x9b2J\x7f"},
        severity=Severity.CRITICAL,
        threshold=180,
        value=185,
        instance="main\x1b]0;owned\x07",
        message="health check said: \x1b[31mred\x1b[0m",
    )
    nagios = render([bad])
    stream = io.StringIO()
    write_checkmk([bad], stream)
    for output in (nagios, stream.getvalue()):
        assert not any(ch in output for ch in "\x1b\x9b\x7f\x07")
    assert "'postgres_main?]0;owned?_connections_db?[2J?2J?'" in nagios
    assert "CRITICAL: health check said: ?[31mred?[0m" in nagios
    (check,) = parse_checkmk(stream.getvalue())
    assert check.service == "poolwatch postgres main?]0;owned?"


def test_checkmk_a_backslash_n_in_a_name_starts_no_long_output_line() -> None:
    bad = result(
        instance="main\\n2 fake",
        severity=Severity.CRITICAL,
        threshold=180,
        value=185,
        message="PostgreSQL main\\nCRITICAL: forged",
    )
    stream = io.StringIO()
    write_checkmk([bad], stream)
    (check,) = parse_checkmk(stream.getvalue())
    assert check.service == "poolwatch postgres main/n2 fake"
    assert check.text.count("\\n") == 1  # only poolwatch's own, before its one result not OK
    assert check.text.endswith("\\nCRITICAL: PostgreSQL main/nCRITICAL: forged")


def test_names_that_read_alike_once_made_safe_stay_distinct_items_and_services() -> None:
    """`a=b` and `a_b` give one perfdata label, `é` and `ü` one Checkmk metric name, `x"` and
    `x'` one service name: a name chosen to match another's must not hide its value."""
    results = [
        result("connections_by_database", 1, labels={"database": "a=b"}),
        result("connections_by_database", 2, labels={"database": "a_b"}),
        result("connections_by_database", 3, labels={"database": "é"}),
        result("connections_by_database", 4, labels={"database": "ü"}),
        result(instance='x"'),
        result(instance="x'"),
    ]
    out = parse_plugin_output(render(results))
    values = {label: item.value for label, item in out.perfdata.items()}
    assert values["postgres_main_connections_by_database_a_b"] == 1
    assert values["postgres_main_connections_by_database_a_b_2"] == 2
    stream = io.StringIO()
    write_checkmk(results, stream)
    checks = {c.service: c for c in parse_checkmk(stream.getvalue())}
    assert set(checks) == {
        "poolwatch postgres main",
        "poolwatch postgres x'",
        "poolwatch postgres x'_2",
    }
    metrics = checks["poolwatch postgres main"].metrics
    assert [metrics[name][0] for name in metrics] == [1, 2, 3, 4]
    assert list(metrics) == [
        "connections_by_database_a_b",
        "connections_by_database_a_b_2",
        "connections_by_database",
        "connections_by_database_2",
    ]


def test_an_ok_summary_of_long_names_stays_within_its_line() -> None:
    """The first line's text of an OK output names up to 3 instances: a container's name of
    10,000 characters is cut there, never pushing the first line past 8 KB."""
    output = render([result(instance="c" * 10_000, source="docker", check="up", unit="bool")])
    out = parse_plugin_output(output)
    assert out.status == "OK"
    assert len(out.text) <= 300
