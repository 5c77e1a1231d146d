"""Icinga fixtures: the receiver of its check results and a private daemon per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.icinga.icinga import Icinga, Receiver


@pytest.fixture
def icinga(tmp_path: Path) -> Iterator[Icinga]:
    receiver = Receiver()
    try:
        yield Icinga(tmp_path / "icinga", receiver)
    finally:
        receiver.close()
