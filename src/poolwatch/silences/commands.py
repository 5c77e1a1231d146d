"""`poolwatch silence add|list|expire`: what each does to the store, and what it prints.

The running daemon sees the change within a second (it reads the store twice a second) and
sends the audit notice itself, on stdout and to the webhooks; these commands only write the
store, so they work whether or not a daemon runs, and never touch its delivery queues.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TextIO

from poolwatch.config.fields import format_duration, parse_duration
from poolwatch.core.matchers import Matcher, MatcherError
from poolwatch.core.model import rfc3339
from poolwatch.core.text import printable
from poolwatch.silences.store import Silence, SilenceError, SilenceStore


class UsageError(Exception):
    """The command was given something it cannot use; `str()` is the one line to show."""


def expiry(now: datetime, for_: str | None, until: str | None, max_duration: float) -> datetime:
    """`--for 2h` or `--until 2026-05-01T06:00+02:00` → when the silence ends (mandatory,
    in the future, at most `max_duration` away)."""
    if (for_ is None) == (until is None):
        raise UsageError("give exactly one of --for DURATION or --until TIME: a silence must end")
    if for_ is not None:
        try:
            ends = now + timedelta(seconds=parse_duration(for_))
        except ValueError as exc:
            raise UsageError(f"--for {for_!r}: {exc}") from None
    else:
        assert until is not None
        try:
            ends = datetime.fromisoformat(until.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f"--until {until!r}: expected a time like 2026-05-01T06:00+02:00"
            ) from None
        if ends.tzinfo is None:
            raise UsageError(f"--until {until!r}: give the offset (+02:00, Z): whose clock is it?")
    if ends <= now:
        raise UsageError(f"the silence would end at {rfc3339(ends)}, which has passed")
    if (ends - now).total_seconds() > max_duration + 1:
        raise UsageError(
            f"a silence may last at most {format_duration(max_duration)} (silences.max_duration)"
        )
    return ends


def parse_matchers(texts: Sequence[str]) -> list[Matcher]:
    if not texts:
        raise UsageError("give at least one --match key=value: what is to be silenced?")
    try:
        return [Matcher.parse(text) for text in texts]
    except MatcherError as exc:
        raise UsageError(str(exc)) from None


def add(
    store: SilenceStore,
    now: datetime,
    *,
    matchers: Sequence[str],
    for_: str | None,
    until: str | None,
    comment: str,
    author: str | None,
    max_duration: float,
    out: TextIO,
) -> None:
    parsed = parse_matchers(matchers)
    ends = expiry(now, for_, until, max_duration)
    if not comment.strip():
        raise UsageError("--comment must say why (the audit trail shows it)")
    silence = store.add(parsed, now, ends, author=author, comment=comment)
    out.write(f"{silence.id}\n")


def expire(store: SilenceStore, now: datetime, ident: str, out: TextIO) -> None:
    try:
        silence = store.expire(ident, now)
    except SilenceError as exc:
        raise UsageError(str(exc)) from None
    out.write(f"{silence.id} expired\n")


def to_dict(silence: Silence, now: datetime) -> dict[str, object]:
    return {
        "id": silence.id,
        "state": silence.state(now),
        "matchers": list(silence.matchers),
        "from": rfc3339(silence.starts),
        "until": rfc3339(silence.until),
        "author": silence.author,
        "comment": silence.comment,
    }


def show(store: SilenceStore, now: datetime, *, everything: bool, output: str, out: TextIO) -> None:
    """Active (and pending) silences; `everything`: ended and expired ones too. The table's cells
    go through `printable` (a comment's line break would forge a row); JSON needs no help."""
    rows = [s for s in store.all() if everything or s.state(now) in ("active", "pending")]
    if output == "json":
        for silence in rows:
            out.write(json.dumps(to_dict(silence, now)) + "\n")
        return
    table: list[tuple[str, ...]] = [("ID", "STATE", "UNTIL", "AUTHOR", "MATCHERS", "COMMENT")]
    for s in rows:
        fields = (s.id, s.state(now), rfc3339(s.until), s.author or "-", " ".join(s.matchers))
        table.append(tuple(printable(field) for field in (*fields, s.comment)))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:5])]
        out.write("  ".join([*cells, row[5]]).rstrip() + "\n")
