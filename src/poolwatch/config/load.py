"""Typed configuration: built-in defaults < YAML file < environment, validated into frozen objects.

Every layer is a plain dict until the very end, so layering is one deep merge and validation
(pydantic) happens once, with the full path of every bad value. `load()` raises `ConfigError`
with one line that names the key (and the environment variable it came from), the value, and
what is expected.
"""

from __future__ import annotations

import base64
import binascii
import copy
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from poolwatch.core import secrets as redact


class ConfigError(Exception):
    """A configuration that cannot be used; `str()` is the one line to show the user."""


# --- scalar types -------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(raw: object) -> float:
    """`500ms`, `5s`, `2m`, `1h`, `1d` or a bare number of seconds → seconds."""
    if isinstance(raw, bool):
        raise ValueError("expected a duration like 500ms, 5s, 2m or 1h")
    if isinstance(raw, int | float):
        seconds = float(raw)
    elif isinstance(raw, str) and (match := _DURATION.match(raw)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError("expected a duration like 500ms, 5s, 2m or 1h")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("expected a positive duration like 500ms, 5s, 2m or 1h")
    return seconds


def format_duration(seconds: float) -> str:
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{round(seconds * 1000)}ms"


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration)]


@dataclass(frozen=True, slots=True)
class Threshold:
    """An absolute number, or a percentage of the reading's limit (`"75%"`)."""

    number: float
    percent: bool = False

    def resolve(self, limit: float | None) -> float | None:
        """The absolute value to compare with; None when a percentage has no limit to apply to."""
        if not self.percent:
            return self.number
        return None if limit is None else limit * self.number / 100.0

    def __str__(self) -> str:
        text = f"{self.number:g}"
        return f"{text}%" if self.percent else text


def parse_threshold(raw: object) -> Threshold:
    if isinstance(raw, Threshold):
        return raw
    if isinstance(raw, bool):
        raise ValueError('expected a number like 150 or a percentage like "75%"')
    if isinstance(raw, int | float):
        return Threshold(float(raw))
    if isinstance(raw, str):
        text = raw.strip()
        percent = text.endswith("%")
        try:
            number = float(text.rstrip("%").strip())
        except ValueError:
            raise ValueError('expected a number like 150 or a percentage like "75%"') from None
        if math.isfinite(number):
            return Threshold(number, percent)
    raise ValueError('expected a number like 150 or a percentage like "75%"')


def _serialize_threshold(value: Threshold) -> float | str:
    return str(value) if value.percent else value.number


ThresholdField = Annotated[
    Threshold, BeforeValidator(parse_threshold), PlainSerializer(_serialize_threshold)
]


def parse_fraction(raw: object) -> float:
    """`5%` or `0.05` → 0.05."""
    if isinstance(raw, str) and raw.strip().endswith("%"):
        raw = float(raw.strip()[:-1]) / 100.0
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError('expected a fraction like 0.05 or a percentage like "5%"')
    value = float(raw)
    if not 0.0 <= value < 1.0:
        raise ValueError('expected a fraction from 0 to below 1, like 0.05 or "5%"')
    return value


Fraction = Annotated[
    float, BeforeValidator(parse_fraction), PlainSerializer(lambda v: f"{v * 100:g}%")
]


def parse_switch(raw: object) -> str:
    """`auto`/`on`/`off`, also from YAML booleans and 1/0/true/false/yes/no strings."""
    if isinstance(raw, bool):
        return "on" if raw else "off"
    text = str(raw).strip().lower()
    aliases = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}
    return aliases.get(text, text)


Switch = Annotated[Literal["auto", "on", "off"], BeforeValidator(parse_switch)]


class Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, arbitrary_types_allowed=True
    )


# --- rules --------------------------------------------------------------------------------------


class Rule(Frozen):
    """How one check becomes an alert: thresholds, direction, and the state machine's timing."""

    alert: str = Field(min_length=1)
    alert_critical: str | None = None
    warning: ThresholdField | None = None
    critical: ThresholdField | None = None
    direction: Literal["above", "below"] = "above"
    for_: int = Field(1, alias="for", ge=1)
    clear_for: int = Field(2, ge=1)
    hysteresis: Fraction = 0.05
    repeat: Duration = 1800.0
    enabled: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> Rule:
        w, c = self.warning, self.critical
        if w is not None and c is not None and w.percent == c.percent:
            wrong = w.number > c.number if self.direction == "above" else w.number < c.number
            if wrong:
                side = "above" if self.direction == "above" else "below"
                raise ValueError(
                    f"warning {w} must not be {side} critical {c} (direction {self.direction})"
                )
        return self

    def name_for(self, severity_is_critical: bool) -> str:
        return (self.alert_critical or self.alert) if severity_is_critical else self.alert


Rules = dict[str, Rule]

# --- sections -----------------------------------------------------------------------------------


class HostConfig(Frozen):
    enabled: bool = True
    interval: Duration
    timeout: Duration
    procfs: Path = Path("/proc")
    rootfs: Path = Path("/")
    rules: Rules


class PostgresTarget(Frozen):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    dsn: str = ""
    password: SecretStr | None = None
    interval: Duration
    timeout: Duration
    max_connections: int | None = Field(None, ge=1)
    rules: Rules


class PostgresConfig(Frozen):
    interval: Duration
    timeout: Duration
    max_connections: int | None = Field(None, ge=1)
    rules: Rules
    targets: list[PostgresTarget] = []

    @field_validator("targets")
    @classmethod
    def _unique(cls, targets: list[PostgresTarget]) -> list[PostgresTarget]:
        return _unique_names(targets)


class RedisTarget(Frozen):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = "redis://127.0.0.1:6379/0"
    username: str | None = None
    password: SecretStr | None = None
    interval: Duration
    timeout: Duration
    max_clients: int | None = Field(None, ge=1)
    rules: Rules


class RedisConfig(Frozen):
    interval: Duration
    timeout: Duration
    max_clients: int | None = Field(None, ge=1)
    rules: Rules
    targets: list[RedisTarget] = []

    @field_validator("targets")
    @classmethod
    def _unique(cls, targets: list[RedisTarget]) -> list[RedisTarget]:
        return _unique_names(targets)


class DockerConfig(Frozen):
    enabled: Switch = "auto"
    interval: Duration
    timeout: Duration
    include: list[str] = []
    exclude: list[str] = []
    restart_window: Duration = 600.0
    stats: Literal["auto", "cgroup", "api"] = "auto"
    cgroup_root: Path = Path("/sys/fs/cgroup")
    concurrency: int = Field(8, ge=1, le=64)
    rules: Rules


class WebhookConfig(Frozen):
    """One webhook sink; README "Sink: webhook" documents every key."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = Field(pattern=r"^https?://")
    secret: SecretStr | None = None
    bearer_token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    headers: dict[str, str] = {}
    timeout: Duration = 10.0
    connect_timeout: Duration = 5.0
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    retry_initial: Duration = 0.5
    retry_max: Duration = 300.0
    max_queue: int = Field(10000, ge=1)
    max_age: Duration = 7 * 86400.0

    @field_validator("secret")
    @classmethod
    def _whsec(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None:
            signing_key(secret.get_secret_value())
        return secret

    @model_validator(mode="after")
    def _one_auth(self) -> WebhookConfig:
        if self.bearer_token is not None and (self.username or self.password):
            raise ValueError("use either bearer_token or username/password, not both")
        if (self.password is not None) != (self.username is not None):
            raise ValueError("basic auth needs both username and password")
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key needs client_cert")
        return self


class AlertmanagerConfig(Frozen):
    """The Alertmanager sink (on when `urls` is not empty); README "Sink: Alertmanager" documents
    every key."""

    urls: list[Annotated[str, Field(pattern=r"^https?://")]] = []
    timeout: Duration = 10.0
    resend_interval: Duration = 60.0
    resolved_resend: Duration = 300.0
    generator_url: str | None = None
    teams: dict[str, str] = {}
    ca_file: Path | None = None
    retry_initial: Duration = 0.5
    retry_max: Duration = 30.0
    max_queue: int = Field(10000, ge=1)
    max_age: Duration = 3600.0

    @field_validator("urls")
    @classmethod
    def _distinct(cls, urls: list[str]) -> list[str]:
        bases = [url.rstrip("/") for url in urls]
        for url in bases:
            if bases.count(url) > 1:
                raise ValueError(f"{redact.url(url)} is listed twice; each url must be unique")
        return bases


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: `whsec_` + base64 of at least 24 bytes."""
    encoded = secret.strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("expected a secret like whsec_<base64>") from None
    if len(key) < 24:
        raise ValueError("expected a secret like whsec_<base64> of at least 24 bytes")
    return key


class Config(Frozen):
    interval: Duration
    timeout: Duration
    shutdown_timeout: Duration
    state_dir: Path
    log_format: Literal["auto", "json", "console"] = "auto"
    log_samples: bool = False
    listen: str | None = Field(None, pattern=r"^(\[[0-9a-fA-F:.]+\]|[^:\[\]]*):\d{1,5}$")
    defaults: dict[str, Any]
    host: HostConfig
    postgres: PostgresConfig
    redis: RedisConfig
    docker: DockerConfig
    webhooks: list[WebhookConfig] = []
    alertmanager: AlertmanagerConfig

    @field_validator("webhooks")
    @classmethod
    def _unique(cls, hooks: list[WebhookConfig]) -> list[WebhookConfig]:
        return _unique_names(hooks)

    def redacted(self) -> dict[str, Any]:
        """The effective config as plain data with every secret replaced, for --check-config."""
        data = self.model_dump(mode="json", by_alias=True)
        for target in data["postgres"]["targets"]:
            target["dsn"] = redact.url(target["dsn"])
        for target in data["redis"]["targets"]:
            target["url"] = redact.url(target["url"])
        for hook in data["webhooks"]:
            hook["url"] = redact.url(hook["url"])
        data["alertmanager"]["urls"] = [redact.url(url) for url in data["alertmanager"]["urls"]]
        return data


_Named = TypeVar("_Named", PostgresTarget, RedisTarget, WebhookConfig)


def _unique_names(items: list[_Named]) -> list[_Named]:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"name {item.name!r} is used twice; each name must be unique")
        seen.add(item.name)
    return items


# --- loading ------------------------------------------------------------------------------------

SEED_VARIABLES: dict[str, tuple[str, ...]] = {
    "CPU_WARNING": ("host", "rules", "cpu_percent", "warning"),
    "CPU_CRITICAL": ("host", "rules", "cpu_percent", "critical"),
    "MEMORY_WARNING": ("host", "rules", "memory_percent", "warning"),
    "MEMORY_CRITICAL": ("host", "rules", "memory_percent", "critical"),
    "DISK_WARNING": ("host", "rules", "disk_percent", "warning"),
    "DISK_CRITICAL": ("host", "rules", "disk_percent", "critical"),
    "POSTGRES_CONN_WARNING": ("postgres", "rules", "connections", "warning"),
    "POSTGRES_CONN_CRITICAL": ("postgres", "rules", "connections", "critical"),
    "POSTGRES_CONN_MAX": ("postgres", "max_connections"),
    "REDIS_CONN_WARNING": ("redis", "rules", "connected_clients", "warning"),
    "REDIS_CONN_CRITICAL": ("redis", "rules", "connected_clients", "critical"),
    "REDIS_CONN_MAX": ("redis", "max_clients"),
}
"""The variables of connection-pool-monitor.sh: poolwatch drops into the existing compose file."""

POOLWATCH_VARIABLES: dict[str, tuple[str, ...]] = {
    "POOLWATCH_INTERVAL": ("interval",),
    "POOLWATCH_STATE_DIR": ("state_dir",),
    "POOLWATCH_PROCFS": ("host", "procfs"),
    "POOLWATCH_ROOTFS": ("host", "rootfs"),
    "POOLWATCH_HOST_STATS": ("host", "enabled"),
    "POOLWATCH_DOCKER": ("docker", "enabled"),
    "POOLWATCH_DOCKER_CGROUP_ROOT": ("docker", "cgroup_root"),
    "POOLWATCH_LOG_FORMAT": ("log_format",),
    "POOLWATCH_LISTEN": ("listen",),
}

SECRET_FIELDS = ("password", "secret", "bearer_token", "dsn", "url")
"""Keys that may be given as `<key>_file` (Docker secrets): the file's content becomes the value."""


def default_data() -> dict[str, Any]:
    text = resources.files("poolwatch").joinpath("default.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` wins; nested mappings merge key by key; lists and scalars replace."""
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"config file {path}: {where}not valid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of keys")
    return data


def _set(data: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _read_secret_file(path: str, where: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read secret file {path} ({exc.strerror})") from None


def _env_value(env: Mapping[str, str], name: str) -> str | None:
    """`NAME`, or the content of the file named by `NAME_FILE`."""
    if name in env:
        return env[name]
    file_name = f"{name}_FILE"
    if file_name in env:
        return _read_secret_file(env[file_name], file_name)
    return None


def environment_layer(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """The environment as a config layer, and where each value came from (for error messages)."""
    layer: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    for name, path in {**SEED_VARIABLES, **POOLWATCH_VARIABLES}.items():
        if name in env:
            _set(layer, path, env[name])
            origins[path] = name
    single_targets = (
        ("POOLWATCH_POSTGRES_DSN", "postgres", "dsn"),
        ("POOLWATCH_REDIS_URL", "redis", "url"),
    )
    for name, section, key in single_targets:
        value = _env_value(env, name)
        if value is not None:
            _set(layer, (section, "targets"), [{"name": "main", key: value}])
            origins[(section, "targets", "0", key)] = name
    url = env.get("POOLWATCH_WEBHOOK_URL")
    if url:
        hook: dict[str, Any] = {"name": "audit", "url": url}
        secret = _env_value(env, "POOLWATCH_WEBHOOK_SECRET")
        if secret is not None:
            hook["secret"] = secret
        layer["webhooks"] = [hook]
        origins[("webhooks", "0", "url")] = "POOLWATCH_WEBHOOK_URL"
    alertmanagers = env.get("POOLWATCH_ALERTMANAGER_URL")
    if alertmanagers:
        urls = [url.strip() for url in alertmanagers.split(",") if url.strip()]
        _set(layer, ("alertmanager", "urls"), urls)
        origins[("alertmanager", "urls")] = "POOLWATCH_ALERTMANAGER_URL"
    return layer, origins


NAMED_LISTS = (("postgres", "targets"), ("redis", "targets"), ("webhooks",))
"""Lists whose items have a `name`: the environment merges into the item of the same name."""


def _merge_named(
    data: dict[str, Any], layer: dict[str, Any], origins: dict[tuple[str, ...], str]
) -> dict[tuple[str, ...], str]:
    """`POOLWATCH_POSTGRES_DSN` names target `main`: it sets the DSN of the YAML's `main` (which
    keeps its other keys) or adds `main`; the YAML's other targets stay. Moves the items out of
    `layer` into `data`, and returns `origins` with the indexes they landed at."""
    moved = dict(origins)
    for path in NAMED_LISTS:
        parent = layer
        for key in path[:-1]:
            parent = parent.get(key) or {}
        items = parent.pop(path[-1], None)
        if not items:
            continue
        node = data
        for key in path[:-1]:
            node = node.setdefault(key, {})
        existing = node.setdefault(path[-1], [])
        if not isinstance(existing, list):
            existing = node[path[-1]] = []
        for env_index, item in enumerate(items):
            index = next(
                (
                    i
                    for i, old in enumerate(existing)
                    if isinstance(old, dict) and old.get("name") == item["name"]
                ),
                len(existing),
            )
            if index == len(existing):
                existing.append(item)
            else:
                existing[index] = deep_merge(existing[index], item)
            for where, name in origins.items():
                if where[: len(path) + 1] == (*path, str(env_index)):
                    del moved[where]
                    moved[(*path, str(index), *where[len(path) + 1 :])] = name
    return moved


def _inherit(data: dict[str, Any]) -> None:
    """Fill what each source and target leaves unsaid from its section, then the top level."""
    defaults = data.get("defaults") or {}
    for section in ("host", "postgres", "redis", "docker"):
        block = data.get(section)
        if not isinstance(block, dict):
            continue
        for key in ("interval", "timeout"):
            block.setdefault(key, data.get(key))
        if isinstance(block.get("rules"), dict):
            block["rules"] = {
                check: deep_merge(defaults, rule) if isinstance(rule, dict) else rule
                for check, rule in block["rules"].items()
            }
        targets = block.get("targets")
        if not isinstance(targets, list):
            continue
        for target in targets:
            if not isinstance(target, dict):
                continue
            for key in ("interval", "timeout"):
                target.setdefault(key, block.get(key))
            limit_key = {"postgres": "max_connections", "redis": "max_clients"}.get(section)
            if limit_key and block.get(limit_key) is not None:
                target.setdefault(limit_key, block[limit_key])
            target["rules"] = deep_merge(block.get("rules") or {}, target.get("rules") or {})


def _yield_defaults(data: dict[str, Any], user: Mapping[str, Any]) -> None:
    """A built-in threshold gives way to the user's other one instead of contradicting it.

    `DISK_CRITICAL=1%` alone means "critical above 1%", not "error: the default warning 80% is
    above it"; the default warning is dropped. When the user writes both, order is validated.
    """
    for section in ("host", "postgres", "redis", "docker"):
        rules = (data.get(section) or {}).get("rules") or {}
        user_rules = ((user.get(section) or {}).get("rules")) or {}
        for check, rule in rules.items():
            said = user_rules.get(check)
            if not isinstance(rule, dict) or not isinstance(said, Mapping):
                continue
            if ("warning" in said) == ("critical" in said):
                continue
            given, other = ("warning", "critical") if "warning" in said else ("critical", "warning")
            try:
                mine, theirs = parse_threshold(rule[given]), parse_threshold(rule.get(other))
            except (ValueError, KeyError):
                continue
            if mine.percent != theirs.percent:
                continue
            above = rule.get("direction", "above") == "above"
            warning, critical = (mine, theirs) if given == "warning" else (theirs, mine)
            if (warning.number > critical.number) if above else (warning.number < critical.number):
                rule[other] = None


def _cgroups_under_rootfs(data: dict[str, Any], user: Mapping[str, Any]) -> None:
    """With the host mounted at `rootfs` (recursively, as Docker bind-mounts), its cgroup files
    are at `{rootfs}/sys/fs/cgroup`: the Docker source reads them there unless told otherwise."""
    rootfs = str((data.get("host") or {}).get("rootfs") or "/")
    docker = data.get("docker")
    if (
        rootfs.rstrip("/")
        and isinstance(docker, dict)
        and "cgroup_root" not in (user.get("docker") or {})
    ):
        docker["cgroup_root"] = f"{rootfs.rstrip('/')}/sys/fs/cgroup"


def _resolve_secret_files(node: object, where: tuple[str, ...] = ()) -> None:
    if isinstance(node, list):
        for index, item in enumerate(node):
            _resolve_secret_files(item, (*where, str(index)))
        return
    if not isinstance(node, dict):
        return
    for key in list(node):
        if key.endswith("_file") and key[: -len("_file")] in SECRET_FIELDS:
            base = key[: -len("_file")]
            path = node.pop(key)
            node[base] = _read_secret_file(str(path), ".".join((*where, key)))
        else:
            _resolve_secret_files(node[key], (*where, key))


def _describe(error: Mapping[str, Any], origins: Mapping[tuple[str, ...], str]) -> str:
    loc = tuple(str(part) for part in error["loc"])
    # pydantic appends the failing union/annotated member to loc; keep the user's key path
    key = ".".join(part for part in loc if not part.startswith(("function-", "lax-")))
    origin = next((name for path, name in origins.items() if loc[: len(path)] == path), None)
    where = f"{key} (from {origin})" if origin else key or "config"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key; remove it or fix its spelling (see config/poolwatch.yaml)"
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) or value is None else f" {value!r}:"
    if any(secret in loc for secret in ("password", "secret", "bearer_token")):
        shown = " (value hidden):"
    return f"{where}:{shown} {message}"


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Defaults < YAML file (`path`, else `POOLWATCH_CONFIG`) < environment."""
    env = os.environ if env is None else env
    if path is None and env.get("POOLWATCH_CONFIG"):
        path = Path(env["POOLWATCH_CONFIG"])
    user = read_yaml(path) if path is not None else {}
    data = deep_merge(default_data(), user)
    layer, origins = environment_layer(env)
    said = deep_merge(user, layer)
    origins = _merge_named(data, layer, origins)
    data = deep_merge(data, layer)
    _yield_defaults(data, said)
    _cgroups_under_rootfs(data, said)
    _resolve_secret_files(data)
    _inherit(data)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"config error: {_describe(first, origins)}{suffix}") from None
    redact.register_config_secrets(config)
    return config
