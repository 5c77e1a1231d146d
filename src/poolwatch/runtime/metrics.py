"""Prometheus exposition: the latest readings, the alert states and poolwatch's own health.

A scrape only reads what the runner already holds (the last value of every reading); it never
polls a source, so scraping cannot slow or multiply the polls.

Families:
- `poolwatch_<source>_<check>{target, <reading labels>}`: every reading; `..._limit` beside it
  when the reading has a limit (connections against max_connections, say);
- `poolwatch_alert_active{alert, severity, source, target, check, <reading labels>}`: 1 per
  firing alert, one series per alert key (PostgreSQLDiskSpaceHigh for each database);
- `poolwatch_alert_muted{alert, severity, source, target, check, muted_by, <reading labels>}`:
  1 per firing alert a silence or maintenance window mutes (a series of its own, so
  `alert_active` keeps its labels and a rule can `unless on(alert, target, check)
  poolwatch_alert_muted`);
- `poolwatch_polls_total`, `poolwatch_poll_failures_total`, `poolwatch_poll_overruns_total`,
  `poolwatch_poll_duration_seconds`, `poolwatch_last_poll_timestamp_seconds` and its
  dead-man's-switch name `poolwatch_last_successful_poll_timestamp_seconds` per source/instance;
- `poolwatch_setting_unreachable{source, target, check, setting}`: the configured value of
  every setting that cannot fire against the limit the server enforces (an absolute threshold
  at or above it, a configured `max_connections` above the server's); `..._limit` has that
  limit;
- `poolwatch_events_total{status, severity}`;
- `poolwatch_events_held_total{status}`: events kept from the notifying sinks because a parent
  (the container that serves the target, the server behind a PgBouncer) was down;
- `poolwatch_sink_events_lost_total{sink, reason}`: events a sink refused to store;
- `poolwatch_sink_<name>{sink}` for what each sink reports (queue depth, oldest age, ...);
- process metrics (`process_*`) of poolwatch itself.

`target` is the event's `instance` (server, container, mount). It is not called `instance`
because Prometheus sets that label to the scraped address, and would rename ours.

A reading label keeps its name (made a valid label name) unless it would clash with a label the
series set themselves or Prometheus attaches (`RESERVED`): then it is prefixed `label_` (a
reading label `alert` is `label_alert` in both families, so they still join). A sample whose
label set repeats an earlier one of its family (only possible when two reading labels differ in
characters a label name cannot hold, `a.b` and `a-b`) is left out: one duplicate series makes
Prometheus reject the whole scrape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from poolwatch.core.evaluate import Firing
from poolwatch.core.labels import label_name
from poolwatch.runtime.view import RuntimeView
from poolwatch.sinks import Sink

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


@runtime_checkable
class ReportsStats(Protocol):
    """A sink that can say how it is doing (webhook queue depth, oldest undelivered age, ...)."""

    def metrics(self) -> Mapping[str, float]: ...


def metric_name(*parts: str) -> str:
    return _INVALID.sub("_", "_".join(("poolwatch", *parts)))


RESERVED = frozenset({"alert", "severity", "source", "target", "check", "instance", "job"})
"""Labels of poolwatch's own series, and those Prometheus attaches to every scraped sample."""
LABEL_PREFIX = "label_"


def series_labels(own: Mapping[str, str], reading: Mapping[str, str]) -> dict[str, str]:
    """`own` plus a reading's labels, none of which may overwrite another: a reading label
    named like a reserved one, a `__` one (Prometheus's), or one already taken is prefixed."""
    labels = dict(own)
    for key, value in sorted(reading.items()):
        name = label_name(key)
        while name in labels or name in RESERVED or name.startswith("__"):
            name = LABEL_PREFIX + name
        labels[name] = value
    return labels


def gauge(name: str, help_text: str, samples: Sequence[tuple[Mapping[str, str], float]]) -> Metric:
    """One gauge family over samples whose label names may differ (a missing one is empty, as
    Prometheus reads it); a repeated label set is left out, so the family has no duplicate."""
    names = sorted({key for labels, _ in samples for key in labels})
    family = GaugeMetricFamily(name, help_text, labels=names)
    seen: set[tuple[str, ...]] = set()
    for labels, value in samples:
        row = tuple(labels.get(key, "") for key in names)
        if row not in seen:
            seen.add(row)
            family.add_metric(list(row), value)
    return family


PER_COLLECTOR: tuple[tuple[type[CounterMetricFamily | GaugeMetricFamily], str, str, str], ...] = (
    (CounterMetricFamily, "poolwatch_polls", "polls started", "polls"),
    (CounterMetricFamily, "poolwatch_poll_failures", "polls that failed or timed out", "failures"),
    (
        CounterMetricFamily,
        "poolwatch_poll_overruns",
        "ticks skipped because a poll ran over its interval",
        "overruns",
    ),
    (
        GaugeMetricFamily,
        "poolwatch_poll_duration_seconds",
        "how long the last poll took",
        "durations",
    ),
    (
        GaugeMetricFamily,
        "poolwatch_last_poll_timestamp_seconds",
        "Unix time of the last successful poll",
        "last_poll",
    ),
    (
        GaugeMetricFamily,
        "poolwatch_last_successful_poll_timestamp_seconds",
        "Unix time of the last successful poll (alert on its age: a dead man's switch)",
        "last_poll",
    ),
)
"""Runner statistics kept per collector: (family type, name, help, `Stats` field)."""


Muted = Callable[[], Sequence[tuple[Firing, str]]]
"""The firing alerts a mute covers now, each with the id of what mutes it."""


class RunnerCollector(Collector):
    def __init__(
        self, view: RuntimeView, sinks: Callable[[], Sequence[Sink]], muted: Muted | None = None
    ) -> None:
        self._view = view
        self._sinks = sinks
        self._muted = muted

    def collect(self) -> Iterable[Metric]:
        yield from self._readings()
        yield self._alerts()
        yield from self._unreachable()
        if self._muted is not None:
            yield self._muted_alerts(self._muted)
        yield from self._health()
        yield from self._sink_stats()

    def _readings(self) -> Iterable[Metric]:
        rows: dict[str, list[tuple[dict[str, str], float]]] = {}
        helps: dict[str, str] = {}
        for reading in self._view.latest_readings():
            name = metric_name(reading.source, reading.check)
            labels = series_labels({"target": reading.instance}, reading.labels)
            rows.setdefault(name, []).append((labels, reading.value))
            helps[name] = f"{reading.source} {reading.check} ({reading.unit})"
            if reading.limit is not None:
                rows.setdefault(f"{name}_limit", []).append((labels, reading.limit))
                helps[f"{name}_limit"] = f"the limit {reading.check} is measured against"
        for name, samples in sorted(rows.items()):
            yield gauge(name, helps[name], samples)

    def _alerts(self) -> Metric:
        samples = [(alert_labels(firing), 1.0) for firing in self._view.firing()]
        return gauge("poolwatch_alert_active", "1 for every alert that is firing", samples)

    def _unreachable(self) -> Iterable[Metric]:
        notes = self._view.limit_notes()
        labels = [
            {"source": n.source, "target": n.instance, "check": n.check, "setting": n.setting}
            for n in notes
        ]
        yield gauge(
            "poolwatch_setting_unreachable",
            "a setting that cannot fire against the limit the server enforces: its value",
            [(label, note.value) for label, note in zip(labels, notes, strict=True)],
        )
        yield gauge(
            "poolwatch_setting_unreachable_limit",
            "the limit the server enforces, which an unreachable setting is at or above",
            [(label, note.limit) for label, note in zip(labels, notes, strict=True)],
        )

    def _muted_alerts(self, muted: Muted) -> Metric:
        samples = [(alert_labels(firing, muted_by=by), 1.0) for firing, by in muted()]
        return gauge(
            "poolwatch_alert_muted",
            "1 for every firing alert a silence or maintenance window mutes",
            samples,
        )

    def _health(self) -> Iterable[Metric]:
        stats = self._view.stats()
        for kind, name, help_text, field in PER_COLLECTOR:
            family = kind(name, help_text, labels=["source", "target"])
            values: Mapping[str, float] = getattr(stats, field)
            for owner, value in list(values.items()):
                source, _, instance = owner.partition(":")
                family.add_metric([source, instance], value)
            yield family
        events = CounterMetricFamily(
            "poolwatch_events", "events sent to the sinks", labels=["status", "severity"]
        )
        for (status, severity), count in list(stats.events.items()):
            events.add_metric([status, severity], count)
        yield events
        held = CounterMetricFamily(
            "poolwatch_events_held",
            "events kept from the webhook and Alertmanager because a parent was down",
            labels=["status"],
        )
        for status, count in list(stats.held.items()):
            held.add_metric([status], count)
        yield held
        lost = CounterMetricFamily(
            "poolwatch_sink_events_lost",
            "events a sink could not store (so will never deliver), by sink and failure",
            labels=["sink", "reason"],
        )
        for (sink, reason), count in list(stats.lost.items()):
            lost.add_metric([sink, reason], count)
        yield lost

    def _sink_stats(self) -> Iterable[Metric]:
        rows: dict[str, list[tuple[str, float]]] = {}
        for sink in self._sinks():
            if isinstance(sink, ReportsStats):
                for key, value in sink.metrics().items():
                    rows.setdefault(key, []).append((sink.name, value))
        for key, samples in sorted(rows.items()):
            family = GaugeMetricFamily(metric_name("sink", key), f"sink {key}", labels=["sink"])
            for sink_name, value in samples:
                family.add_metric([sink_name], value)
            yield family


def registry_for(
    view: RuntimeView, sinks: Callable[[], Sequence[Sink]], muted: Muted | None = None
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunnerCollector(view, sinks, muted))
    ProcessCollector(registry=registry)
    return registry


def alert_labels(firing: Firing, **extra: str) -> dict[str, str]:
    """One firing alert's series labels: its name and key, then the key's own labels (one
    series per alert key)."""
    key, severity, alert = firing
    own = {"alert": alert, "severity": severity.label, "source": key.source}
    own.update(target=key.instance, check=key.check, **extra)
    return series_labels(own, dict(key.labels))
