"""Loading: built-in defaults < YAML file < environment, validated whole into a frozen `Config`.

Every layer is a plain dict until the very end, so layering is one deep merge and validation
(pydantic) happens once, with the full path of every bad value. `load()` raises `ConfigError`
with one line that names the key (and the environment variable it came from), the value (a
secret's is never shown), and what is expected. The same `load()` serves `--check-config`,
`--once`, the daemon and SIGHUP, so all four refuse a bad value the same way.

What is specific to a plugin (its defaults, its variables, what its targets inherit) is read
from the plugin's settings type through `Config`'s fields.
"""

from __future__ import annotations

import copy
import os
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from poolwatch.config.fields import read_secret_file
from poolwatch.config.model import Config
from poolwatch.config.plugin import EnvVar, Section, SourceSettings
from poolwatch.config.rules import parse_threshold
from poolwatch.config.secrets import is_secret_path, secret_kind
from poolwatch.core.secrets import Scrubber, is_uri, unparsed, url_secrets


class ConfigError(Exception):
    """A configuration that cannot be used; `str()` is the one line to show the user."""


# --- the plugins, as Config's fields declare them -------------------------------------------------


def sections() -> Iterator[tuple[str, type[BaseModel], bool]]:
    """(key, settings type, is a list of named items) for every plugin field of `Config`."""
    for key, info in Config.model_fields.items():
        annotation = info.annotation
        many = typing.get_origin(annotation) is list
        kind = typing.get_args(annotation)[0] if many else annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            yield key, kind, many


def source_sections() -> list[str]:
    return [key for key, kind, _ in sections() if issubclass(kind, SourceSettings)]


def environment_table() -> list[EnvVar]:
    """Every variable poolwatch reads, with its full path in the config."""
    table = list(Config.ENVIRONMENT)
    for key, kind, _ in sections():
        for var in getattr(kind, "ENVIRONMENT", ()):
            table.append(EnvVar(var.name, (key, *var.path), var.split, var.needs))
    return table


def default_data() -> dict[str, Any]:
    data = _yaml_resource("poolwatch.config")
    for key, kind, many in sections():
        if not many:
            data[key] = deep_merge(_yaml_resource(kind.__module__.rpartition(".")[0]), {})
    return data


def _yaml_resource(package: str) -> dict[str, Any]:
    text = resources.files(package).joinpath("defaults.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    assert isinstance(data, dict)
    return data


# --- layering -------------------------------------------------------------------------------------


def deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` wins; nested mappings merge key by key; lists and scalars replace."""
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class _DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: object, first: int, again: int) -> None:
        super().__init__(f"key {key!r} on line {again} was already given on line {first}")
        self.key, self.first, self.again = key, first, again


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping: YAML would keep the
    last silently, so `host:` written twice would re-enable what the first one turned off.
    Keys brought in by a merge (`<<: *base`) may be overridden, as YAML means them to be."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKeyError(key, seen[key], line)
                seen[key] = line
            except TypeError:  # an unhashable key: the safe loader refuses it itself
                continue
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKeyError as exc:
        raise ConfigError(
            f"config file {path}: line {exc.again}: key {exc.key!r} is given twice (first on "
            f"line {exc.first}); YAML would keep only the last one, so remove one"
        ) from None
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


def _named_lists() -> set[tuple[str, ...]]:
    """Paths of lists whose items have a `name` (targets, webhooks)."""
    found: set[tuple[str, ...]] = set()
    for key, kind, many in sections():
        if many:
            found.add((key,))
        for field, info in kind.model_fields.items():
            if typing.get_origin(info.annotation) is list:
                item = typing.get_args(info.annotation)[0]
                named = isinstance(item, type) and issubclass(item, BaseModel)
                if named and "name" in item.model_fields:
                    found.add((key, field))
    return found


def _place(data: dict[str, Any], path: tuple[str, ...], value: object) -> tuple[str, ...]:
    """Set `value` at `path`, where a named list takes the item's name as the next element (the
    item is added when missing, and keeps its other keys when present). Returns the path with
    list indexes, as pydantic reports it."""
    named = _named_lists()
    node: dict[str, Any] = data
    where: list[str] = []
    keys = list(path)
    while len(keys) > 1:
        key = keys.pop(0)
        where.append(key)
        if tuple(where) in named:
            items = node.get(key)
            if not isinstance(items, list):
                items = node[key] = []
            name = keys.pop(0)
            index = next(
                (
                    i
                    for i, it in enumerate(items)
                    if isinstance(it, dict) and it.get("name") == name
                ),
                None,
            )
            if index is None:
                items.append({"name": name})
                index = len(items) - 1
            where.append(str(index))
            node = items[index]
            continue
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[keys[0]] = value
    return (*where, keys[0])


def _present(data: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    """Whether `path` names something in `data`; a named list takes the item's name as the next
    element (as in `_place`)."""
    named = _named_lists()
    node: Any = data
    where: list[str] = []
    keys = list(path)
    while keys:
        key = keys.pop(0)
        where.append(key)
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
        if tuple(where) in named and keys:
            name = keys.pop(0)
            items = node if isinstance(node, list) else []
            node = next((it for it in items if _named(it, name)), None)
            if node is None:
                return False
    return True


def _env_value(env: Mapping[str, str], var: EnvVar) -> tuple[str, str] | None:
    """(value, the variable it came from): `NAME`, or, for a variable that sets a declared
    secret, the content of `NAME_FILE` (which an error then names)."""
    if var.name in env:
        return env[var.name], var.name
    file_name = f"{var.name}_FILE"
    if file_name in env and is_secret_path(Config, var.path):
        try:
            return read_secret_file(env[file_name], file_name), file_name
        except ValueError as exc:
            raise ConfigError(f"config error: {file_name}: {exc}") from None
    return None


def apply_environment(
    data: dict[str, Any], env: Mapping[str, str]
) -> tuple[dict[tuple[str, ...], str], dict[str, Any]]:
    """Set every variable of the environment table into `data`; return where each value landed
    (for error messages) and what the environment said, as a layer (for `_yield_defaults`)."""
    origins: dict[tuple[str, ...], str] = {}
    said: dict[str, Any] = {}
    for var in environment_table():
        found = _env_value(env, var)
        if var.needs is not None and not env.get(var.needs):
            if found is None or found[0] == "":
                continue
            if not _present(data, var.path[:-1]):  # said, and would silently do nothing
                *within, name, _ = var.path
                raise ConfigError(
                    f"config error: {found[1]} is set, but {var.needs} is not and the config "
                    f"file has no {'.'.join(within)} entry named {name!r}: set {var.needs} too, "
                    f"or unset {found[1]}"
                )
        if found is None or (var.needs is None and var.path[-1] == "url" and found[0] == ""):
            continue
        value: object = found[0]
        if var.split:
            value = [item.strip() for item in str(value).split(",") if item.strip()]
        origins[_place(data, var.path, value)] = found[1]
        _place(said, var.path, value)
    return origins, said


def _inherit(data: dict[str, Any]) -> None:
    """Fill what each source and target leaves unsaid from its section, then the top level."""
    defaults = data.get("defaults") or {}
    for key, kind, _ in sections():
        if not issubclass(kind, SourceSettings):
            continue
        block = data.get(key)
        if not isinstance(block, dict):
            continue
        for name in ("interval", "timeout"):
            block.setdefault(name, data.get(name))
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
            for name in ("interval", "timeout"):
                target.setdefault(name, block.get(name))
            for name in kind.TARGET_INHERITS:
                if block.get(name) is not None:
                    target.setdefault(name, block[name])
            target["rules"] = deep_merge(block.get("rules") or {}, target.get("rules") or {})


def _yield_defaults(data: dict[str, Any], user: Mapping[str, Any]) -> list[str]:
    """A built-in threshold gives way to the user's other one instead of contradicting it.

    `DISK_CRITICAL=1%` alone means "critical at 1%", not "error: the default warning 80% is above
    it"; the default warning is dropped, and a note says so. When the user writes both, order is
    validated.
    """
    notes: list[str] = []
    for section in source_sections():
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
                notes.append(
                    f"{section}.rules.{check}: {given} {mine} crosses the default {other} "
                    f"{theirs}; the default {other} is dropped (set {other} too to keep one)"
                )
    return notes


def _settle(data: dict[str, Any], said: Mapping[str, Any]) -> None:
    """Each plugin section fills in what it derives from others (`Section.settle`), given the
    registry's sources."""
    sources = Config.source_types()
    for key, kind, many in sections():
        section = data.get(key)
        if not many and issubclass(kind, Section) and isinstance(section, dict):
            mine = said.get(key)
            kind.settle(section, data, mine if isinstance(mine, dict) else {}, sources)


# --- errors ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Problem:
    where: str
    """The key (and the variable it came from)."""
    leaf: str
    """The key's last element: an inherited copy of a mistake ends the same way."""
    detail: str
    """The value (as far as it may be shown) and what is wrong with it."""

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


def _describe(error: Mapping[str, Any], origins: Mapping[tuple[str, ...], str]) -> _Problem:
    loc = tuple(str(part) for part in error["loc"])
    # pydantic appends the failing union/annotated member to loc; keep the user's key path
    parts = tuple(p for p in loc if not p.startswith(("function-", "lax-", "json-or-python")))
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith("[") and "] " in message:  # a validator naming the key below its own
        sub, _, message = message[1:].partition("] ")
        parts = (*parts, *sub.split("."))
    key = ".".join(parts)
    origin = next((name for path, name in origins.items() if parts[: len(path)] == path), None)
    where = f"{key} (from {origin})" if origin else key or "config"
    leaf = parts[-1] if parts else ""
    if error["type"] == "extra_forbidden":
        detail = "unknown key; remove it or fix its spelling (see config/poolwatch.yaml)"
        return _Problem(where, leaf, detail)
    if error["type"] == "missing":
        return _Problem(where, leaf, "required key is missing")
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) or value is None else f" {value!r}:"
    kind = _secret_kind(parts)
    if kind == "url" and isinstance(value, str):
        # a value that failed to parse: its password may be anywhere, so only its scheme and
        # host are shown, and no piece of what it holds is left in the message
        visible = unparsed(value)
        shown = f" {visible!r}:" if visible is not None else " (value hidden):"
        message = Scrubber(_secret_guesses(value))(message)
    elif kind is not None:
        shown = " (value hidden):"
    return _Problem(where, leaf, f"{shown} {message}".strip())


def _secret_guesses(text: str) -> list[str]:
    """What in a URL/DSN that failed to parse may be a secret: every way to read a password
    from it, and the whole userinfo."""
    guesses = url_secrets(text)
    rest = text.partition("://")[2] if is_uri(text) else ""
    if "@" in rest:
        userinfo = rest.rpartition("@")[0]
        guesses += [userinfo, userinfo.partition(":")[2]]
    return [g for g in guesses if g]


def _problems(found: list[_Problem]) -> str:
    """Every problem, each named once: one line for one problem; for several, the first on the
    first line (what a log that keeps one line shows) and every other on a line of its own
    below it. A mistake repeated where a value is inherited (`interval: 0` reaches every
    source) is one problem, with the other keys it reached named beside it."""
    groups: dict[tuple[str, str], list[_Problem]] = {}
    for problem in found:
        groups.setdefault((problem.leaf, problem.detail), []).append(problem)
    lines = []
    for first, *same in groups.values():
        also = f" (the same at {', '.join(p.where for p in same)})" if same else ""
        lines.append(f"{first}{also}")
    head, *more = lines
    if not more:
        return f"config error: {head}"
    count = f"{len(more)} more problem{'s' if len(more) > 1 else ''}"
    return "\n".join([f"config error: {head} (and {count}, below)", *(f"  {m}" for m in more)])


def _secret_kind(parts: tuple[str, ...]) -> str | None:
    """Whether the value at an error's path is a declared secret: a URL/DSN is shown with its
    password masked, any other secret not at all."""
    named = {n[-1] for n in _named_lists()}
    path: list[str] = []
    for part in parts:
        # an index stays only after a list of models (their path takes one element there)
        if not part.isdigit() or (path and path[-1] in named):
            path.append(part)
    return secret_kind(Config, tuple(path))


# --- the entry ------------------------------------------------------------------------------------


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Defaults < YAML file (`path`, else `POOLWATCH_CONFIG`) < environment."""
    env = os.environ if env is None else env
    if path is None and env.get("POOLWATCH_CONFIG"):
        path = Path(env["POOLWATCH_CONFIG"])
    user = read_yaml(path) if path is not None else {}
    data = deep_merge(default_data(), user)
    origins, layer = apply_environment(data, env)
    said = deep_merge(user, layer)
    notes = _yield_defaults(data, said)
    _settle(data, said)
    _inherit(data)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems([_describe(e, origins) for e in exc.errors()])) from None
    config._notes = tuple(notes)
    config._file = str(path) if path is not None else None
    config._file_said = user
    config._env_said = origins
    variables = sorted(set(origins.values()))
    config._origin = (
        " and ".join(
            part
            for part in (
                f"file {path}" if path is not None else "",
                f"environment {', '.join(variables)}" if variables else "",
            )
            if part
        )
        or "built-in defaults"
    )
    return config


def _named(item: object, name: str) -> bool:
    return isinstance(item, dict) and item.get("name") == name
