"""One label-name rule (poolwatch.core.labels) for the metrics endpoint and Alertmanager."""

from __future__ import annotations

import pytest

from poolwatch.core.labels import label_name
from poolwatch.runtime import metrics
from poolwatch.sinks.alertmanager import alertbook


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("database", "database"),
        ("state-name", "state_name"),
        ("1st", "_1st"),
        ("", "_"),
        ("ä.b", "__b"),
        ("_x9", "_x9"),
    ],
)
def test_label_name(name: str, expected: str) -> None:
    assert label_name(name) == expected


def test_metrics_and_alertmanager_share_the_one_rule() -> None:
    assert metrics.label_name is label_name
    assert alertbook.label_name is label_name
