"""`include_query_text`: a query's values never show, in any form PostgreSQL's scanner knows
(E-strings with `\\'`, dollar quotes with any tag, nested comments, quoted identifiers, Unicode
escapes), also when the text is cut inside one, as `pg_stat_activity` and the 200-character read
cut it. Hypothesis places a random secret in each form; the real server runs one such query."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.eventually import eventually
from tests.postgres.pgserver import LOAD_PASSWORD, PgServer
from tests.postgres.test_postgres_pool import make_target

from poolwatch.sources.postgres.collector import PostgresCollector
from poolwatch.sources.postgres.querytext import QUERY_CHARS, WITHHELD, scrub

SECRET_CHARS = "qzjxkvw0123456789"
"""No keyword (upper case), name (`accounts`, `a`, `b`) or operator below holds four of these in
a row, so four in a row in the output can only come from a secret."""
pieces = st.text(alphabet=SECRET_CHARS, min_size=6, max_size=30)
tags = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,4}", fullmatch=True) | st.just("")
spaces = st.sampled_from([" ", "  ", "\n", "\t", "\n  ", " \r\n"])


@st.composite
def hiding(draw: st.DrawFn) -> tuple[str, list[str]]:
    """One form that holds values, and the values it holds."""
    a, b = draw(pieces), draw(pieces)
    tag = draw(tags)
    form = draw(
        st.sampled_from(
            [
                f"'{a}'",
                f"'{a}''{b}'",  # a quote doubled inside
                f"E'{a}\\'{b}'",  # an escaped quote in an E-string
                f"e'{a}\\\\'",
                f"E'{a}\\\\\\'{b}'",
                f"${tag}${a}'{b}${tag}$",  # a dollar quote: any tag, a quote inside
                f"${tag}$ $x$ {a} ${tag}$",
                f"/* {a} */",
                f"/* /* {a} */ {b} */",  # comments nest in PostgreSQL
                f"-- {a}\n",
                f'"{a}"',  # a quoted identifier
                f'"{a}""{b}"',
                f'U&"{a}"',
                f"U&'{a}'",
                f"X'{a}'",
                f"N'{a}'",
                f"'{a}\\' {b}'",  # a backslash: where it ends depends on the server's setting
                f"'{a}'\n'{b}'",  # continued on the next line
                "9" + "".join(c for c in a if c.isdigit()).rjust(7, "8"),  # a number
                "9" + "".join(c for c in a if c.isdigit()).rjust(7, "8") + ".5e3",
            ]
        )
    )
    return form, [a, b]


@st.composite
def queries(draw: st.DrawFn) -> tuple[str, list[str]]:
    first, one = draw(hiding())
    second, two = draw(hiding())
    gaps = [draw(spaces) for _ in range(4)]
    query = (
        f"SELECT a,{gaps[0]}{first}{gaps[1]}FROM accounts{gaps[2]}"
        f"WHERE b = {second}{gaps[3]}AND a <> $1"
    )
    return query, one + two


def leaked(output: str, secrets: list[str]) -> list[str]:
    return [
        secret[i : i + 4]
        for secret in secrets
        for i in range(len(secret) - 3)
        if secret[i : i + 4] in output
    ]


@settings(max_examples=400, deadline=None)
@given(queries())
def test_no_value_shows_in_any_form(case: tuple[str, list[str]]) -> None:
    query, secrets = case
    shown = scrub(query)
    assert shown is not None
    assert not leaked(shown, secrets), shown
    assert shown.startswith("SELECT a, ")  # the shape stays readable
    assert shown != WITHHELD


@settings(max_examples=400, deadline=None)
@given(queries(), st.data())
def test_no_value_shows_when_the_text_is_cut_anywhere(
    case: tuple[str, list[str]], data: st.DataObject
) -> None:
    """`pg_stat_activity` keeps `track_activity_query_size` bytes, poolwatch reads 200
    characters: the text ends wherever, inside a literal, a comment or a quoted identifier."""
    query, secrets = case
    cut = data.draw(st.integers(0, len(query)))
    shown = scrub(query[:cut])
    assert shown is not None
    assert not leaked(shown, secrets), (query[:cut], shown)
    assert len(shown) <= QUERY_CHARS


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("SELECT pg_sleep(5)", "SELECT pg_sleep(?)"),
        (
            "UPDATE t SET n = n + 1 WHERE id = 1 AND 'alice@example.com' <> '' FOR UPDATE",
            "UPDATE t SET n = n + ? WHERE id = ? AND ? <> ? FOR UPDATE",
        ),
        ("SELECT E'x\\'secret', $a1$secret$a1$ /* secret */", "SELECT ?, ?"),
        ('SELECT "Secret Column", U&"d\\0061t" FROM t', 'SELECT "?", "?" FROM t'),
        ("SELECT x::int[], a.b -- secret", "SELECT x::int[], a.b"),
        ("SELECT 'cut here: secr", "SELECT ?"),
        ("SELECT 1, /* cut comment", "SELECT ?, ?"),
        ("SELECT 'a\\' secret'", "SELECT ?"),
        ("SELECT \x1b, \x07", "SELECT ?, ?"),  # a control character is no token to show
        ("", ""),
    ],
)
def test_the_shape_stays_readable(query: str, shown: str) -> None:
    assert scrub(query) == shown


def test_a_text_the_scanner_cannot_account_for_is_withheld_whole() -> None:
    """A NUL ends the scanner's C string: what follows it is read by no one, so shown by no one."""
    assert scrub("SELECT 1\x00 'secret'") == WITHHELD


SECRET = "pw-s3cret-value"
LONG_QUERY = (
    f'SELECT pg_sleep(60) AS "{SECRET}-ident" /* {SECRET}-comment */'
    f" WHERE E'{SECRET}-e\\'' <> $a1${SECRET}-dollar$a1$"
    f" AND '{SECRET}-cut" + "x" * 2000 + "' <> ''"
)
"""Longer than `track_activity_query_size` (1024 bytes) and than the 200 characters read: the
text poolwatch gets ends inside the last literal."""


@pytest.mark.integration
async def test_the_servers_truncated_text_shows_no_value(pg: PgServer) -> None:
    conn = await asyncpg.connect(pg.dsn("pw_load", LOAD_PASSWORD), timeout=20)
    running = asyncio.create_task(conn.execute(LONG_QUERY))
    admin = await pg.admin()
    try:
        await eventually(
            lambda: admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
            ),
            "the query running",
            20,
            0.05,
        )
        assert len(await admin.fetchval(
            "SELECT query FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
        )) < len(LONG_QUERY)  # the server cut it  # fmt: skip
        env = {"POSTGRES_CONN_WARNING": "1", "POSTGRES_CONN_CRITICAL": "150"}
        target = make_target(pg.dsn(), env).model_copy(update={"include_query_text": True})
        collector = PostgresCollector(target)
        try:
            readings = await collector.collect()
        finally:
            await collector.close()
    finally:
        running.cancel()
        with contextlib.suppress(BaseException):
            await running
        await admin.close()
        conn.terminate()
    connections = next(r for r in readings if r.check == "connections")
    assert connections.context is not None, connections.message
    (query,) = [h["query"] for h in connections.context["holders"] if h["user"] == "pw_load"]
    assert query == 'SELECT pg_sleep(?) AS "?" WHERE ? <> ? AND ?'
    assert "s3cret" not in str(connections.context)
