"""Label names as Prometheus and Alertmanager accept them (one data model, one rule): the
metrics endpoint and the Alertmanager sink both turn a reading's label keys into them."""

from __future__ import annotations

import re

_INVALID = re.compile(r"[^A-Za-z0-9_]")


def label_name(name: str) -> str:
    """A valid label name, `[A-Za-z_][A-Za-z0-9_]*`: every other character becomes `_`, and a
    leading digit gets a `_` in front."""
    cleaned = _INVALID.sub("_", name) or "_"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned
