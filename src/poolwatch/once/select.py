"""`--only SOURCE[:INSTANCE]` and `--check NAME`: which part of the config one `--once` checks.

A monitoring system runs one service per thing it shows, so one `--once` must be able to check
one server. Selection happens before polling where it can: an unselected source is not even
planned (no Docker probe, no host sampling), nor is an unselected PostgreSQL or Redis target.
Host and Docker readings name mounts and containers that no config lists, so an instance of
theirs is matched on the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from poolwatch.config.model import Config
from poolwatch.config.plugin import SourceSettings, TargetedSettings
from poolwatch.core.model import UP_CHECK, Severity
from poolwatch.once.results import Result
from poolwatch.sources import Planned


class SelectionError(ValueError):
    """`--only` or `--check` names nothing configured: a usage error; `str()` is the line."""


@dataclass(frozen=True, slots=True)
class Only:
    source: str
    instance: str | None = None

    @classmethod
    def parse(cls, text: str) -> Only:
        source, _, instance = text.partition(":")
        if not source or (_ and not instance):
            raise SelectionError(f"--only {text!r}: expected SOURCE or SOURCE:INSTANCE")
        return cls(source, instance or None)

    def __str__(self) -> str:
        return self.source + (f":{self.instance}" if self.instance else "")


def _sections(config: Config) -> dict[str, SourceSettings]:
    return {
        name: value
        for name in type(config).model_fields
        if isinstance(value := getattr(config, name), SourceSettings)
    }


@dataclass(frozen=True, slots=True)
class Selection:
    """Empty `only` and `checks` select everything, as `--once` always did."""

    only: tuple[Only, ...] = ()
    checks: tuple[str, ...] = ()

    @classmethod
    def parse(cls, only: Sequence[str], checks: Sequence[str]) -> Selection:
        return cls(tuple(Only.parse(text) for text in only), tuple(checks))

    def __bool__(self) -> bool:
        return bool(self.only or self.checks)

    def validate(self, config: Config) -> None:
        """Refuse a name that can select nothing, before anything is polled."""
        sections = _sections(config)
        for only in self.only:
            section = sections.get(only.source)
            if section is None:
                raise SelectionError(
                    f"--only {only}: no source named {only.source!r}; sources are "
                    + ", ".join(sections)
                )
            if isinstance(section, TargetedSettings):
                names = [target.name for target in section.targets]
                if not names:
                    raise SelectionError(f"--only {only}: {only.source} has no target configured")
                if only.instance is not None and only.instance not in names:
                    raise SelectionError(
                        f"--only {only}: {only.source} has no target {only.instance!r}; "
                        f"targets are {', '.join(names)}"
                    )
            elif getattr(section, "enabled", True) in (False, "off"):
                raise SelectionError(f"--only {only}: the {only.source} source is turned off")
        chosen = [sections[o.source] for o in self.only] or list(sections.values())
        known = sorted({check for section in chosen for check in section.CHECKS})
        for check in self.checks:
            if check not in known:
                raise SelectionError(
                    f"--check {check}: no selected source has that check; they have "
                    + ", ".join(known)
                )

    async def plan(self, config: Config) -> list[Planned]:
        """The selected collectors; an unselected source is never asked to plan (or probe)."""
        items: list[Planned] = []
        for name, section in _sections(config).items():
            wanted = [o for o in self.only if o.source == name]
            if self.only and not wanted:
                continue
            for item in await section.plan(()):
                instance = item.owner.partition(":")[2]
                if (
                    not isinstance(section, TargetedSettings)
                    or not wanted
                    or any(o.instance in (None, instance) for o in wanted)
                ):
                    items.append(item)
        return items

    def keeps(self, result: Result) -> bool:
        """A result the selection asked for. A failed `up` is always kept: it is why the
        selected checks of that instance are missing, and a down server must not read OK."""
        reading = result.reading
        if self.only and not any(
            o.source == reading.source and o.instance in (None, reading.instance) for o in self.only
        ):
            return False
        if not self.checks or reading.check in self.checks:
            return True
        return reading.check == UP_CHECK and result.severity != Severity.OK
