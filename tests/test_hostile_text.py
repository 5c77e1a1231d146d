"""Names that other people choose, driven through every output poolwatch writes.

Roles, databases, `application_name`, container names and labels, health-check output and
silence comments may hold line breaks, ESC sequences, every other control character, `|`, `=`,
quotes, replacement characters and 10,000 characters. Whatever they hold:
- each text format (`--format nagios` and its perfdata, `--format checkmk`, the `--once` table,
  `silence list`) parses back to the same number of lines, services and perfdata items, read by
  the strict readers of tests/plugin_syntax.py, and carries no control character;
- the JSON formats (`--once --format json`, events, `silence list --format json`) parse back to
  exactly the names given, and every event is valid against poolwatch.event/v1.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poolwatch.config.rules import Rule
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.matchers import Matcher
from poolwatch.core.model import Reading
from poolwatch.core.rule import Threshold
from poolwatch.core.text import printable
from poolwatch.once.formats.checkmk import write_checkmk
from poolwatch.once.formats.nagios import ranked, render, status_name, status_of
from poolwatch.once.formats.perfdata import label_for, perfdata_for
from poolwatch.once.results import (
    Result,
    context_lines,
    results_for,
    worst,
    write_json,
    write_table,
)
from poolwatch.silences.commands import show
from poolwatch.silences.store import SilenceStore
from poolwatch.sinks.webhook.sink import encode
from poolwatch.sources.docker.collector import HEALTH_OUTPUT_CHARS
from poolwatch.sources.postgres.holders import holders_context
from tests.plugin_syntax import parse_checkmk, parse_perfdata, parse_plugin_output

T0 = datetime(2026, 11, 27, 17, 4, 17, tzinfo=UTC)

FORGERIES = [
    "\n",
    "\r",
    "\r\n",
    "\t",
    "\x0b",
    "\x0c",
    "\x00",
    "\x1b[2J\x1b[H",  # clear the screen, cursor home
    "\x1b]0;owned\x07",  # set the terminal's title
    "\x7f",
    "\x85",  # NEL: a line break to Python and to some readers
    "\x9b2J",  # CSI, the one-byte ESC [
    "\x1c",
    "\u2028",
    "\u2029",
    # lone surrogates: text decoded with surrogateescape, which gives only U+DC80..U+DCFF (no
    # high surrogate, so never a pair that JSON would read back as one character)
    "\udc80",
    "\udcff",
    "\ufffd",  # what a byte that is not UTF-8 becomes, decoded with replacement
    "|",
    "=",
    "'",
    "''",
    '"',
    "\\",
    "\\n",  # Checkmk's line break in a local check's text
    "::",
    ";",
    " ",
    "x\nPOOLWATCH OK - injected | fake=1",
    '"\n0 "poolwatch postgres fake" - all fine',
]

pieces = st.one_of(
    st.sampled_from(FORGERIES),
    st.text(max_size=6),
    st.binary(max_size=6).map(lambda raw: raw.decode("utf-8", "replace")),  # as sources decode
)
short_names = st.lists(pieces, max_size=6).map("".join)
long_names = (
    st.lists(pieces, min_size=1, max_size=4)
    .map(
        lambda parts: (
            ("".join(parts) or "x") * (10_000 // max(1, len("".join(parts)))) + "x" * 10_000
        )
    )
    .map(lambda text: text[:10_000])
)
names = st.one_of(short_names, short_names, long_names)
"""Any string; a third of them 10,000 characters long."""
instances = names.map(lambda name: name or "main")
"""Instance names are never empty (the schema requires one)."""

RULES = {
    "connections": Rule(
        alert="PostgreSQLConnectionPoolHigh",
        alert_critical="PostgreSQLConnectionPoolCritical",
        warning=Threshold(150),
        critical=Threshold(180),
    ),
    "connections_by_database": Rule(alert="PostgreSQLDatabaseConnections", warning=Threshold(50)),
    "database_size_bytes": Rule(alert="PostgreSQLDiskSpaceHigh", warning=Threshold(1e9)),
    "health": Rule(alert="ContainerUnhealthy", critical=Threshold(0.5), direction="below"),
}
"""Rules as the sources' defaults give them, for the checks the readings below carry."""


class _Rules:
    """What `results_for` reads of a collector: its rules."""

    rules = RULES


def _holders_row(application: str, user_oid: int, client: str, query: str) -> dict[str, str]:
    """A HOLDERS row as PostgreSQL returns it (three JSON columns) for one group and one
    blocker, with the names given; the query as the hex of its bytes, as the server sends it."""
    raw = query.encode("utf-8", "surrogatepass").hex()  # a lone surrogate: bytes not UTF-8
    group = {
        "application": application,
        "usesysid": user_oid,
        "client": client,
        "state": "idle in transaction",
        "count": 40,
        "idle_in_transaction": 12.5,
        "transaction": 13.0,
        "query": raw,
    }
    session = {
        "pid": 4242,
        "application": application,
        "usesysid": user_oid,
        "client": client,
        "state": "idle in transaction",
        "state_seconds": 360.0,
        "query": raw,
    }
    return {
        "groups": json.dumps([group]),
        "waits": json.dumps([[4343, [4242]]]),
        "sessions": json.dumps([session]),
    }


@st.composite
def readings(draw: st.DrawFn) -> list[Reading]:
    """Readings as the sources make them from hostile names: PostgreSQL per-database and
    per-user counts and sizes with the holders context, Docker health with its output."""
    out: list[Reading] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["pool", "database", "size", "health"]))
        value = draw(st.sampled_from([0, 5, 60, 160, 185, 2e9]))
        if kind == "pool":
            user, application, client, query = (draw(names) for _ in range(4))
            row = _holders_row(application, 10, client, query)
            context = holders_context(row, {10: user}, with_query=draw(st.booleans()))
            out.append(
                Reading("postgres", draw(instances), "connections", value, "connections", 197.0,
                        context=context)
            )  # fmt: skip
        elif kind == "database":
            label = draw(st.sampled_from(["database", "user", "application", "client"]))
            out.append(
                Reading("postgres", draw(instances), f"connections_by_{label}", value,
                        "connections", 197.0, {label: draw(names)})
            )  # fmt: skip
        elif kind == "size":
            labels = {"database": draw(names)}
            out.append(Reading("postgres", draw(instances), "database_size_bytes", value, "bytes",
                               None, labels))  # fmt: skip
        else:
            output = draw(names).strip()[:HEALTH_OUTPUT_CHARS]  # as the Docker source cuts it
            labels = {"compose_service": draw(names), "image": draw(names)}
            out.append(
                Reading("docker", draw(instances), "health", float(value > 100), "bool", None,
                        labels, context={"health_output": output} if output else None)
            )  # fmt: skip
    return out


def results_of(found: Sequence[Reading]) -> list[Result]:
    return results_for(_Rules(), found)  # type: ignore[arg-type]


CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
"""Every character that may break a line or drive a terminal, but `\\n` (written on purpose)."""


def assert_inert(text: str) -> list[str]:
    """No control character but the line feeds poolwatch writes; returns the lines."""
    found = CONTROL.search(text)
    assert found is None, f"control character {found.group()!r} in the output"
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    assert len(lines) == len(text.splitlines()), "a line break other than \\n"
    return lines


MARKER = re.compile(
    r"\((?:(?P<lines>\d+) more results not OK)?(?: and )?(?:(?P<items>\d+) perfdata items)?"
    r" left out: plugin output is kept within 8 KB\)"
)

hostile = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@hostile
@given(readings())
def test_nagios_output_has_one_line_per_result_not_ok_and_one_item_per_value(
    found: list[Reading],
) -> None:
    results = results_of(found)
    output = render(results)
    assert_inert(output)
    parsed = parse_plugin_output(output)  # the strict reader: first line, items, 8 KB
    assert parsed.status == status_name(status_of(results))
    long_output = list(parsed.long_output)
    more_lines = more_items = 0
    if long_output and (cut := MARKER.fullmatch(long_output[-1])):
        long_output.pop()
        more_lines, more_items = int(cut["lines"] or 0), int(cut["items"] or 0)
    bad = ranked(results)
    assert all(line.startswith(("CRITICAL: ", "WARNING: ")) for line in long_output)
    assert len(long_output) + more_lines == len(bad)
    values = [r for r in results if perfdata_for(r) is not None]
    assert len(parsed.perfdata) + more_items == len(values)


@hostile
@given(readings())
def test_each_perfdata_item_is_one_item_with_its_value(found: list[Reading]) -> None:
    for result in results_of(found):
        item = perfdata_for(result)
        if item is None:
            continue
        text = item.render()
        assert CONTROL.search(text) is None
        (parsed,) = parse_perfdata(text).values()
        assert (parsed.label, parsed.value) == (label_for(result), result.reading.value)


@hostile
@given(readings())
def test_checkmk_output_has_one_service_per_instance_and_one_metric_per_value(
    found: list[Reading],
) -> None:
    results = results_of(found)
    out = io.StringIO()
    write_checkmk(results, out)
    assert_inert(out.getvalue())
    services = parse_checkmk(out.getvalue())  # the strict reader: a service named once
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.reading.source, r.reading.instance), []).append(r)
    assert len(services) == len(groups)
    for service, group in zip(services, groups.values(), strict=True):
        assert service.status == int(worst(group))
        assert len(service.metrics) == sum(perfdata_for(r) is not None for r in group)
        # a literal `\n` starts a line of Checkmk's long output: one per result not OK
        assert service.text.count("\\n") == len(ranked(group))


@hostile
@given(readings(), st.booleans())
def test_the_table_has_one_row_per_result_and_its_context_lines(
    found: list[Reading], colour: bool
) -> None:
    results = results_of(found)
    out = io.StringIO()
    write_table(results, out, colour=colour)
    text = out.getvalue()
    if colour:  # the table's own colours, and nothing else, may be ESC sequences
        text = re.sub("\x1b\\[(?:3[123]|0)m", "", text)
    lines = assert_inert(text)
    expected = 1 + sum(1 + len(context_lines(r.context)) for r in results) + 2
    assert len(lines) == expected
    row = 1
    for r in results:
        assert lines[row].startswith(r.severity.label.upper())
        extra = len(context_lines(r.context))
        assert all(line.startswith("    ") for line in lines[row + 1 : row + 1 + extra])
        row += 1 + extra
    assert lines[-1].startswith("worst: ")


@hostile
@given(readings())
def test_once_json_lines_give_back_every_name_exactly(found: list[Reading]) -> None:
    results = results_of(found)
    out = io.StringIO()
    write_json(results, out)
    lines = assert_inert(out.getvalue())  # JSON escapes every control character itself
    assert len(lines) == len(results)
    for line, result in zip(lines, results, strict=True):
        data = json.loads(line)
        assert (data["instance"], data["labels"]) == (
            result.reading.instance,
            dict(result.reading.labels),
        )


silence_texts = names.filter(lambda s: s.strip()).map(
    lambda s: re.sub("[\ud800-\udfff]", "\ufffd", s)  # sqlite stores UTF-8 only
)


@hostile
@given(st.lists(st.tuples(silence_texts, silence_texts, silence_texts), min_size=1, max_size=4))
def test_silence_list_has_one_line_per_silence(silences: list[tuple[str, str, str]]) -> None:
    with tempfile.TemporaryDirectory() as state:
        store = SilenceStore(Path(state))
        for comment, author, instance in silences:
            matcher = Matcher("instance", "=", instance)
            store.add([matcher], T0, T0 + timedelta(hours=2), author=author, comment=comment)
        table, lines_json = io.StringIO(), io.StringIO()
        show(store, T0, everything=False, output="table", out=table)
        show(store, T0, everything=False, output="json", out=lines_json)
    assert len(assert_inert(table.getvalue())) == 1 + len(silences)
    rows = [json.loads(line) for line in assert_inert(lines_json.getvalue())]
    assert sorted((r["comment"], r["author"]) for r in rows) == sorted(
        (comment, author) for comment, author, _ in silences
    )


@hostile
@given(found=readings())
def test_every_event_from_hostile_names_is_valid_and_gives_them_back(
    found: list[Reading], event_validator: Any
) -> None:
    # lone surrogates reach no event: no source can produce them (asyncpg, the Docker engine's
    # JSON and Redis replies are decoded as UTF-8), and JSON for other programs must be UTF-8
    found = [_no_surrogates(r) for r in found]
    evaluator = Evaluator("vm")
    events = evaluator.observe("test", found, RULES, T0)
    for event in events:
        data = event.to_dict()
        event_validator.validate(data)
        line = json.dumps(data)
        assert "\n" not in line
        back = json.loads(line)
        event_validator.validate(back)
        assert (back["instance"], back["labels"]) == (event.instance, dict(event.labels))
        assert json.loads(encode(event)) == back  # the webhook's body: UTF-8 bytes


def _no_surrogates(reading: Reading) -> Reading:
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return re.sub("[\ud800-\udfff]", "\ufffd", value)
        if isinstance(value, dict | Mapping):
            return {clean(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return Reading(
        reading.source,
        clean(reading.instance),
        reading.check,
        reading.value,
        reading.unit,
        reading.limit,
        clean(dict(reading.labels)),
        context=None if reading.context is None else clean(reading.context),
    )


@given(st.text(alphabet=st.characters(codec=None), max_size=50) | st.sampled_from(FORGERIES))
def test_printable_replaces_each_control_character_with_one_question_mark(text: str) -> None:
    made = printable(text)
    assert len(made) == len(text)
    assert "\n" not in made
    assert CONTROL.search(made) is None
    assert all(a == b or b == "?" for a, b in zip(text, made, strict=True))


def test_the_table_shows_a_clearing_health_output_and_a_forged_row_inert() -> None:
    """The issue's case: a container's health output clears a terminal, a name forges a row."""
    found = [
        Reading("docker", "web\n    holder forged", "health", 0, "bool", None,
                {"image": "nginx\x1b[2J"},
                context={"health_output": "down\x1b[2J\x1b[H\r\nCRITICAL  fake"}),
    ]  # fmt: skip
    out = io.StringIO()
    write_table(results_of(found), out, colour=False)
    assert out.getvalue().split("\n") == [
        "SEVERITY  SOURCE  INSTANCE               CHECK   VALUE  MESSAGE",
        "CRITICAL  docker  web?    holder forged  health  0      "
        + printable(results_of(found)[0].message),
        "    health check: down?[2J?[H CRITICAL fake",
        "",
        "worst: CRITICAL",
        "",
    ]
