"""Which containers are watched, what their readings are labelled, and their own thresholds. Pure.

- Selection (`docker.include` / `docker.exclude`): an entry is a name glob (`matrixon-*`) or a
  label selector (`label:com.docker.compose.project=matrixon`, `label:tier`); an empty include
  list means every container; exclude wins. A container's own `poolwatch.enable=false` drops
  what the selection chose, unless the operator named that container exactly in `include` (an
  entry without wildcards: the operator's word wins) or turned labels off
  (`docker.honour_labels: false`). What a label dropped is said (`Choice.LABEL_EXCLUDED`).
- Reading labels: `image`, `compose_project`, `compose_service` when present, each cut to
  `MAX_LABEL_LENGTH` characters. Nothing else from a container reaches an alert key, so a
  container's own labels cannot make keys (and memory) grow without bound.
- Thresholds per container: a container label `poolwatch.<check>.warning` or
  `poolwatch.<check>.critical` (e.g. `poolwatch.cpu_percent.warning=95%`) replaces that threshold
  of the configured rule for that container only; it reaches the evaluator as rule
  `<check>@<container name>` (see `evaluate.rule_for`). Not with `honour_labels: false`.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from poolwatch.config.rules import Rule, Rules, parse_threshold

MAX_LABEL_LENGTH = 128
ENABLE_LABEL = "poolwatch.enable"
OVERRIDE_LABEL = re.compile(r"^poolwatch\.([a-z_]+)\.(warning|critical)$")
READING_LABELS = {
    "com.docker.compose.project": "compose_project",
    "com.docker.compose.service": "compose_service",
}
_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")


def _bounded(value: str) -> str:
    return value[:MAX_LABEL_LENGTH]


@dataclass(frozen=True, slots=True)
class Container:
    """What poolwatch knows of one container from the list endpoint (or an event's attributes)."""

    id: str
    name: str
    image: str
    state: str
    """running, restarting, exited, paused, created, dead."""
    health: str | None = None
    """healthy, unhealthy, starting; None without a healthcheck."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """The container's own labels (selection and overrides read them)."""
    ips: frozenset[str] = frozenset()
    """Its addresses on its networks (`NetworkSettings.Networks.*`); none while it is stopped."""
    published: frozenset[int] = frozenset()
    """The host ports it publishes over TCP (`Ports[].PublicPort`); none while it is stopped."""

    @classmethod
    def from_list(cls, entry: Mapping[str, Any]) -> Container:
        names = entry.get("Names") or [entry.get("Id", "")[:12]]
        status = str(entry.get("Status") or "")
        match = _HEALTH.search(status)
        health = match.group(1).removeprefix("health: ") if match else None
        return cls(
            id=str(entry["Id"]),
            name=str(names[0]).lstrip("/"),
            image=str(entry.get("Image") or ""),
            state=str(entry.get("State") or ""),
            health=health,
            labels=dict(entry.get("Labels") or {}),
            ips=_addresses(entry),
            published=_published(entry),
        )

    @classmethod
    def from_event(cls, container_id: str, attributes: Mapping[str, str]) -> Container:
        """An event's actor: its attributes hold the name, the image and the container's labels."""
        labels = {k: v for k, v in attributes.items() if k not in ("name", "image", "exitCode")}
        return cls(
            id=container_id,
            name=str(attributes.get("name") or container_id[:12]),
            image=str(attributes.get("image") or ""),
            state="running",
            labels=labels,
        )

    @property
    def running(self) -> bool:
        return self.state == "running"

    def reading_labels(self) -> dict[str, str]:
        image = self.image
        if image.startswith("sha256:"):
            image = image[len("sha256:") :][:12]  # an image known only by ID: short, as `docker ps`
        found = {"image": _bounded(image)} if image else {}
        for label, key in READING_LABELS.items():
            if self.labels.get(label):
                found[key] = _bounded(self.labels[label])
        return found


def _addresses(entry: Mapping[str, Any]) -> frozenset[str]:
    """A listed container's IPv4 and global IPv6 address on each of its networks."""
    networks = (entry.get("NetworkSettings") or {}).get("Networks") or {}
    return frozenset(
        str(network[key])
        for network in networks.values()
        if isinstance(network, Mapping)
        for key in ("IPAddress", "GlobalIPv6Address")
        if network.get(key)
    )


def _published(entry: Mapping[str, Any]) -> frozenset[int]:
    """The host ports a listed container publishes over TCP (a port only exposed has none)."""
    return frozenset(
        int(port["PublicPort"])
        for port in entry.get("Ports") or ()
        if isinstance(port, Mapping)
        and port.get("PublicPort")
        and str(port.get("Type") or "tcp") == "tcp"
    )


def _matches(pattern: str, container: Container) -> bool:
    if pattern.startswith("label:"):
        key, has_value, value = pattern[len("label:") :].partition("=")
        if key not in container.labels:
            return False
        return not has_value or fnmatch.fnmatchcase(container.labels[key], value)
    return fnmatch.fnmatchcase(container.name, pattern)


class Choice(enum.Enum):
    """What the selection makes of one container."""

    WATCHED = "watched"
    NOT_SELECTED = "not selected"
    """`include` does not match it, or `exclude` does: the operator's choice."""
    LABEL_EXCLUDED = "excluded by its label"
    """The selection chose it, and its own `poolwatch.enable=false` dropped it."""


_WILDCARDS = frozenset("*?[")


def disabled_by_label(container: Container) -> bool:
    value = container.labels.get(ENABLE_LABEL, "")
    return value.strip().lower() in ("false", "0", "no", "off")


@dataclass(frozen=True, slots=True)
class Selector:
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    honour_labels: bool = True

    def choice(self, container: Container) -> Choice:
        if self.include and not any(_matches(p, container) for p in self.include):
            return Choice.NOT_SELECTED
        if any(_matches(p, container) for p in self.exclude):
            return Choice.NOT_SELECTED
        if self.honour_labels and disabled_by_label(container) and not self.named(container):
            return Choice.LABEL_EXCLUDED
        return Choice.WATCHED

    def selected(self, container: Container) -> bool:
        return self.choice(container) is Choice.WATCHED

    def named(self, container: Container) -> bool:
        """Whether `include` names this container exactly (no wildcards, not by label)."""
        return any(
            entry == container.name and not _WILDCARDS & set(entry) for entry in self.include
        )


def rule_key(check: str, instance: str) -> str:
    return f"{check}@{instance}"


def overrides(rules: Rules, container: Container) -> tuple[dict[str, Rule], list[str]]:
    """The rules a container's labels give it (keyed `check@name`), and one line per label that
    could not be used."""
    wanted: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for label, raw in container.labels.items():
        match = OVERRIDE_LABEL.match(label)
        if not match:
            continue
        check, level = match.groups()
        if check not in rules:
            problems.append(f"{label}: no rule for check {check!r}")
            continue
        try:
            wanted.setdefault(check, {})[level] = parse_threshold(raw)
        except ValueError as exc:
            problems.append(f"{label}={raw!r}: {exc}")
    found: dict[str, Rule] = {}
    for check, given in wanted.items():
        data = rules[check].model_dump(by_alias=True)
        data.update({level: str(value) for level, value in given.items()})
        try:
            rule = Rule.model_validate(data)
        except ValidationError:
            # a label's warning above the configured critical: the label wins, as for variables
            for level in ("warning", "critical"):
                if level not in given:
                    data[level] = None
            try:
                rule = Rule.model_validate(data)
            except ValidationError as exc:
                problems.append(f"poolwatch.{check}.*: {exc.errors()[0]['msg']}")
                continue
        found[rule_key(check, container.name)] = rule
    return found, problems
