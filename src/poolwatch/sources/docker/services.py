"""Which compose services are gone: the memory behind ContainerMissing. Pure (time passed in).

A container that is removed leaves no container to read, so its absence is only visible against
what poolwatch saw before. `ServiceBook` remembers every compose service it has seen running
(project, service, the last container name, when) and, each poll, names those that are gone:

- seen running within `forget_after`, so a service retired on purpose stops counting a day later;
- absent for at least `grace`, counted from the first poll it was absent, or from when its project
  came back if that is later: a `compose up` recreate and a `compose down` in progress remove
  containers one by one, and a project coming back starts its services one by one;
- while another service of its project runs now: `compose down` of the whole project removes
  every container and is not an outage. The project's services stay remembered (until
  `forget_after`), so when the project comes back without one of them, that one is missing.

A container that exists but does not run is not missing (`Sighting.STOPPED`: the container's
own stop and death alerts judge it, so one outage is one page); when it is then removed, it is.
A container that its intent says is done (a one-shot that exited 0, `Sighting.FINISHED`) is
forgotten, so its removal raises nothing.

The book is kept in one JSON file under `state_dir` so a restart of poolwatch forgets nothing;
it is written atomically (0600, `statefiles`), only when something that matters changed: a
daemon lives for months, and a poll that changed nothing writes nothing. `last_seen` of a service
that keeps running is written at most every `refresh` seconds, so after a restart a service may
be forgotten up to `refresh` early (`save(exact=True)` at shutdown writes it exactly). Memory and
the file are bounded: at most `limit` services (the longest unseen forgotten first), each name
cut to `MAX_LABEL_LENGTH`.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poolwatch.sources.docker.containers import MAX_LABEL_LENGTH
from poolwatch.statefiles import open_private, private_dir

SCHEMA = "poolwatch.docker.services/v1"
FILE_NAME = "docker-services.json"
"""The file's name under `state_dir` (the caller chooses the path; this is the suggestion)."""
MAX_SERVICES = 10_000
MAX_FILE_BYTES = MAX_SERVICES * 3 * 1024
"""Larger than any book this module writes (three names of 128 characters, each at most six
bytes a character as JSON escapes, and two numbers): a bigger file is not ours."""

Key = tuple[str, str]
"""(project, service)."""


def _bounded(value: str) -> str:
    return value[:MAX_LABEL_LENGTH]


class Sighting(enum.Enum):
    """What a poll saw of one container of a compose service."""

    RUNNING = "running"
    """Running: the service is seen (its `last_seen` moves) and its project runs."""
    STOPPED = "stopped"
    """A container that exists and does not run: not missing (its stop is judged by the
    container's own alerts); its `last_seen` stays at when it last ran."""
    FINISHED = "finished"
    """Done by its intent (a one-shot that exited 0): forgotten, so its removal raises nothing."""


@dataclass(frozen=True, slots=True)
class ServiceSeen:
    """One container of a compose service at this poll (one-off `compose run` containers are
    not services: leave them out)."""

    project: str
    service: str
    container: str
    sighting: Sighting = Sighting.RUNNING


@dataclass(frozen=True, slots=True)
class Missing:
    """A compose service that ran and has no container, while its project runs."""

    project: str
    service: str
    container: str
    """The last container name seen for it."""
    last_seen: float
    """Wall-clock seconds of the last poll that saw it running."""
    gone_since: float
    """Wall-clock seconds of the first poll it was absent."""


@dataclass(frozen=True, slots=True)
class Remembered:
    """One remembered service as the last `observe` judged it: the caller emits one reading
    per remembered service each poll (`value`), so a service that comes back reads 0 and its
    alert resolves; a forgotten one is no longer listed (the evaluator's sweep ends it)."""

    project: str
    service: str
    container: str
    last_seen: float
    gone_since: float | None
    """None while it has a container (running or stopped)."""
    missing: bool

    @property
    def value(self) -> int:
        return int(self.missing)


@dataclass(slots=True)
class _Entry:
    container: str
    last_seen: float
    gone_since: float | None
    saved_seen: float
    """`last_seen` as the file holds it: a newer one is written only `refresh` later."""


class ServiceBook:
    """The compose services poolwatch has seen running, which of them are missing now, and the
    file that keeps them across restarts (`path` None: memory only, as for a test or `--once`)."""

    def __init__(
        self,
        path: Path | None,
        *,
        forget_after: float,
        grace: float,
        limit: int = MAX_SERVICES,
        refresh: float | None = None,
    ) -> None:
        if not forget_after > 0 or not grace >= 0 or not 1 <= limit <= MAX_SERVICES:
            raise ValueError(f"needs forget_after > 0, grace >= 0, 1 <= limit <= {MAX_SERVICES}")
        self.path = path
        self.forget_after = forget_after
        self.grace = grace
        self.limit = limit
        self.refresh = min(forget_after / 24, 3600.0) if refresh is None else refresh
        """How stale the file's `last_seen` of a running service may grow: the default (an
        hour for a day's `forget_after`) writes a steady stack's book once an hour."""
        self._entries: dict[Key, _Entry] = {}
        self._project_since: dict[str, float] = {}
        """The projects running at the last poll, and since when (memory only: after a restart
        the grace starts again, which can only delay a page by `grace`)."""
        self._missing: set[Key] = set()
        self._changed = False
        self._drifted = False
        """Only `last_seen` of running services moved, less than `refresh` (see `save`)."""

    @property
    def changed(self) -> bool:
        """Whether `save` would write: something that matters differs from the file."""
        return self._changed

    def load(self) -> str | None:
        """Read the file, replacing what is in memory. A missing file is a first start (None);
        one that cannot be read or is not a book of this version starts the book empty and
        returns the one line to log (it is overwritten at the next change). Never raises."""
        self._entries, self._missing, self._project_since = {}, set(), {}
        self._changed = self._drifted = False
        if self.path is None:
            return None
        try:
            with open(self.path, "rb") as file:
                raw = file.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"unreadable: {exc.strerror or type(exc).__name__}"
        if len(raw) > MAX_FILE_BYTES:
            return f"larger than {MAX_FILE_BYTES} bytes: not a service book"
        try:
            entries = _parse(json.loads(raw))
        except (ValueError, RecursionError) as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return f"not a service book: {text[:200]}"
        self._entries = entries
        if self._evict():
            self._changed = True
        return None

    def observe(self, seen: Iterable[ServiceSeen], now: float) -> list[Missing]:
        """Take one poll's compose containers (every container of a watched compose service,
        with its sighting; passing only the running ones is allowed, see `Sighting`) and
        return the services missing now, ordered by project and service."""
        sightings = _strongest(seen)
        running_projects = {
            key[0] for key, (sighting, _) in sightings.items() if sighting is Sighting.RUNNING
        }
        self._project_since = {
            project: self._project_since.get(project, now) for project in running_projects
        }
        for key, (sighting, container) in sightings.items():
            self._sight(key, sighting, container, now)
        for key, entry in self._entries.items():
            if key not in sightings and entry.gone_since is None:
                entry.gone_since = now
                self._changed = True
        forgotten = [k for k, e in self._entries.items() if now - e.last_seen >= self.forget_after]
        for key in forgotten:
            del self._entries[key]
            self._changed = True
        if self._evict():
            self._changed = True
        found = [
            Missing(key[0], key[1], entry.container, entry.last_seen, entry.gone_since)
            for key, entry in self._entries.items()
            if entry.gone_since is not None and self._absent_long_enough(key, entry, now)
        ]
        found.sort(key=lambda missing: (missing.project, missing.service))
        self._missing = {(m.project, m.service) for m in found}
        return found

    def remembered(self) -> list[Remembered]:
        """Every remembered service with its verdict at the last `observe`, ordered by project
        and service."""
        return [
            Remembered(
                project=key[0],
                service=key[1],
                container=entry.container,
                last_seen=entry.last_seen,
                gone_since=entry.gone_since,
                missing=key in self._missing,
            )
            for key, entry in sorted(self._entries.items())
        ]

    def save(self, *, exact: bool = False) -> str | None:
        """Write the file atomically when something that matters changed (`exact`: also when
        only a running service's `last_seen` moved, for a clean shutdown). Returns None, or
        the one line to log when it could not be written (the change stays pending, so the
        next call tries again). Never raises."""
        if self.path is None or not (self._changed or (exact and self._drifted)):
            return None
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        body = json.dumps(_serialised(self._entries), separators=(",", ":")).encode()
        try:
            private_dir(self.path.parent)
            fd = open_private(temporary, os.O_WRONLY | os.O_TRUNC)
            with os.fdopen(fd, "wb") as file:
                file.write(body)
                file.flush()
                os.fsync(file.fileno())  # the rename must not outlive the content on a crash
            os.replace(temporary, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            return f"unwritable: {exc.strerror or type(exc).__name__}"
        for entry in self._entries.values():
            entry.saved_seen = entry.last_seen
        self._changed = self._drifted = False
        return None

    def _sight(self, key: Key, sighting: Sighting, container: str, now: float) -> None:
        entry = self._entries.get(key)
        if sighting is Sighting.FINISHED:
            if entry is not None:
                del self._entries[key]
                self._changed = True
            return
        if sighting is Sighting.STOPPED:
            # never seen running: nothing to miss; else it has a container, so not gone
            if entry is not None and entry.gone_since is not None:
                entry.gone_since = None
                self._changed = True
            return
        if entry is None:
            self._entries[key] = _Entry(container, now, None, now)
            self._changed = True
            return
        if entry.container != container or entry.gone_since is not None:
            entry.container, entry.gone_since = container, None
            self._changed = True
        entry.last_seen = now
        if now - entry.saved_seen >= self.refresh:
            self._changed = True
        elif now != entry.saved_seen:
            self._drifted = True

    def _absent_long_enough(self, key: Key, entry: _Entry, now: float) -> bool:
        project_since = self._project_since.get(key[0])
        if project_since is None or entry.gone_since is None:
            return False  # the whole project is down (compose down), or it has a container
        return now - max(entry.gone_since, project_since) >= self.grace

    def _evict(self) -> bool:
        """Keep at most `limit` services: the longest unseen go first."""
        excess = len(self._entries) - self.limit
        if excess <= 0:
            return False
        oldest = sorted(self._entries.items(), key=lambda item: (item[1].last_seen, item[0]))
        for key, _ in oldest[:excess]:
            del self._entries[key]
        return True


_RANK = {Sighting.RUNNING: 0, Sighting.STOPPED: 1, Sighting.FINISHED: 2}


def _strongest(seen: Iterable[ServiceSeen]) -> dict[Key, tuple[Sighting, str]]:
    """One sighting per service: a service with several containers (`--scale`) runs while one
    of them runs; its container name is the first running one by name, so it is stable."""
    found: dict[Key, tuple[Sighting, str]] = {}
    for item in seen:
        if not item.project or not item.service:
            continue  # not a compose service
        key = (_bounded(item.project), _bounded(item.service))
        candidate = (item.sighting, _bounded(item.container))
        held = found.get(key)
        if held is None or (_RANK[candidate[0]], candidate[1]) < (_RANK[held[0]], held[1]):
            found[key] = candidate
    return found


def _serialised(entries: Mapping[Key, _Entry]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "services": [
            {
                "project": key[0],
                "service": key[1],
                "container": entry.container,
                "last_seen": entry.last_seen,
                "gone_since": entry.gone_since,
            }
            for key, entry in sorted(entries.items())
        ],
    }


def _parse(document: object) -> dict[Key, _Entry]:
    """The entries of a book this version wrote; ValueError names what is not."""
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ValueError(f"no schema {SCHEMA!r}")
    services = document.get("services")
    if not isinstance(services, list):
        raise ValueError("services is not a list")
    if len(services) > MAX_SERVICES:
        raise ValueError(f"more than {MAX_SERVICES} services")
    entries: dict[Key, _Entry] = {}
    for number, item in enumerate(services):
        if not isinstance(item, dict):
            raise ValueError(f"service {number} is not an object")
        project, service, container = (item.get(f) for f in ("project", "service", "container"))
        if not (isinstance(project, str) and project and isinstance(service, str) and service):
            raise ValueError(f"service {number}: project or service is not a name")
        if not isinstance(container, str):
            raise ValueError(f"service {number}: container is not a name")
        seen, gone = _time(item.get("last_seen")), _time(item.get("gone_since"))
        if seen is None or (gone is None and item.get("gone_since") is not None):
            raise ValueError(f"service {number}: last_seen or gone_since is not a time")
        key = (_bounded(project), _bounded(service))
        entries[key] = _Entry(_bounded(container), seen, gone, seen)
    return entries


def _time(value: object) -> float | None:
    """A finite number of seconds, or None (JSON's true is no time)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
