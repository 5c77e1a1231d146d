"""What every source plugin's settings share: the judged part (interval, timeout, rules checked
against the plugin's readings table) and the environment variables the plugin answers to.

A plugin's `settings.py` subclasses `SourceSettings` (and `Judged` for its targets); the loader
reads `ENVIRONMENT`, `defaults.yaml` beside it, and `TARGET_INHERITS` from there, so adding a
source touches its own folder, one field of `poolwatch.config.model.Config`, and its docs page.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, cast

from pydantic import Field, field_validator

from poolwatch.config.fields import Duration, Frozen, unique_names
from poolwatch.config.rules import Rules
from poolwatch.core.rule import Threshold

if TYPE_CHECKING:
    from poolwatch.sources import Collector, Planned


def load_object(path: str) -> object:
    """`package.module:name`, imported now. A plugin's settings name their collector this way:
    the settings module never imports the collector module (which imports the settings), and
    a source that is not enabled never loads its client library."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One environment variable: where its value goes under the plugin's section.

    A list of named items (`targets`, `webhooks`) takes the item's name as the next path element:
    `("targets", "main", "dsn")` sets the DSN of target `main`, adding it when the YAML has none.
    """

    name: str
    path: tuple[str, ...]
    split: bool = False
    """A comma-separated list."""
    needs: str | None = None
    """Only read when this other variable is set."""


class Section(Frozen):
    """A plugin's section of the config (a source's, a sink's)."""

    @classmethod
    def settle(
        cls,
        section: dict[str, Any],
        merged: Mapping[str, Any],
        said: Mapping[str, Any],
        sources: Sequence[type[SourceSettings]],
    ) -> None:
        """Before validation, fill in what this section derives from elsewhere: `merged` is the
        whole configuration (defaults, file, environment), `said` what the operator gave this
        section, `sources` the registry's source settings classes. Nothing by default; the
        loader calls it for every plugin section, so the loader knows no plugin's rule."""


class Judged(Section):
    """Something a collector polls and judges: on an interval, under a timeout, by rules."""

    CHECKS: ClassVar[tuple[str, ...]] = ()
    """Every check the plugin emits (its readings table); a rule for another name is a typo."""
    BOUNDED_PERCENT: ClassVar[frozenset[str]] = frozenset()
    """Checks whose value is a percentage that cannot pass 100."""

    interval: Duration
    timeout: Duration
    rules: Rules

    @field_validator("rules", mode="before")
    @classmethod
    def _known_checks(cls, rules: Any) -> Any:
        """Before each rule is read: a typo'd check name is the problem to name, not the
        `alert:` that a rule for an unknown check cannot inherit from the defaults."""
        for check in rules if isinstance(rules, dict) else ():
            if cls.CHECKS and check not in cls.CHECKS:
                known = ", ".join(cls.CHECKS)
                raise ValueError(f"[{check}] no check named {check!r}; this source has {known}")
        return rules

    @field_validator("rules")
    @classmethod
    def _reachable(cls, rules: Rules) -> Rules:
        for check, rule in rules.items():
            for level in ("warning", "critical"):
                threshold: Threshold | None = getattr(rule, level)
                if threshold is None:
                    continue
                bounded = threshold.percent or check in cls.BOUNDED_PERCENT
                if bounded and threshold.number > 100:
                    meant = f" (did you mean {threshold.number / 10:g}%?)"
                    raise ValueError(
                        f"[{check}.{level}] {threshold} is above 100% and can never be reached; "
                        f"give a percentage from 0 to 100{meant}"
                    )
        return rules


class SourceSettings(Judged):
    """One source's section of the config."""

    ENVIRONMENT: ClassVar[tuple[EnvVar, ...]] = ()
    TARGET_INHERITS: ClassVar[tuple[str, ...]] = ()
    """Section keys each target takes unless it says otherwise (e.g. `max_connections`)."""
    COLLECTOR: ClassVar[str]
    """`module:Class` of the source's collector, imported by `collector()` when planned."""
    SOURCE: ClassVar[str]
    """Its name in readings and events: the JSON Schema's `source` enum (`poolwatch.event/v1`)."""
    TITLE: ClassVar[str]
    """How a sentence names it (`PostgreSQL main: ...`): `core.describe.SOURCE_TITLES`."""
    TEAM: ClassVar[str]
    """The Alertmanager `team` label of its alerts unless `alertmanager.teams` says another."""

    def collector(self) -> Callable[..., Collector]:
        """The collector class; imported when called, so an unused source costs nothing."""
        return cast("Callable[..., Collector]", load_object(self.COLLECTOR))

    async def plan(self, running: Collection[str]) -> list[Planned]:
        """The collectors this section asks for; `running` names those a reload starts from.
        Collector modules are imported here, only when the source is enabled."""
        raise NotImplementedError


class TargetedSettings(SourceSettings):
    """A source of named targets (PostgreSQL servers, Redis servers), one collector each."""

    targets: list[Any] = Field(default_factory=list)

    @field_validator("targets")
    @classmethod
    def _unique(cls, targets: list[Any]) -> list[Any]:
        return unique_names(targets)

    async def plan(self, running: Collection[str]) -> list[Planned]:
        if not self.targets:
            return []
        from poolwatch.sources import planned

        build = self.collector()
        return [
            planned(f"{self.SOURCE}:{target.name}", target, partial(build, target))
            for target in self.targets
        ]
