"""libpq keyword DSNs are read as libpq reads them, for connecting, for masking and for what the
scrubber learns.

Reproduced: `password='ab\\'cd secret'` was masked up to the backslash only (`--check-config`
showed `password=***cd secret'`), and the scrubber learned the password `ab\\`. The class is
tested: keyword DSNs written with libpq's quoting rules (quoted, or bare with backslash escapes,
any whitespace around `=`) round-trip through our parser, and agree with libpq's own
`PQconninfoParse` (psycopg's binary package carries libpq).
"""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict

from poolwatch.config.load import load
from poolwatch.config.secrets import redacted, secret_values
from poolwatch.core import conninfo
from poolwatch.core.secrets import MASK, Scrubber, mask_urls, url, url_secrets
from poolwatch.sources.postgres.dsn import libpq_uri
from tests.daemon import poolwatch

KEYS = ["host", "port", "dbname", "user", "application_name", "sslmode", "options"]
SPACE = " \t\n\v\f\r"
# every character libpq's quoting treats specially, and ordinary ones
VALUES = st.text(
    alphabet=st.sampled_from(list(string.ascii_letters + string.digits + "'\\= @:/#?+" + SPACE)),
    max_size=20,
)


def bare(value: str) -> str:
    """`value` written unquoted: whitespace and backslashes escaped, and a leading quote."""
    escaped = "".join(f"\\{c}" if c in SPACE or c == "\\" else c for c in value)
    return f"\\{escaped}" if escaped.startswith("'") else escaped


@st.composite
def written(draw: st.DrawFn, value: str) -> str:
    """One way libpq accepts to write `value`."""
    if not value or draw(st.booleans()):
        return conninfo.quote(value)
    return bare(value)


@st.composite
def dsns(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """(a keyword DSN, what it means): keys once each, a password always, in any order."""
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=4))
    keys.insert(draw(st.integers(0, len(keys))), "password")
    meaning = {key: draw(VALUES) for key in keys}
    pieces = []
    for key, value in meaning.items():
        around = draw(st.sampled_from(["", " ", "\t", "  "]))
        pieces.append(f"{key}{around}={around}{draw(written(value))}")
    glue = draw(st.sampled_from([" ", "\t", "\n", "  "]))
    return glue.join(pieces), meaning


@settings(max_examples=400, deadline=None)
@given(dsns())
def test_keyword_dsns_round_trip_and_agree_with_libpq(case: tuple[str, dict[str, str]]) -> None:
    text, meaning = case
    assert conninfo.parse(text) == meaning
    assert conninfo_to_dict(text) == meaning  # libpq's own reading


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(["host", "port", "password", "=", " ", "\t", "'", "\\", "x", "y z"]),
        max_size=12,
    ).map("".join)
)
def test_any_text_is_accepted_or_refused_as_libpq_does(text: str) -> None:
    try:
        theirs: dict[str, str] | None = conninfo_to_dict(text)
    except ProgrammingError as exc:
        assume("invalid connection option" not in str(exc))  # libpq also checks the names
        theirs = None
    try:
        ours: dict[str, str] | None = conninfo.parse(text)
    except conninfo.ConninfoError:
        ours = None
    assert ours == theirs


@settings(max_examples=400, deadline=None)
@given(dsns())
def test_masking_and_the_scrubber_take_the_whole_password(
    case: tuple[str, dict[str, str]],
) -> None:
    text, meaning = case
    password = meaning["password"]
    masked = url(text)
    assert conninfo.parse(masked) == {**meaning, "password": MASK}
    assert url_secrets(text) == ([password] if password else [])
    if password.strip():
        assert Scrubber([password])(f"auth failed for {password} ") == f"auth failed for {MASK} "
    else:  # white space alone is left alone: masking it would garble the line, hiding nothing
        assert (
            Scrubber([password])(f"auth failed for {password} ") == f"auth failed for {password} "
        )
    # free text (a driver's message quoting the DSN) loses the whole value too
    (written_password,) = [k for k in conninfo.keywords(text) if k.key == "password"]
    elsewhere = text[: written_password.start] + text[written_password.end :]
    free = mask_urls(f"could not connect with {text} (refused)")
    assert "password=***" in free
    as_written = text[written_password.start : written_password.end]
    for piece in password.split() + as_written.split():
        if len(piece) > 3 and piece not in elsewhere:
            assert piece not in free, (text, free)


def test_the_reported_escaped_quote_is_masked_whole_and_learned_whole() -> None:
    dsn = r"host=db.example user=mon password='ab\'cd secret' dbname=app"
    config = load(None, {"POOLWATCH_POSTGRES_DSN": dsn, "POOLWATCH_HOST_STATS": "off"})
    assert "ab'cd secret" in set(secret_values(config))
    shown = str(redacted(config)["postgres"]["targets"])
    assert "password=***" in shown
    assert "secret" not in shown
    assert "cd" not in shown.replace("db.example", "")
    done = poolwatch(
        "--check-config",
        env={"POOLWATCH_POSTGRES_DSN": dsn, "POOLWATCH_HOST_STATS": "off"},
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "host=db.example user=mon password=*** dbname=app" in done.stdout
    assert "secret" not in done.stdout


def test_a_keyword_dsn_whose_password_holds_a_scheme_is_still_a_keyword_dsn() -> None:
    """Found by the property above: `password=a://b` made the DSN read as a URI (as libpq, a
    URI is told by how the string begins)."""
    dsn = "host=db.example user=mon password=x://Secret0@y dbname=app"
    config = load(None, {"POOLWATCH_POSTGRES_DSN": dsn, "POOLWATCH_HOST_STATS": "off"})
    assert "x://Secret0@y" in set(secret_values(config))
    assert url(dsn) == "host=db.example user=mon password=*** dbname=app"
    uri = libpq_uri(dsn)
    assert uri is not None
    assert uri.startswith("postgresql://?")
    assert "Secret0" not in url(uri)


@pytest.mark.parametrize(
    "dsn",
    [
        r"host=db port=notaport password='ab\'cd secret'",
        r"host=db port=notaport password=ab\ cd\ secret",
    ],
)
def test_a_refused_keyword_dsn_hides_the_whole_password(dsn: str) -> None:
    done = poolwatch(
        "--check-config",
        env={"POOLWATCH_POSTGRES_DSN": dsn, "POOLWATCH_HOST_STATS": "off"},
        timeout=30,
    )
    assert done.returncode == 3
    assert "notaport" in done.stderr
    assert "secret" not in done.stderr
    assert "cd" not in done.stderr


def test_a_password_of_white_space_does_not_garble_log_lines() -> None:
    """Found by the property above: `password=\\ ` is a password of one space."""
    assert Scrubber([" ", "\t"])("auth failed for user a b\tc") == "auth failed for user a b\tc"
