"""Strict readers of the two plugin syntaxes, written from their specifications, not from
poolwatch's code: what a consumer would refuse, they refuse.

- Monitoring Plugins guidelines (https://www.monitoring-plugins.org/doc/guidelines.html):
  `TEXT | 'label'=value[UOM];[warn];[crit];[min];[max]`, items separated by spaces, a label
  quoted when it has spaces (a `'` inside doubled), UOM one of s ms us % B KB MB TB c or none;
  restricted here to plain numbers for warn/crit, as Icinga 2 keeps only those.
- Checkmk local checks (Checkmk 2.x docs, "Local checks"): `<status> "<service name>"
  <metrics> <text>`, status 0-3, metrics `-` or `name=value;warn;crit;min;max` joined by `|`,
  metric names of letters, digits and `_`, values without units. There is no Checkmk on this
  machine to ask, so this reader stands in for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER = r"-?\d+(?:\.\d+)?"
UOM = r"(?:s|ms|us|%|B|KB|MB|GB|TB|c)?"
_ITEM = re.compile(
    rf"(?P<label>'(?:[^']|'')+'|[^' =]+)=(?P<value>{NUMBER})(?P<uom>{UOM})"
    rf"(?:;(?P<warn>{NUMBER})?)?(?:;(?P<crit>{NUMBER})?)?"
    rf"(?:;(?P<min>{NUMBER})?)?(?:;(?P<max>{NUMBER})?)?"
)
_FIRST = re.compile(r"POOLWATCH (?P<status>OK|WARNING|CRITICAL|UNKNOWN) - (?P<text>[^|]+?)")


@dataclass(frozen=True)
class Item:
    label: str
    value: float
    uom: str
    warn: float | None
    crit: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True)
class PluginOutput:
    status: str
    text: str
    perfdata: dict[str, Item]
    long_output: list[str]


def _num(text: str | None) -> float | None:
    return None if text is None else float(text)


def parse_perfdata(text: str) -> dict[str, Item]:
    items: dict[str, Item] = {}
    pos = 0
    while pos < len(text):
        match = _ITEM.match(text, pos)
        assert match, f"not perfdata at {text[pos : pos + 60]!r}"
        label = match["label"]
        if label.startswith("'"):
            label = label[1:-1].replace("''", "'")
        assert label not in items, f"duplicate perfdata label {label!r}"
        items[label] = Item(
            label,
            float(match["value"]),
            match["uom"],
            *(_num(match[k]) for k in ("warn", "crit", "min", "max")),
        )
        pos = match.end()
        if pos < len(text):
            assert text[pos] == " ", f"perfdata items must be separated by a space at {pos}"
            pos += 1
    return items


def parse_plugin_output(output: str) -> PluginOutput:
    assert output.endswith("\n")
    assert output.count("\n") == len(output.splitlines()), "a line break inside a line"
    assert len(output.encode()) <= 8192, "plugin output over 8 KB"
    first, *long_output = output.splitlines()
    text, bar, perf = first.partition(" | ")
    match = _FIRST.fullmatch(text)
    assert match, f"first line not `POOLWATCH STATUS - text`: {first!r}"
    assert all("|" not in line for line in long_output), "a | in long output starts perfdata"
    return PluginOutput(
        match["status"], match["text"], parse_perfdata(perf) if bar else {}, long_output
    )


_CHECKMK = re.compile(r'(?P<status>[0-3]) "(?P<service>[^"]+)" (?P<metrics>\S+) (?P<text>.+)')
_METRIC = re.compile(rf"[A-Za-z0-9_]+={NUMBER}(?:;(?:{NUMBER})?){{0,4}}")


@dataclass(frozen=True)
class LocalCheck:
    status: int
    service: str
    metrics: dict[str, list[float | None]]
    text: str


def parse_checkmk(output: str) -> list[LocalCheck]:
    checks = []
    for line in output.splitlines():
        match = _CHECKMK.fullmatch(line)
        assert match, f"not a Checkmk local-check line: {line!r}"
        metrics: dict[str, list[float | None]] = {}
        if match["metrics"] != "-":
            for metric in match["metrics"].split("|"):
                assert _METRIC.fullmatch(metric), f"not a Checkmk metric: {metric!r}"
                name, _, values = metric.partition("=")
                assert name not in metrics, f"duplicate metric {name!r}"
                metrics[name] = [_num(v or None) for v in values.split(";")]
        checks.append(LocalCheck(int(match["status"]), match["service"], metrics, match["text"]))
    assert len({c.service for c in checks}) == len(checks), "a service named twice"
    return checks
