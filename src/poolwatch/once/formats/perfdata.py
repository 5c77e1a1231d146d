"""A result as one performance-data item: `'label'=value[UOM];warn;crit;min;max`.

The syntax is the Monitoring Plugins guidelines' in the subset every consumer reads alike:
warn and crit are plain numbers (Icinga 2 drops range syntax such as `@1:5` or `10:`), min is 0
and max the limit when known, and a result without a finite value is left out rather than
written as `U`. Numbers are formatted by hand with `.`, never through the locale.

No poolwatch reading is a monotonic counter (`deadlocks`, `rejected_connections`, `restarts`
are counts since the last poll or within a window), so none gets the UOM `c`: graphers turn `c`
into a per-second rate, which would be wrong for them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from poolwatch.core.text import printable
from poolwatch.once.results import Result

UOMS = {"percent": "%", "bytes": "B", "seconds": "s"}
"""poolwatch unit → perfdata UOM; any other unit (counts, rates, bool) has none."""

_PLAIN_LABEL = re.compile(r"[A-Za-z0-9_./@+-]+")


@dataclass(frozen=True, slots=True)
class Perfdata:
    label: str
    value: float
    uom: str
    warn: float | None
    crit: float | None
    min: float | None
    max: float | None

    def render(self, *, units: bool = True) -> str:
        """The item as a plugin writes it; `units=False` for consumers that take none (Checkmk)."""
        fields = [self.warn, self.crit, self.min, self.max]
        while fields and fields[-1] is None:
            fields.pop()
        tail = "".join(";" + ("" if f is None else plain(f)) for f in fields)
        uom = self.uom if units else ""
        return f"{quote(self.label)}={plain(self.value)}{uom}{tail}"


def plain(value: float) -> str:
    """A number as `[-]digits[.digits]`: no exponent, no locale, no trailing zeros."""
    if float(value).is_integer() and abs(value) < 1e18:
        return str(int(value))
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def quote(label: str) -> str:
    """Quoted when it holds anything but plain characters, a `'` doubled inside the quotes."""
    if _PLAIN_LABEL.fullmatch(label):
        return label
    return "'" + label.replace("'", "''") + "'"


def label_for(result: Result) -> str:
    """`postgres_main_connections`, then the reading's label values: one label per series.

    `=` would end the label and `::` is check_multi's prefix separator in Icinga, so neither
    survives; a control character (a line break would end the plugin output's first line inside
    the label) is `?`; spaces and quotes are left to `quote`.
    """
    r = result.reading
    parts = [r.source, r.instance, r.check, *r.labels.values()]
    return printable("_".join(parts).replace("=", "_").replace("::", "__"))


def distinct(labels: Iterable[str]) -> list[str]:
    """Each label once, in order: one equal to an earlier one gets `_2`, `_3`, ... Two names
    can read alike once made safe (`a=b` and `a_b`, `a\x1b` and `a?`), and a consumer keeps only
    one item of a label, so a name chosen to match another's would hide that one's value."""
    seen: set[str] = set()
    unique: list[str] = []
    for label in labels:
        candidate, n = label, 1
        while candidate in seen:
            n += 1
            candidate = f"{label}_{n}"
        seen.add(candidate)
        unique.append(candidate)
    return unique


def perfdata_for(result: Result) -> Perfdata | None:
    """The item for one result; None when it has no finite value to report."""
    r = result.reading
    if not math.isfinite(r.value):
        return None
    limit = r.limit if r.limit is not None and math.isfinite(r.limit) else None
    if r.unit == "bool":
        limit = 1.0
    return Perfdata(
        label=label_for(result),
        value=r.value,
        uom=UOMS.get(r.unit, ""),
        warn=result.warning_at,
        crit=result.critical_at,
        min=0.0,
        max=limit,
    )
