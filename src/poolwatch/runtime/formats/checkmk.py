"""`--format checkmk`: Checkmk local-check lines, one service per source instance.

    0 "poolwatch postgres main" connections=3;150;180;0;197|up=1;;1;0;1 3 checks OK
    <status> "<service name>" <metrics or -> <text>

The agent runs a local check and Checkmk reads each line as one service: its status (0-3),
its name (quoted, so it may hold spaces), its metrics (`name=value;warn;crit;min;max` joined by
`|`; Checkmk takes no units there and metric names of letters, digits and `_` only) and its
text, where a literal `\\n` starts the long output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TextIO

from poolwatch.runtime.formats.nagios import finding, one_line, ranked
from poolwatch.runtime.formats.perfdata import perfdata_for
from poolwatch.runtime.once import Result, worst

_METRIC_CHARS = re.compile(r"[^A-Za-z0-9_]+")


def service_name(source: str, instance: str) -> str:
    return one_line(f"poolwatch {source} {instance}").replace('"', "'")


def metric_name(result: Result) -> str:
    """`disk_percent_dev_sda1`: the check and its label values, in Checkmk's characters."""
    r = result.reading
    parts = (_METRIC_CHARS.sub("_", part).strip("_") for part in (r.check, *r.labels.values()))
    return "_".join(part for part in parts if part) or "value"


def service_line(results: Sequence[Result]) -> str:
    """The line of one instance's results."""
    first = results[0].reading
    metrics = []
    for result in results:
        item = perfdata_for(result)
        if item is not None:
            metrics.append(replace(item, label=metric_name(result)).render(units=False))
    bad = ranked(results)
    if bad:
        text = "; ".join(finding(r) for r in bad)
        text += "".join(f"\\n{r.severity.label.upper()}: {one_line(r.message)}" for r in bad)
    else:
        text = f"{len(results)} check{'' if len(results) == 1 else 's'} OK"
    name = service_name(first.source, first.instance)
    return f'{int(worst(results))} "{name}" {"|".join(metrics) or "-"} {text}'


def write_checkmk(results: Sequence[Result], out: TextIO) -> None:
    groups: dict[tuple[str, str], list[Result]] = {}
    for result in results:
        groups.setdefault((result.reading.source, result.reading.instance), []).append(result)
    for group in groups.values():
        out.write(service_line(group) + "\n")
