"""Prometheus exposition: the latest readings, the alert states and poolwatch's own health.

A scrape only reads what the runner already holds (the last value of every reading); it never
polls a source, so scraping cannot slow or multiply the polls.

Families:
- `poolwatch_<source>_<check>{target, <reading labels>}`: every reading; `..._limit` beside it
  when the reading has a limit (connections against max_connections, say);
- `poolwatch_alert_active{alert, severity, source, target, check}`: 1 per firing alert;
- `poolwatch_alert_muted{alert, severity, source, target, check, muted_by}`: 1 per firing alert
  a silence or maintenance window mutes (a series of its own, so `alert_active` keeps its
  labels and a rule can `unless on(alert, target, check) poolwatch_alert_muted`);

`target` is the event's `instance` (server, container, mount). It is not called `instance`
because Prometheus sets that label to the scraped address, and would rename ours.
- `poolwatch_polls_total`, `poolwatch_poll_failures_total`, `poolwatch_poll_overruns_total`,
  `poolwatch_poll_duration_seconds`, `poolwatch_last_poll_timestamp_seconds` and its
  dead-man's-switch name `poolwatch_last_successful_poll_timestamp_seconds` per source/instance;
- `poolwatch_events_total{status, severity}`;
- `poolwatch_sink_events_lost_total{sink, reason}`: events a sink refused to store;
- `poolwatch_sink_<name>{sink}` for what each sink reports (queue depth, oldest age, ...);
- process metrics (`process_*`) of poolwatch itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from poolwatch.core.evaluate import Firing
from poolwatch.runtime.view import RuntimeView
from poolwatch.sinks import Sink

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


@runtime_checkable
class ReportsStats(Protocol):
    """A sink that can say how it is doing (webhook queue depth, oldest undelivered age, ...)."""

    def metrics(self) -> Mapping[str, float]: ...


def metric_name(*parts: str) -> str:
    return _INVALID.sub("_", "_".join(("poolwatch", *parts)))


def label_name(name: str) -> str:
    cleaned = _INVALID.sub("_", name)
    return f"_{cleaned}" if cleaned[:1].isdigit() else cleaned


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
        if self._muted is not None:
            yield self._muted_alerts(self._muted)
        yield from self._health()
        yield from self._sink_stats()

    def _readings(self) -> Iterable[Metric]:
        rows: dict[str, list[tuple[dict[str, str], float]]] = {}
        helps: dict[str, str] = {}
        for reading in self._view.latest_readings():
            name = metric_name(reading.source, reading.check)
            labels = {"target": reading.instance}
            labels.update((label_name(k), v) for k, v in reading.labels.items())
            rows.setdefault(name, []).append((labels, reading.value))
            helps[name] = f"{reading.source} {reading.check} ({reading.unit})"
            if reading.limit is not None:
                rows.setdefault(f"{name}_limit", []).append((labels, reading.limit))
                helps[f"{name}_limit"] = f"the limit {reading.check} is measured against"
        for name, samples in sorted(rows.items()):
            names = sorted({key for labels, _ in samples for key in labels})
            family = GaugeMetricFamily(name, helps[name], labels=names)
            for labels, value in samples:
                family.add_metric([labels.get(key, "") for key in names], value)
            yield family

    def _alerts(self) -> Metric:
        family = GaugeMetricFamily(
            "poolwatch_alert_active",
            "1 for every alert that is firing",
            labels=["alert", "severity", "source", "target", "check"],
        )
        for key, severity, alert in self._view.firing():
            family.add_metric([alert, severity.label, key.source, key.instance, key.check], 1)
        return family

    def _muted_alerts(self, muted: Muted) -> Metric:
        family = GaugeMetricFamily(
            "poolwatch_alert_muted",
            "1 for every firing alert a silence or maintenance window mutes",
            labels=["alert", "severity", "source", "target", "check", "muted_by"],
        )
        for (key, severity, alert), by in muted():
            family.add_metric([alert, severity.label, key.source, key.instance, key.check, by], 1)
        return family

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
