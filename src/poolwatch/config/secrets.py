"""Every consumer of the secret declaration: what is secret is known from the settings' types.

A settings model declares a secret once, by typing the field `Secret` or with a `CredentialUrl`
type (`poolwatch.config.fields`). From that alone:
- `--check-config` redacts it (the types serialise masked in JSON mode: `redacted()`),
- the log scrubber masks its value (`secret_values()`; a model may add what its typed fields
  cannot say, in `Frozen.more_secrets()`: a webhook URL's path unless it is declared public),
- `<key>_file` in YAML and `<VARIABLE>_FILE` in the environment may hold it
  (`fields.secret_field_names()`, read off the types beside the declaration, and
  `is_secret_path()`).
Adding a secret field to a plugin's settings therefore touches that model and nothing else.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel, SecretStr

from poolwatch.config.fields import CredentialUrl, Frozen, annotation_kind, field_annotation


def secret_values(value: object) -> Iterator[str]:
    """Every secret a validated settings value holds: `Secret` values, URL/DSN passwords."""
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, CredentialUrl):
        yield from value.secrets()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from secret_values(getattr(value, name))
        if isinstance(value, Frozen):
            yield from value.more_secrets()
    elif isinstance(value, dict):
        for item in value.values():
            yield from secret_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from secret_values(item)


def redacted(model: BaseModel) -> dict[str, Any]:
    """The model as plain data with every declared secret masked (for --check-config)."""
    return model.model_dump(mode="json", by_alias=True)


def is_secret_path(model: type[BaseModel], path: Sequence[str]) -> bool:
    """Whether the key at `path` is a declared secret (see `secret_kind`)."""
    return secret_kind(model, path) is not None


def secret_kind(model: type[BaseModel], path: Sequence[str]) -> str | None:
    """ "value", "url" or None for the key at `path`; a list of models takes one path element
    for its item (an index or a name), which is skipped."""
    node: object = model
    keys = list(path)
    while keys:
        node = _unwrap(node)
        if not (isinstance(node, type) and issubclass(node, BaseModel)):
            return None
        key = keys.pop(0)
        if key not in node.model_fields:
            return None
        annotation = field_annotation(node, key)
        values = _mapping_values(annotation)
        if values is not None:
            # a mapping of secrets (a webhook's `headers`): the whole and each value is secret,
            # whatever key the path names below it
            return annotation_kind(values)
        if not keys:
            return annotation_kind(annotation)
        node = _unwrap(annotation)
        if typing.get_origin(node) is list:
            node = typing.get_args(node)[0]
            keys.pop(0)
    return None


def _mapping_values(annotation: object) -> object | None:
    """The value type of a `dict[K, V]` field, else None."""
    node = _unwrap(annotation)
    return typing.get_args(node)[1] if typing.get_origin(node) is dict else None


def _unwrap(annotation: object) -> object:
    """`X | None` → X; `Annotated[X, ...]` → X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation
