"""What each source declares on its settings class is what the rest of poolwatch says of it.

A source's settings carry its schema name (`SOURCE`), its `TITLE` and its Alertmanager `TEAM`.
Three places cannot import the plugins, so they keep their own copy and are held here to the
registry (`Config.source_types()`): the published JSON Schema's `source` enum (a file others
validate against), the Alertmanager `teams` default (defaults.yaml beside the sink) and the
titles the pure core's sentences use (`core.describe.SOURCE_TITLES`). Adding a source without
them fails here, naming what to add.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, cast

import yaml

import poolwatch.core.model
from poolwatch.config.model import Config
from poolwatch.config.plugin import load_object
from poolwatch.core.describe import SOURCE_TITLES


def _declared(attribute: str) -> dict[str, str]:
    return {kind.SOURCE: getattr(kind, attribute) for kind in Config.source_types()}


def test_the_registry_lists_every_source() -> None:
    assert [kind.SOURCE for kind in Config.source_types()] == [
        "host",
        "postgres",
        "redis",
        "docker",
        "pgbouncer",
    ]


def test_the_event_schema_names_exactly_the_registered_sources() -> None:
    text = resources.files("poolwatch").joinpath("schema/event.v1.json").read_text()
    schema = cast(dict[str, Any], json.loads(text))
    assert sorted(schema["properties"]["source"]["enum"]) == sorted(_declared("SOURCE"))


def test_the_alertmanager_teams_default_is_each_sources_team() -> None:
    text = resources.files("poolwatch").joinpath("sinks/alertmanager/defaults.yaml").read_text()
    assert yaml.safe_load(text)["teams"] == _declared("TEAM")


def test_the_sentences_title_each_source_as_it_declares() -> None:
    assert _declared("TITLE") == SOURCE_TITLES


def test_each_collector_emits_its_settings_source_name() -> None:
    for kind in Config.source_types():
        collector = load_object(kind.COLLECTOR)
        assert getattr(collector, "source", None) == kind.SOURCE, kind.COLLECTOR


def test_the_dead_source_kind_is_gone() -> None:
    """`core.model.SourceKind` was a second list of sources nothing read."""
    assert not hasattr(poolwatch.core.model, "SourceKind")
