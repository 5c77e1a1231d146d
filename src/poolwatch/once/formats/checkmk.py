"""`--format checkmk`: Checkmk local-check lines, one service per source instance.

    0 "poolwatch postgres main" connections=3;150;180;0;197|up=1;;1;0;1 3 checks OK
    <status> "<service name>" <metrics or -> <text>

The agent runs a local check and Checkmk reads each line as one service: its status (0-3),
its name (quoted, so it may hold spaces), its metrics (`name=value;warn;crit;min;max` joined by
`|`; Checkmk takes no units there and metric names of letters, digits and `_` only) and its
text, where a literal `\\n` starts the long output. Names and messages in the text and the
service name pass through `nagios.one_line` (no line break, no control character) and have each
`\\` replaced by `/`, so that no name can start a line of long output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TextIO

from poolwatch.once.formats.nagios import finding, one_line, ranked
from poolwatch.once.formats.perfdata import distinct, perfdata_for
from poolwatch.once.results import Result, worst

_METRIC_CHARS = re.compile(r"[^A-Za-z0-9_]+")


def service_name(source: str, instance: str) -> str:
    return _text(f"poolwatch {source} {instance}").replace('"', "'")


def _text(text: str) -> str:
    """Text that ends no line and starts no line of long output (Checkmk reads `\\n` as one)."""
    return one_line(text).replace("\\", "/")


def metric_name(result: Result) -> str:
    """`disk_percent_dev_sda1`: the check and its label values, in Checkmk's characters."""
    r = result.reading
    parts = (_METRIC_CHARS.sub("_", part).strip("_") for part in (r.check, *r.labels.values()))
    return "_".join(part for part in parts if part) or "value"


def service_line(results: Sequence[Result], name: str) -> str:
    """The line of one instance's results, as the service `name`."""
    items = [(result, item) for result in results if (item := perfdata_for(result)) is not None]
    labels = distinct(metric_name(result) for result, _ in items)
    metrics = [
        replace(item, label=label).render(units=False)
        for (_, item), label in zip(items, labels, strict=True)
    ]
    bad = ranked(results)
    if bad:
        text = "; ".join(_text(finding(r)) for r in bad)
        text += "".join(f"\\n{r.severity.label.upper()}: {_text(r.message)}" for r in bad)
    else:
        text = f"{len(results)} check{'' if len(results) == 1 else 's'} OK"
    return f'{int(worst(results))} "{name}" {"|".join(metrics) or "-"} {text}'


def write_checkmk(results: Sequence[Result], out: TextIO) -> None:
    groups: dict[tuple[str, str], list[Result]] = {}
    for result in results:
        groups.setdefault((result.reading.source, result.reading.instance), []).append(result)
    # two instances whose names read alike once made safe stay two services
    names = distinct(service_name(source, instance) for source, instance in groups)
    for group, name in zip(groups.values(), names, strict=True):
        out.write(service_line(group, name) + "\n")
