"""What each source declares on its settings class is what the rest of poolwatch says of it.

A source's settings carry its schema name (`SOURCE`), its `TITLE` and its Alertmanager `TEAM`.
The Alertmanager `teams` default is read off those declarations (the loader hands the
registry's sources to `AlertmanagerSettings.settle`). Two places keep a copy, held here to the
registry (`Config.source_types()`), and adding a source without them fails here, naming what to
add: the published JSON Schema's `source` enum (a contract others validate against, changed
only by an edit) and the titles the pure core's sentences use (`core.describe.SOURCE_TITLES`:
core imports no plugin and is used without the registry, by `--once` formats and tests alike).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, cast

import yaml

import poolwatch.core.model
from poolwatch.config.load import load
from poolwatch.config.model import Config
from poolwatch.config.plugin import load_object
from poolwatch.core.describe import SOURCE_TITLES, describe_reading
from poolwatch.core.model import Reading, Severity


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
    assert load(None, {}).alertmanager.teams == _declared("TEAM")
    text = resources.files("poolwatch").joinpath("sinks/alertmanager/defaults.yaml").read_text()
    assert "teams" not in yaml.safe_load(text), "the teams default is the declarations, no copy"


def test_a_teams_mapping_changes_only_the_sources_it_names(tmp_path: Path) -> None:
    config_file = tmp_path / "poolwatch.yaml"
    config_file.write_text("alertmanager:\n  teams: {postgres: dba}\n")
    loaded = load(config_file, {})
    assert loaded.alertmanager.teams == {**_declared("TEAM"), "postgres": "dba"}


def test_the_sentences_title_each_source_as_it_declares() -> None:
    assert _declared("TITLE") == SOURCE_TITLES
    reading = Reading("pgbouncer", "edge", "client_connections", 5, "connections")
    assert describe_reading(reading, Severity.OK, None, None).startswith("PgBouncer edge:")


def test_each_collector_emits_its_settings_source_name() -> None:
    for kind in Config.source_types():
        collector = load_object(kind.COLLECTOR)
        assert getattr(collector, "source", None) == kind.SOURCE, kind.COLLECTOR


def test_the_dead_source_kind_is_gone() -> None:
    """`core.model.SourceKind` was a second list of sources nothing read."""
    assert not hasattr(poolwatch.core.model, "SourceKind")
