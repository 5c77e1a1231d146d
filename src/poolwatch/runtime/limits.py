"""Says each setting that cannot fire on the server as it is, once, and again when it changes.

The finding is pure (`poolwatch.core.limits`); this part remembers what it said per collector,
so a steady state logs nothing, and names where each setting came from (the built-in default,
the file, a variable), which only the configuration knows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from poolwatch.core.limits import LimitNote, unreachable_thresholds
from poolwatch.core.model import Reading
from poolwatch.logs import get_logger
from poolwatch.sources import Collector

Origin = Callable[[str, str, str], str]
"""(source, instance, setting path) → where the setting's value came from."""


def _unknown_origin(source: str, instance: str, setting: str) -> str:
    return "configuration"


@runtime_checkable
class ReadsLimits(Protocol):
    """A collector that compares a configured limit with the server's own."""

    limit_notes: Sequence[LimitNote]


def notes_for(collector: Collector, readings: Sequence[Reading]) -> list[LimitNote]:
    """Every setting of `collector` that one poll's readings show cannot take effect."""
    notes = unreachable_thresholds(readings, collector.rules)
    if isinstance(collector, ReadsLimits):
        notes += collector.limit_notes
    return notes


class LimitWatch:
    """The notes in force per collector; new or changed ones are one warning line each."""

    def __init__(self, origin: Origin = _unknown_origin) -> None:
        self.origin = origin
        self._notes: dict[str, dict[tuple[str, str, str], LimitNote]] = {}
        self._log = get_logger()

    def observe(self, owner: str, collector: Collector, readings: Sequence[Reading]) -> None:
        if not any(r.limit is not None for r in readings):
            return  # no limit read in this poll (down, or refused): what was said still holds
        before = self._notes.get(owner, {})
        now = {note.key: note for note in notes_for(collector, readings)}
        for key, note in now.items():
            if before.get(key) != note:
                origin = self.origin(note.source, note.instance, note.setting)
                self._log.warning(
                    "setting_unreachable",
                    source=note.source,
                    instance=note.instance,
                    setting=f"{note.source}.{note.setting}",
                    value=note.value,
                    origin=origin,
                    server_limit=note.limit,
                    message=note.describe(origin),
                )
        self._notes[owner] = now

    def use(self, origin: Origin) -> None:
        """Name origins from a reloaded configuration from now on."""
        self.origin = origin

    def forget(self, owner: str) -> None:
        self._notes.pop(owner, None)

    def notes(self) -> list[LimitNote]:
        return [note for notes in list(self._notes.values()) for note in notes.values()]
