"""`--format nagios`: Monitoring Plugins output, as Icinga 2, Nagios and NRPE read it.

    POOLWATCH CRITICAL - postgres main connections 185/197 (94%) >= 180; 1 warning | perfdata
    CRITICAL: PostgreSQL main: connections 185/197 (94%), above critical 180
    WARNING: ...

The first line is the status and the worst finding first, then every numeric result as
perfdata; one long-output line follows per result that is not OK. Nagios keeps 8 KB of plugin
output, so the whole is held within 8 KB: the first line's text is never cut, perfdata and long
output give way (perfdata of the results that are not OK first kept), and a last line says what
was left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TextIO

from poolwatch.core.describe import measurement, number
from poolwatch.core.model import UP_CHECK, Severity
from poolwatch.core.text import printable
from poolwatch.once.formats.perfdata import distinct, perfdata_for
from poolwatch.once.results import Result, worst

LIMIT = 8192
"""Bytes of plugin output Nagios reads (MAX_PLUGIN_OUTPUT_LENGTH); Icinga takes more."""
_MARKER_ROOM = 120
_FINDING_MAX = 300
_LONG_OUTPUT_SHARE = 1024
"""Bytes of long output that perfdata may not crowd out."""

UNKNOWN = 3


def status_of(results: Sequence[Result]) -> int:
    """The exit code: the worst severity; UNKNOWN when nothing was checked at all."""
    return int(worst(results)) if results else UNKNOWN


def status_name(status: int) -> str:
    return ("OK", "WARNING", "CRITICAL", "UNKNOWN")[status]


def one_line(text: str) -> str:
    """Plugin text may hold neither `|` (it starts perfdata) nor a line break: white space
    (line breaks too) folds to one space, any other control character is `?` (`printable`)."""
    return printable(" ".join(text.replace("|", "/").split()))


def _capped(text: str) -> str:
    return text if len(text) <= _FINDING_MAX else text[: _FINDING_MAX - 1] + "…"


def finding(result: Result) -> str:
    """One result in a few words: `postgres main connections 185/197 (94%) >= 180`."""
    r = result.reading
    text = f"{r.source} {r.instance} {measurement(r)}"
    if result.threshold is not None and r.check != UP_CHECK:
        side = ">=" if result.direction == "above" else "<="
        text += f" {side} {number(result.threshold, r.unit)}"
    return _capped(one_line(text))


def ranked(results: Sequence[Result]) -> list[Result]:
    """The results that are not OK, the worst first (stable within a severity)."""
    bad = [r for r in results if r.severity != Severity.OK]
    return sorted(bad, key=lambda r: -r.severity)


def summary(results: Sequence[Result]) -> str:
    if not results:
        return "no check matched the selection"
    bad = ranked(results)
    if not bad:
        instances = dict.fromkeys(f"{r.reading.source} {r.reading.instance}" for r in results)
        scope = ", ".join(instances) if len(instances) <= 3 else f"{len(instances)} instances"
        checks = "check" if len(results) == 1 else "checks"
        return _capped(one_line(f"{len(results)} {checks} OK ({scope})"))
    rest = bad[1:]
    critical = sum(1 for r in rest if r.severity == Severity.CRITICAL)
    warning = len(rest) - critical
    counts = []
    if critical:
        counts.append(f"{critical} more critical")
    if warning:
        counts.append(f"{warning} warning" + ("s" if warning > 1 else ""))
    return finding(bad[0]) + ("; " + ", ".join(counts) if counts else "")


def render(results: Sequence[Result]) -> str:
    """The whole plugin output, within `LIMIT` bytes."""
    head = f"POOLWATCH {status_name(status_of(results))} - {summary(results)}"
    bad = ranked(results)
    long_lines = [f"{r.severity.label.upper()}: {one_line(r.message)}" for r in bad]
    # a threshold that can never fire is worth a line even while everything reads OK
    long_lines += [
        f"NOTE: {one_line(n)}" for n in dict.fromkeys(n for r in results for n in r.notes)
    ]
    # perfdata of what is wrong first, so that it is what survives the limit
    ordered = bad + [r for r in results if r.severity == Severity.OK]
    perfdata = [p for r in ordered if (p := perfdata_for(r)) is not None]
    labels = distinct(p.label for p in perfdata)
    items = [replace(p, label=label).render() for p, label in zip(perfdata, labels, strict=True)]

    long_size = sum(_size(line) + 1 for line in long_lines)
    room = LIMIT - _size(head) - min(long_size, _LONG_OUTPUT_SHARE) - _MARKER_ROOM
    first, kept_items = head, 0
    for item in items:
        piece = (" | " if kept_items == 0 else " ") + item
        if _size(first) + _size(piece) > room:
            break
        first += piece
        kept_items += 1
    out = [first]
    used = _size(first) + 1
    kept_lines = 0
    for line in long_lines:
        if used + _size(line) + 1 > LIMIT - _MARKER_ROOM:
            break
        out.append(line)
        used += _size(line) + 1
        kept_lines += 1
    cut = []
    if kept_lines < len(long_lines):
        cut.append(f"{len(long_lines) - kept_lines} more results not OK")
    if kept_items < len(items):
        cut.append(f"{len(items) - kept_items} perfdata items")
    if cut:
        out.append(f"({' and '.join(cut)} left out: plugin output is kept within 8 KB)")
    return "\n".join(out) + "\n"


def write_nagios(results: Sequence[Result], out: TextIO) -> None:
    out.write(render(results))


def _size(text: str) -> int:
    return len(text.encode("utf-8"))
