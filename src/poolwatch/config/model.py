"""The whole configuration: the core keys, and one field per plugin.

This class is the registry: a source or sink plugin is one field here, typed with its settings
model; the loader finds each plugin's defaults, environment variables and inheritance through
that type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import PrivateAttr, field_validator

from poolwatch.config.fields import Duration, Frozen, ListenAddress, unique_names
from poolwatch.config.plugin import EnvVar, SourceSettings
from poolwatch.silences.settings import MaintenanceWindow, SilenceSettings
from poolwatch.sinks.alertmanager.settings import AlertmanagerSettings
from poolwatch.sinks.webhook.settings import WebhookSettings
from poolwatch.sources.docker.settings import DockerSettings
from poolwatch.sources.host.settings import HostSettings
from poolwatch.sources.pgbouncer.settings import PgBouncerSettings
from poolwatch.sources.postgres.settings import PostgresSettings
from poolwatch.sources.redis.settings import RedisSettings


class Config(Frozen):
    ENVIRONMENT: ClassVar[tuple[EnvVar, ...]] = (
        EnvVar("POOLWATCH_INTERVAL", ("interval",)),
        EnvVar("POOLWATCH_STATE_DIR", ("state_dir",)),
        EnvVar("POOLWATCH_LOG_FORMAT", ("log_format",)),
        EnvVar("POOLWATCH_LISTEN", ("listen",)),
    )

    interval: Duration
    timeout: Duration
    shutdown_timeout: Duration
    state_dir: Path
    log_format: Literal["auto", "json", "console"] = "auto"
    log_samples: bool = False
    listen: ListenAddress | None = None
    defaults: dict[str, Any]
    # --- sources: one field per plugin -------------------------------------------------------
    host: HostSettings
    postgres: PostgresSettings
    redis: RedisSettings
    docker: DockerSettings
    pgbouncer: PgBouncerSettings
    # --- sinks (stdout is always on) ----------------------------------------------------------
    webhooks: list[WebhookSettings] = []
    alertmanager: AlertmanagerSettings
    # --- muting ------------------------------------------------------------------------------
    maintenance: list[MaintenanceWindow] = []
    silences: SilenceSettings

    _notes: tuple[str, ...] = PrivateAttr(default=())
    _origin: str = PrivateAttr(default="built-in defaults")
    _file: str | None = PrivateAttr(default=None)
    _file_said: dict[str, Any] = PrivateAttr(default_factory=dict)
    _env_said: dict[tuple[str, ...], str] = PrivateAttr(default_factory=dict)

    @field_validator("state_dir", mode="before")
    @classmethod
    def _a_directory(cls, value: Any) -> Any:
        """An empty value would be the current directory, wherever poolwatch was started: a
        queue left behind there, another one on the next start."""
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                "is empty, which would be the current directory; give a directory, or unset "
                "POOLWATCH_STATE_DIR for the default /var/lib/poolwatch"
            )
        return value

    @field_validator("webhooks")
    @classmethod
    def _unique(cls, hooks: list[WebhookSettings]) -> list[WebhookSettings]:
        return unique_names(hooks)

    @field_validator("maintenance")
    @classmethod
    def _unique_windows(cls, windows: list[MaintenanceWindow]) -> list[MaintenanceWindow]:
        return unique_names(windows)

    @classmethod
    def source_types(cls) -> list[type[SourceSettings]]:
        """Every source plugin's settings class, in the order of the fields above: the
        registry that titles, teams and the event schema's `source` enum are held to."""
        return [
            field.annotation
            for field in cls.model_fields.values()
            if isinstance(field.annotation, type) and issubclass(field.annotation, SourceSettings)
        ]

    def sources(self) -> list[SourceSettings]:
        """Every source section, in the order of the fields above."""
        return [
            value
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SourceSettings)
        ]

    @property
    def notes(self) -> tuple[str, ...]:
        """What the loader decided for the operator (a default that gave way): shown at start
        and by --check-config."""
        return self._notes

    def origin_of(self, section: str, target: str, setting: str) -> str:
        """Where one setting of a target got its value (`rules.connections.warning`): the
        target's own entry in the file, a variable, the section in the file, or the default."""
        path = tuple(setting.split("."))
        block = self._file_said.get(section)
        block = block if isinstance(block, dict) else {}
        targets = block.get("targets")
        for item in targets if isinstance(targets, list) else []:
            if isinstance(item, dict) and item.get("name") == target and _says(item, path):
                return f"file {self._file}, target {target}"
        for where, variable in self._env_said.items():
            if where == (section, *path):
                return f"environment {variable}"
        if _says(block, path):
            return f"file {self._file}"
        return "built-in default"

    @property
    def origin(self) -> str:
        """Where the configuration came from: the file, environment variables, or neither."""
        return self._origin


def _says(node: object, path: tuple[str, ...]) -> bool:
    """Whether a YAML mapping holds a value at `path`."""
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return node is not None
