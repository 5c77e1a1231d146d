"""An event's `context` (who holds the pool, what blocks it) as a frozen, JSON-able value.

A source builds it from plain dicts and lists; `freeze` makes it immutable, so a context handed
to several sinks can never change under one of them, and `thaw` gives the JSON form back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

Context = Mapping[str, Any]
"""Strings, numbers, booleans, None, and mappings and sequences of them."""


def freeze(value: Any) -> Any:
    """Mappings become read-only mappings, sequences tuples; scalars stay as they are."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The JSON form: dicts and lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value
