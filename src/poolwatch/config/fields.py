"""The scalar types every settings model is written in, and the base model they share.

Each type parses what an operator writes (`500ms`, `"75%"`, `on`, `host:port`, a DSN) into a
checked value at load time, so a typo is refused by `--check-config`, `--once`, the daemon and a
SIGHUP alike, with the key named, instead of surfacing later as a page or a traceback.

Secrets are declared here by type, once: `Secret` (the whole value) and `CredentialUrl` (a URL or
DSN whose password is secret). `poolwatch.config.secrets` reads those types to redact
`--check-config`, to collect the values log scrubbing masks, and to honour `<key>_file`.
"""

from __future__ import annotations

import functools
import math
import re
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    SecretStr,
    model_validator,
)

from poolwatch.core.describe import SOURCE_TITLES
from poolwatch.core.secrets import MASK, hidden_userinfo, is_uri, url_password, url_secrets
from poolwatch.core.secrets import url as redact_url

# --- durations, fractions, switches --------------------------------------------------------------

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

_OFF_WORDS = frozenset({"off", "no", "false", "none", "null"})


def parse_duration_or_off(raw: object) -> float | None:
    """A duration, or `off` (also YAML's `off`/`false`, read as a boolean, and null) → None."""
    if raw is None or raw is False or (isinstance(raw, str) and raw.strip().lower() in _OFF_WORDS):
        return None
    try:
        return parse_duration(raw)
    except ValueError:
        raise ValueError("expected a duration like 30s or 2m, or off") from None


DurationOrOff = Annotated[
    float | None,
    BeforeValidator(parse_duration_or_off),
    PlainSerializer(lambda v: "off" if v is None else format_duration(v)),
]
"""A period that may be turned off (`probe_interval: off`)."""


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

Name = Annotated[str, AfterValidator(lambda s: _name(s))]


def _name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text):
        raise ValueError("expected a name of letters, digits, '_', '.' or '-', like main")
    return text


_Named = TypeVar("_Named", bound=BaseModel)


def unique_names(items: list[_Named]) -> list[_Named]:
    """Items of a named list (targets, webhooks) must not share a name."""
    seen: set[str] = set()
    for item in items:
        name = getattr(item, "name", None)
        if name in seen:
            raise ValueError(f"name {name!r} is used twice; each name must be unique")
        seen.add(str(name))
    return items


PARENT_EXAMPLE = "docker:matrixon-postgres-1 or postgres:main"


def _parent(text: str) -> str:
    """One `depends_on:` entry: `source:instance`, a source poolwatch has."""
    source, colon, instance = text.strip().partition(":")
    if not colon or not source or not instance:
        raise ValueError(f"expected source:instance, like {PARENT_EXAMPLE}")
    if source not in SOURCE_TITLES:
        known = ", ".join(SOURCE_TITLES)
        raise ValueError(
            f"no source named {source!r}; write source:instance with one of {known}, like "
            f"{PARENT_EXAMPLE}"
        )
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", instance):
        raise ValueError(
            f"instance {instance!r} is not a name (letters, digits, '_', '.' or '-'); write "
            f"source:instance, like {PARENT_EXAMPLE}"
        )
    return f"{source}:{instance}"


def _one_or_many(raw: object) -> object:
    """`depends_on: docker:db` means the list of that one."""
    return [raw] if isinstance(raw, str) else raw


Parents = Annotated[list[Annotated[str, AfterValidator(_parent)]], BeforeValidator(_one_or_many)]
"""A target's `depends_on:`: the nodes whose outage holds its alerts (`core.dependencies`)."""


def parent_nodes(parents: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Checked `depends_on:` entries as (source, instance) nodes."""
    nodes = (tuple(entry.split(":", 1)) for entry in parents)
    return tuple(dict.fromkeys((source, instance) for source, instance in nodes))


# --- addresses and files -------------------------------------------------------------------------


def check_port(port: int | str | None, what: str, *, echo: bool = True) -> None:
    """A TCP port an operator wrote: 1 to 65535. The text is echoed only when it looks like a
    port typo (short, one word) and `echo` allows: a "port" that is really a slice of a DSN or
    of a password is not shown."""
    if port is None:
        return
    text = str(port)
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        shown = f" {text!r}" if echo and re.fullmatch(r"[\w.+-]{0,12}", text) else ""
        raise ValueError(f"{what} port{shown} is not a port number (1 to 65535)")


def check_url_port(netloc: str) -> None:
    """The port of a URL's `[user@]host[:port]`, checked with a message an operator reads
    (urllib's own is "Port out of range 0-65535", which also admits 0). Without a `user@`, a
    "port" of letters may be a password that lost its `@` (a list split at a comma in it): it
    is not echoed then."""
    _, at, hostport = netloc.rpartition("@")
    tail = hostport[hostport.rfind("]") + 1 :]
    _, colon, port = tail.rpartition(":")
    if colon:
        check_port(port, "the", echo=bool(at) or port.isdigit())


def parse_listen(address: str) -> tuple[str, int]:
    """`host:port`, `:port` (all interfaces) or `[::1]:port` → (host, port)."""
    match = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^:\[\]\s]*):(\S+)", address.strip())
    if not match:
        raise ValueError("expected host:port, :port or [ipv6]:port, like 127.0.0.1:9187")
    check_port(match.group(2), "the")
    return match.group(1).strip("[]") or "0.0.0.0", int(match.group(2))  # noqa: S104 - ":port"


def _listen(text: str) -> str:
    parse_listen(text)
    return text.strip()


ListenAddress = Annotated[str, AfterValidator(_listen)]


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        reason = "does not exist" if not path.exists() else "is not a file"
        raise ValueError(f"{path} {reason}; give the path of a readable file")
    return path


ExistingFile = Annotated[Path, AfterValidator(_existing_file)]


# --- secrets -------------------------------------------------------------------------------------


class CredentialUrl(str):
    """A URL or DSN that may carry a password: the value is used as it is, shown redacted.

    A `str` subclass, so code that connects with it needs nothing special, while
    `poolwatch.config.secrets` finds every such value by its type.
    """

    __slots__ = ()

    @property
    def password(self) -> str | None:
        return url_password(self)

    def secrets(self) -> list[str]:
        """Every secret the value carries (a userinfo password, secret query values, libpq's
        `password` and `sslpassword`): what the scrubber learns."""
        return url_secrets(self)


def _masked(value: SecretStr) -> str:
    return MASK if value.get_secret_value() else ""


Secret = Annotated[SecretStr, PlainSerializer(_masked, when_used="json")]
"""A value never shown: `--check-config` prints `***`, logs mask it, `<key>_file` may hold it."""


class Sensitive:
    """The mark of a secret-bearing type, read by `poolwatch.config.secrets`."""


SENSITIVE = Sensitive()


AMBIGUOUS_USERINFO = (
    "the part between '://' and the host is ambiguous: an unencoded '/', '?', '#' or '@' in the "
    "password ends the host early (base64 passwords have '/'), or an '@' follows the host; "
    "percent-encode them (%2F, %3F, %23, %40)"
)
"""Why a URL whose password a parser would misread is refused: a fixed text, since any piece
of such a URL a parser would quote (its "port", its "host") is a piece of the password."""


def check_userinfo(text: str, *, at_in_path: bool = False) -> None:
    """Refuse a URL whose password would be misread (and so shown, learned wrong by the
    scrubber, or sent elsewhere): one whose password ends the host early, or that has an `@`
    after the host as well as a userinfo. `at_in_path`: any `@` after the host (for schemes
    where no path or query holds one: a database name, a Redis db number, an Alertmanager)."""
    text = text.strip()
    if not is_uri(text):
        return
    if hidden_userinfo(text) is not None:
        raise ValueError(AMBIGUOUS_USERINFO)
    rest = text.partition("://")[2]
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    if (at_in_path or "@" in rest[:end]) and "@" in rest[end:]:
        raise ValueError(AMBIGUOUS_USERINFO)


def credential(check: Callable[[str], str]) -> AfterValidator:
    """Validates a URL/DSN with `check` and keeps it as a `CredentialUrl`; a type is then
    `Annotated[str, credential(check), REDACTED_URL, SENSITIVE]`. A password that would end
    the host early is refused first, before `check` could quote a piece of it."""

    def validate(text: str) -> CredentialUrl:
        check_userinfo(text)
        return CredentialUrl(check(text))

    return AfterValidator(validate)


def _redacted_url(value: str) -> str:
    return redact_url(value)


REDACTED_URL = PlainSerializer(_redacted_url, when_used="json")


def check_http_url(text: str) -> str:
    """An http(s) base URL with a host and, if given, a valid port."""
    try:
        parts = urlsplit(text.strip())
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host, like http://am:9093")
    check_url_port(parts.netloc)
    return text.strip()


HttpUrl = Annotated[str, credential(check_http_url), REDACTED_URL, SENSITIVE]


# Reading the declaration off a model's types: here, beside the declaration, because `Frozen`
# needs it for `<key>_file`; its other consumers are in `poolwatch.config.secrets`.


def annotation_kind(annotation: object) -> str | None:
    """ "value" for a `Secret`, "url" for a `CredentialUrl` type (or a list of them), else None."""
    if annotation is SecretStr:
        return "value"
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        return "url" if SENSITIVE in metadata else annotation_kind(base)
    if origin in (typing.Union, types.UnionType, list):
        kinds = [annotation_kind(arg) for arg in typing.get_args(annotation)]
        return next((k for k in kinds if k), None)
    return None


def is_secret_annotation(annotation: object) -> bool:
    """Whether the annotation declares a secret (a `Secret` or a `CredentialUrl` type)."""
    return annotation_kind(annotation) is not None


def field_annotation(model: type[BaseModel], name: str) -> object:
    """The field's annotation with its metadata, as the model declared it."""
    info = model.model_fields[name]
    if info.metadata:
        return typing.Annotated[(info.annotation, *info.metadata)]
    return info.annotation


@functools.cache
def secret_field_names(model: type[BaseModel]) -> frozenset[str]:
    """The fields of `model` declared secret (and so loadable from `<name>_file`)."""
    return frozenset(
        name for name in model.model_fields if is_secret_annotation(field_annotation(model, name))
    )


# --- the base model ------------------------------------------------------------------------------


class Frozen(BaseModel):
    """Settings are frozen values: validated once, then only read. Unknown keys are refused.

    Every field typed `Secret` or `CredentialUrl` may instead be given as `<key>_file`: the file's
    content (without its trailing newline) is the value (the Docker secrets convention).
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, arbitrary_types_allowed=True
    )

    def more_secrets(self) -> Iterable[str]:
        """Secrets this model holds beyond its `Secret`/`CredentialUrl` fields, for the log
        scrubber (the webhook settings add the path and tokens of a URL not declared public)."""
        return ()

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names = secret_field_names(cls)
        files = [key for key in data if key.endswith("_file") and key[:-5] in names]
        if not files:
            return data
        data = dict(data)
        for key in files:
            path = data.pop(key)
            if key[:-5] in data:
                raise ValueError(f"give {key[:-5]} or {key}, not both")
            try:
                data[key[:-5]] = read_secret_file(str(path), key)
            except ValueError as exc:
                raise ValueError(f"[{key}] {exc}") from None
        return data


def read_secret_file(path: str, where: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path} ({exc.strerror})") from None
