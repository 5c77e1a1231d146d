"""Docker source: per container what `docker stats` says, plus restarts, OOM kills and health.

A poll lists every container (one call), inspects only those that are new or changed (events mark
them), and reads CPU and memory counters from cgroup files when they are mounted, else through
the stats API (one-shot), `docker.concurrency` calls at a time. A background subscription to the
engine's event stream (`watch`) reports restarts, OOM kills and health changes the moment they
happen, and DockerDown as soon as the stream breaks because the engine went away.

Readings (source `docker`; `instance` is the container name, or `engine` for `up`; container
readings carry the labels `image`, `compose_project`, `compose_service` when present).
docs/sources/docker.md has the table with units and limits; `CHECKS` lists the same checks.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import docker.errors

from poolwatch.config.fields import format_duration
from poolwatch.config.rules import Rule, Rules
from poolwatch.core.dependencies import ContainerAddress
from poolwatch.core.model import UP_CHECK, Reading, rfc3339
from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.sources import Publish, SourceError
from poolwatch.sources.docker.access import denied_reason
from poolwatch.sources.docker.activity import ActivityLog
from poolwatch.sources.docker.addresses import (
    Reach,
    container_address,
    network_aliases,
    remembered,
)
from poolwatch.sources.docker.cgroup import CgroupFiles, CgroupReader
from poolwatch.sources.docker.containers import Choice, Container, Selector, overrides
from poolwatch.sources.docker.engine import (
    ONE_SHOT_API,
    ONE_SHOT_SDK,
    AnswerTooLargeError,
    Engine,
    EventStream,
    version_tuple,
)
from poolwatch.sources.docker.events import ContainerEvent, Resume
from poolwatch.sources.docker.lifecycle import (
    EXPECT_LABEL,
    Ending,
    Policy,
    Verdict,
    expectation,
    judge,
)
from poolwatch.sources.docker.readings import ENGINE_INSTANCE, SOURCE
from poolwatch.sources.docker.services import (
    FILE_NAME,
    Remembered,
    ServiceBook,
    ServiceSeen,
    Sighting,
)
from poolwatch.sources.docker.settings import DockerSettings
from poolwatch.sources.docker.stats import (
    Sample,
    cpu_limit_percent,
    cpu_percent,
    from_api,
    memory_percent,
)
from poolwatch.sources.docker.watch import REASON_CHARS, follow

CGROUP_PRIME = 0.2
"""The first poll's two cgroup samples are this far apart: the counters are exact (ns of CPU;
/proc/stat in ticks of 10 ms, 40 of them on 2 CPUs), so a short gap gives a true CPU %."""
ONEOFF_LABEL = "com.docker.compose.oneoff"
"""`compose run` containers: not a service."""
SETTLE = 0.5
"""A `die` is judged this long after it: `docker stop` says `kill`, `die`, then `stop`, and a
restart policy may start the container again at once."""
KILL_TO_DIE = 15.0
"""A `kill` event counts as the cause of a `die` within this long (docker stop's default
timeout is 10 s, after which it kills)."""
API_PRIME = 0.5
"""... and two API samples this far apart (the engine's own counters, read on its ticks)."""


@dataclass(frozen=True, slots=True)
class _Inspected:
    state: str
    host_config: Mapping[str, Any]
    cgroup_parent: str
    exit_code: int | None = None
    oom_killed: bool = False
    health_output: str | None = None
    """The first HEALTH_OUTPUT_CHARS of the health check's last output."""
    restart_count: int = 0
    finished_at: float | None = None
    """Wall-clock time the container last ended (inspect's `FinishedAt`); None: never."""
    aliases: frozenset[str] = frozenset()
    """Its names on its networks (`Aliases`, `DNSNames`), for `addresses`."""

    @property
    def policy(self) -> Policy:
        return Policy.of(self.host_config)


HEALTH_OUTPUT_CHARS = 200


def _health_output(state: Mapping[str, Any]) -> str | None:
    log = (state.get("Health") or {}).get("Log") or []
    if not log:
        return None
    return str(log[-1].get("Output") or "").strip()[:HEALTH_OUTPUT_CHARS] or None


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def _age(timestamp: str, wall: float) -> float | None:
    """Seconds since an engine timestamp (`2026-11-27T17:14:04.156959821Z`); None for never."""
    if not timestamp or timestamp.startswith("0001-"):
        return None
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", timestamp).replace("Z", "+00:00"))
    except ValueError:
        return None
    return wall - moment.timestamp()


class DockerCollector:
    """One Docker engine (from the environment) and its containers; also a `Watcher`."""

    source = SOURCE
    instance = ENGINE_INSTANCE

    def __init__(
        self,
        config: DockerSettings,
        environment: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.interval = config.interval
        self.timeout = config.timeout
        self.base_rules: Rules = config.rules
        self._rules: Rules = dict(config.rules)
        self.config = config
        self.selector = Selector(
            tuple(config.include), tuple(config.exclude), honour_labels=config.honour_labels
        )
        self.engine = Engine(environment, config.timeout, config.concurrency)
        self.events = EventStream(environment, config.timeout)
        self.activity = ActivityLog(config.restart_window)
        self.clock = clock
        self.wall = wall
        self.stats_via = "api"
        self.one_shot = True
        self.connected = asyncio.Event()
        """Set while the event stream is subscribed (tests and health checks wait on it)."""
        self._started = False
        self._primed = False
        self._known: dict[str, Container] = {}
        self._inspected: dict[str, _Inspected] = {}
        self._reached: dict[str, Reach] = {}
        """Each container's addresses and published ports while it last ran (`addresses`)."""
        self._cgroup_files: dict[str, CgroupFiles] = {}
        self._dirty: set[str] = set()
        self._evented: set[str] = set()
        """Containers met in events since the last list (maybe created after it)."""
        self._samples: dict[str, Sample] = {}
        self._overrides: dict[str, dict[str, Rule]] = {}
        self._cgroups: CgroupReader | None = None
        self._endings: dict[str, Ending] = {}
        """How each container last ended, as the event stream said (`kill`, `die`, `stop`)."""
        self._kills: dict[str, tuple[float, int | None]] = {}
        """A `kill` event's time and signal, until the `die` it may cause."""
        self._judging: dict[str, asyncio.Task[None]] = {}
        """At most one pending verdict per container (SETTLE after its `die`)."""
        self._publish: Publish | None = None
        self._services = ServiceBook(
            config.state_dir / FILE_NAME if config.state_dir is not None else None,
            forget_after=config.forget_after,
            grace=config.restart_grace,
        )
        self._services_loaded = False
        self._save_problem: str | None = None
        self.resume = Resume()
        """Where the next event subscription resumes (kept across subscriptions)."""
        self._oversize: set[str] = set()
        """Containers whose inspect or stats answer was over the cap (logged once each)."""
        self._dropped: set[str] = set()
        """Containers the selection chose and their own label dropped (logged once each)."""
        self._log = get_logger()
        self._window = f"within {format_duration(config.restart_window)}"

    @property
    def rules(self) -> Rules:
        """The configured rules plus each container's label overrides (`check@container`)."""
        return self._rules

    @rules.setter
    def rules(self, configured: Rules) -> None:
        # a config reload hands over new configured rules: label overrides are derived from
        # them, so they are recomputed on the next poll
        if configured is not self._rules:
            self.base_rules, self._rules = configured, dict(configured)
            self._overrides.clear()

    # --- start-up -------------------------------------------------------------------------------

    async def probe(self) -> bool:
        """Does the engine answer? (`enabled: auto`)"""
        try:
            async with asyncio.timeout(self.timeout):
                await self.engine.call(lambda api: api.ping())
        except Exception:
            return False
        return True

    async def _start(self) -> None:
        """Once the engine first answers: versions, the machine's memory, the stats path."""
        if self._started:
            return
        info, api_version = await self.engine.call(lambda api: (api.info(), api.api_version))
        self.one_shot = (
            version_tuple(str(api_version)) >= ONE_SHOT_API
            and version_tuple(docker.__version__) >= ONE_SHOT_SDK
        )
        if not self.one_shot:
            self._log.warning(
                "docker_one_shot_unavailable",
                api_version=api_version,
                sdk_version=docker.__version__,
                needs="Engine API >= 1.41 and docker SDK >= 6.1",
                effect="each stats call through the API waits 1-2 s; cgroup files avoid it",
            )
        if self.config.stats != "api":
            root = self.config.cgroup_root
            reader = await asyncio.to_thread(CgroupReader, root, int(info.get("MemTotal") or 0))
            if reader.available:
                self._cgroups, self.stats_via = reader, "cgroup"
            elif self.config.stats == "cgroup":
                self._log.warning("docker_cgroups_not_found", cgroup_root=str(root), using="api")
        self._started = True
        self._log.info(
            "docker_engine",
            api_version=api_version,
            one_shot=self.one_shot,
            stats_via=self.stats_via,
            cgroup_version=2 if self._cgroups and self._cgroups.v2 else 1,
        )

    # --- polling --------------------------------------------------------------------------------

    async def collect(self) -> Sequence[Reading]:
        try:
            return await self._collect()
        except (docker.errors.DockerException, OSError) as exc:  # requests' errors are OSErrors
            raise SourceError(f"Docker engine unreachable: {self.reason(exc)}") from exc

    def reason(self, exc: BaseException) -> str:
        """Why the engine cannot be used: what to do about a refused socket, else the error."""
        environment = os.environ if self.engine.environment is None else self.engine.environment
        return denied_reason(exc, environment) or one_line(exc, limit=REASON_CHARS)

    async def _collect(self) -> list[Reading]:
        await self._start()
        listing = await self.engine.call(lambda api: api.containers(all=True))
        found = [(c, self.selector.choice(c)) for c in map(Container.from_list, listing)]
        containers = [c for c, choice in found if choice is Choice.WATCHED]
        dropped = [c for c, choice in found if choice is Choice.LABEL_EXCLUDED]
        self._note_dropped(dropped)
        self._forget_all_but({c.id for c in containers})
        self._known = {c.id: c for c in containers}
        self._reached = remembered(self._reached, containers)
        stale = [c for c in containers if self._needs_inspect(c)]
        running = [c for c in containers if c.running]
        if self._primed:
            await self._inspect(stale)
            samples = await self._sample(running)
        else:
            samples = await self._prime(running, stale)
        self._refresh_rules(containers)
        now = self.clock()
        said = _dropped_line(dropped)
        readings = [Reading(SOURCE, ENGINE_INSTANCE, UP_CHECK, 1, "bool", message=said)]
        seen: list[ServiceSeen] = []
        for container in containers:
            own = self._readings(container, samples.get(container.id), now)
            readings += own
            service = _service_seen(container, own)
            if service is not None:
                seen.append(service)
        self._samples = samples
        return readings + await self._missing(seen)

    async def _missing(self, seen: Sequence[ServiceSeen]) -> list[Reading]:
        """ContainerMissing: one reading per compose service remembered (services.py). The
        daemon (whose event stream runs) keeps the book in `state_dir`; `--once` reads it."""
        book = self._services
        if not self._services_loaded:
            self._services_loaded = True
            problem = await asyncio.to_thread(book.load)
            if problem is not None:
                self._log.warning("docker_services_unread", path=str(book.path), reason=problem)
        book.observe(seen, self.wall())
        if self._publish is not None and book.changed:
            problem = await asyncio.to_thread(book.save)
            if problem is not None and problem != self._save_problem:
                self._log.warning("docker_services_unsaved", path=str(book.path), reason=problem)
            self._save_problem = problem
        return [
            Reading(
                SOURCE,
                entry.container,
                "missing",
                entry.value,
                "bool",
                labels={"compose_project": entry.project, "compose_service": entry.service},
                message=_missing_line(entry) if entry.missing else None,
            )
            for entry in book.remembered()
        ]

    async def _prime(
        self, running: Sequence[Container], stale: Sequence[Container]
    ) -> dict[str, Sample]:
        """The first poll samples CPU twice, so that even `--once` has a CPU %.

        Cgroup counters are exact, so CGROUP_PRIME apart suffices, and the inspections (most of
        a cold poll) run in that gap. Containers whose cgroup is found only once inspected
        (a custom `--cgroup-parent`), or that only the API can sample, get API_PRIME apart.
        """
        early = await self._sample(running, api=False) if self._cgroups is not None else {}
        gap = CGROUP_PRIME if early else 0.0
        await asyncio.gather(self._inspect(stale), asyncio.sleep(gap))
        self._samples.update(early)
        samples = await self._sample(running)
        late = [c for c in running if c.id in samples and c.id not in early]
        if late:
            self._samples.update({c.id: samples[c.id] for c in late})
            await asyncio.sleep(API_PRIME)
            samples.update(await self._sample(late))
        self._primed = True
        return samples

    def _note_dropped(self, dropped: Sequence[Container]) -> None:
        """Say once per container that its own label dropped it from what was selected."""
        for container in dropped:
            if container.id in self._dropped:
                continue
            self._log.warning(
                "docker_label_excluded",
                container=container.name,
                label="poolwatch.enable=false",
                selected_by=list(self.selector.include) or "every container (include is empty)",
                effect="not watched; name it in docker.include, or set docker.honour_labels: "
                "false, to watch it",
            )
        self._dropped = {c.id for c in dropped}

    def _needs_inspect(self, container: Container) -> bool:
        known = self._inspected.get(container.id)
        return (
            known is None
            or container.id in self._dirty
            or not self.connected.is_set()
            or known.state != container.state
        )

    async def _inspect(self, containers: Sequence[Container]) -> None:
        async def one(container: Container) -> None:
            try:
                data = await self.engine.call(lambda api: api.inspect_container(container.id))
            except docker.errors.NotFound:
                return  # removed since the list; the next poll forgets it
            except AnswerTooLargeError as exc:
                self._too_large(container, exc)  # costs this container's inspect, no other's
                return
            state = data.get("State") or {}
            host_config = data.get("HostConfig") or {}
            self.activity.inspected(
                container.id,
                int(data.get("RestartCount") or 0),
                bool(state.get("OOMKilled")),
                str(state.get("FinishedAt") or ""),
                _age(str(state.get("FinishedAt") or ""), self.wall()),
                self.clock(),
            )
            # a running container's ExitCode is 0 (reset at start): only a stopped one's says
            # how it ended
            running = str(state.get("Status") or container.state) == "running"
            exit_code = None if running else state.get("ExitCode")
            finished = str(state.get("FinishedAt") or "")
            age = _age(finished, self.wall())
            self._inspected[container.id] = _Inspected(
                state=str(state.get("Status") or container.state),
                host_config=host_config,
                cgroup_parent=str(host_config.get("CgroupParent") or ""),
                exit_code=int(exit_code) if isinstance(exit_code, int) else None,
                oom_killed=bool(state.get("OOMKilled")),
                health_output=_health_output(state),
                restart_count=int(data.get("RestartCount") or 0),
                finished_at=None if age is None else self.wall() - age,
                aliases=network_aliases(data),
            )
            self._dirty.discard(container.id)

        await asyncio.gather(*(one(c) for c in containers))

    async def _sample(self, running: Sequence[Container], *, api: bool = True) -> dict[str, Sample]:
        """CPU and memory counters of every running container: cgroup files, else (unless
        `api` is False) the API."""
        samples: dict[str, Sample] = {}
        if self._cgroups is not None:
            reader = self._cgroups
            wanted = [(c.id, self._cgroup_files.get(c.id), self._parent(c.id)) for c in running]
            samples, found = await self.engine.run(lambda: _read_cgroups(reader, wanted))
            self._cgroup_files.update(found)
        missing = [c.id for c in running if c.id not in samples] if api else []
        results = await asyncio.gather(*(self._api_sample(cid) for cid in missing))
        samples.update({cid: s for cid, s in zip(missing, results, strict=True) if s is not None})
        return samples

    def _parent(self, container_id: str) -> str:
        inspected = self._inspected.get(container_id)
        return inspected.cgroup_parent if inspected else ""

    async def _api_sample(self, container_id: str) -> Sample | None:
        one_shot = self.one_shot

        def stats(api: Any) -> Any:
            if one_shot:
                return api.stats(container_id, stream=False, one_shot=True)
            return api.stats(container_id, stream=False)

        try:
            return from_api(await self.engine.call(stats))
        except docker.errors.NotFound:
            return None
        except AnswerTooLargeError as exc:
            self._too_large(self._known.get(container_id), exc)
            return None

    def _too_large(self, container: Container | None, exc: AnswerTooLargeError) -> None:
        """One container's answer over the cap: said once while it lasts, the rest goes on."""
        if container is not None and container.id not in self._oversize:
            self._oversize.add(container.id)
            self._log.warning("docker_answer_too_large", container=container.name, reason=str(exc))

    def _readings(self, container: Container, sample: Sample | None, now: float) -> list[Reading]:
        def reading(check: str, value: float, unit: str, limit: float | None = None) -> Reading:
            return _reading(container, check, value, unit, limit=limit)

        found: list[Reading] = []
        if sample is not None:
            previous = self._samples.get(container.id)
            if previous is not None:
                inspected = self._inspected.get(container.id)
                host_config = inspected.host_config if inspected else {}
                ceiling = cpu_limit_percent(host_config, sample.online_cpus)
                found.append(
                    reading("cpu_percent", cpu_percent(previous, sample), "percent", ceiling)
                )
            found.append(reading("memory_percent", memory_percent(sample), "percent", 100))
            found.append(
                reading("memory_usage_bytes", sample.memory_used, "bytes", sample.memory_limit)
            )
        found.append(self._restarts(container, now))
        found.append(self._ooms(container, now))
        found.append(self._running(container))
        found += self._state_readings(container)
        if container.running and container.health is not None:
            found.append(self._health(container, container.health))
        return found

    def _restarts(self, container: Container, now: float) -> Reading:
        count = self.activity.restarts(container.id, now)
        context = self._exits(container, count)
        return _reading(container, "restarts", count, "restarts", self._window, context=context)

    def _ooms(self, container: Container, now: float) -> Reading:
        count = self.activity.ooms(container.id, now)
        context = self._exits(container, self.activity.restarts(container.id, now))
        return _reading(container, "oom_killed", count, "kills", self._window, context=context)

    def _exits(self, container: Container, restarts: int) -> dict[str, Any]:
        """What a restart or OOM alert's context says: how the container last ended (the
        latest `die` event's exit code, else inspect's), the restarts in the window and when
        it last died."""
        deaths, exit_code = self.activity.last_deaths(container.id)
        inspected = self._inspected.get(container.id)
        if exit_code is None and inspected is not None:
            exit_code = inspected.exit_code
        oom = self.activity.ooms(container.id, self.clock()) > 0
        return {
            "exit_code": exit_code,
            "oom_killed": oom or bool(inspected and inspected.oom_killed),
            "restarts_in_window": restarts,
            "last_die_times": [rfc3339(datetime.fromtimestamp(t, UTC)) for t in deaths],
        }

    def _running(self, container: Container) -> Reading:
        """1 while it runs: what the targets it serves are held on (one page per outage),
        pushed at `die` before any verdict."""
        value = 1 if container.state in ("running", "paused") else 0
        return _reading(container, "running", value, "bool", None if value else container.state)

    def _state_readings(self, container: Container) -> list[Reading]:
        """`died` and `stopped`: 1 while a container that should run does not, by how it ended
        (lifecycle.py); both 0 otherwise, so a start resolves either at once."""
        inspected = self._inspected.get(container.id)
        state = container.state  # the freshest: the list's, or what an event just said
        policy = inspected.policy if inspected is not None else Policy("no")
        ending = self._endings.get(container.id)
        if ending is None and inspected is not None and state not in ("running", "created"):
            ending = Ending(inspected.exit_code, inspected.finished_at, inspected.oom_killed)
        expect = expectation(container.labels, policy)
        now = self.wall()
        verdict = judge(
            state,
            policy,
            expect,
            ending,
            inspected.restart_count if inspected is not None else 0,
            now,
            self.config.restart_grace,
            self.config.forget_after,
        )
        message: str | None = None
        context: dict[str, Any] | None = None
        if verdict is not Verdict.FINE and ending is not None:
            when = rfc3339(datetime.fromtimestamp(ending.at, UTC)) if ending.at else None
            intent = (
                f"label {EXPECT_LABEL}=running"
                if expect == "running"
                else f"restart policy {policy}"
            )
            message = (
                ("" if state == "exited" else f"{state}: ")
                + f"{ending.how()}, {ending.cause()}"
                + (f" at {when}" if when else "")
                + f"; {intent}"
            )
            context = {
                "state": state,
                "exit_code": ending.exit_code,
                "signal": _exit_signal(ending),
                "oom_killed": ending.oom_killed,
                "stopped_by": ending.by_api or ("itself" if ending.seen else "unknown"),
                "ended_at": when,
                "restart_policy": str(policy),
                "expect": expect,
            }
        died = 1 if verdict is Verdict.DIED else 0
        stopped = 1 if verdict is Verdict.STOPPED else 0
        return [
            _reading(
                container,
                "died",
                died,
                "bool",
                message if died else None,
                context=context if died else None,
            ),
            _reading(
                container,
                "stopped",
                stopped,
                "bool",
                message if stopped else None,
                context=context if stopped else None,
            ),
        ]

    def _health(self, container: Container, status: str) -> Reading:
        value = 0 if status == "unhealthy" else 1
        inspected = self._inspected.get(container.id)
        output = inspected.health_output if inspected is not None and value == 0 else None
        context = {"health_output": output} if output else None
        return _reading(container, "healthy", value, "bool", status, context=context)

    def _refresh_rules(self, containers: Iterable[Container]) -> None:
        rules: dict[str, Rule] = dict(self.base_rules)
        for container in containers:
            rules.update(self._overrides_of(container))
        self._rules = rules

    def _overrides_of(self, container: Container) -> dict[str, Rule]:
        if not self.config.honour_labels:
            return {}
        found = self._overrides.get(container.id)
        if found is None:
            found, problems = overrides(self.base_rules, container)
            for problem in problems:
                self._log.warning("docker_label_ignored", container=container.name, problem=problem)
            self._overrides[container.id] = found
        return found

    def _forget(self, container_id: str) -> None:
        for table in (
            self._known,
            self._inspected,
            self._reached,
            self._cgroup_files,
            self._samples,
            self._overrides,
        ):
            table.pop(container_id, None)
        self._dirty.discard(container_id)
        self._oversize.discard(container_id)
        self._endings.pop(container_id, None)
        self._kills.pop(container_id, None)
        pending = self._judging.pop(container_id, None)
        if pending is not None:
            pending.cancel()
        self.activity.forget(container_id)

    def _forget_all_but(self, present: set[str]) -> None:
        """Drop every trace of containers that are gone (a missed `destroy` included)."""
        tracked = set(self._known) | set(self._inspected) | set(self._overrides)
        gone = (tracked | set(self._endings) | set(self._kills)) - present
        for container_id in gone:
            self._forget(container_id)
        self.activity.keep_only(present | self._evented)
        self._evented = set()

    def addresses(self) -> list[ContainerAddress]:
        """The watched containers as of the last poll, how a DSN may reach each
        (`sources.Hosts`): names and aliases, addresses, published ports, those it had while
        it ran included."""
        found = []
        for container in self._known.values():
            inspected = self._inspected.get(container.id)
            aliases = inspected.aliases if inspected is not None else frozenset()
            host_config = inspected.host_config if inspected is not None else {}
            reach = self._reached.get(container.id)
            found.append(container_address(container, aliases, host_config, reach))
        return found

    # --- events ---------------------------------------------------------------------------------

    async def watch(self, publish: Publish) -> None:
        self._publish = publish
        try:
            await follow(self.events, self, publish)
        finally:
            for task in self._judging.values():
                task.cancel()
            self._judging.clear()

    def on_event(self, event: ContainerEvent) -> list[Reading]:
        """One new event of a container → the readings it changes (often none)."""
        container_id = event.container_id
        if event.action == "destroy":
            self._forget(container_id)
            return []
        container = self._known.get(container_id) or Container.from_event(
            container_id, event.attributes
        )
        if not self.selector.selected(container):
            return []
        now = self.clock()
        self._dirty.add(container_id)
        self._evented.add(container_id)
        if event.action == "kill":
            signal = event.attributes.get("signal", "")
            self._kills[container_id] = (now, int(signal) if signal.isdigit() else None)
        elif event.action == "die":
            self.activity.died(container_id, self.wall(), event.exit_code)
            self._ended(container, event)
            return [self._running(self._known[container_id])]
        elif event.action == "stop":
            ending = self._endings.get(container_id)
            if ending is not None:
                self._endings[container_id] = replace(ending, by_api="stop")
                self._judge_later(container, 0.0)
        elif event.action == "start":
            self._samples.pop(container_id, None)  # a new process: counters start over
            self._endings.pop(container_id, None)
            self._known[container_id] = replace(container, state="running")
            restarted = self.activity.started(container_id, now)
            self._ensure_rules(container)
            running = self._known[container_id]
            found = [self._running(running), *self._state_readings(running)]
            return [self._restarts(container, now), *found] if restarted else found
        elif event.action == "oom":
            self.activity.oom(container_id, now)
            self._ensure_rules(container)
            return [self._ooms(container, now)]
        elif event.health is not None:
            self._ensure_rules(container)
            return [self._health(container, event.health)]
        return []

    def _ended(self, container: Container, event: ContainerEvent) -> None:
        """A `die`: how it ended, judged SETTLE later (a `stop` event follows a `docker stop`
        within milliseconds, and a restart policy may already have started it again)."""
        kill = self._kills.pop(container.id, None)
        by_kill = kill is not None and self.clock() - kill[0] <= KILL_TO_DIE
        oom = self.activity.ooms(container.id, self.clock()) > 0
        self._endings[container.id] = Ending(
            event.exit_code,
            event.nano / 1e9 if event.nano else self.wall(),
            oom_killed=oom and event.exit_code == 137,
            by_api="kill" if by_kill else None,
            signal=kill[1] if by_kill and kill is not None else None,
            seen=True,
        )
        self._known[container.id] = replace(container, state="exited")
        self._judge_later(container, SETTLE)

    def _judge_later(self, container: Container, delay: float) -> None:
        """Publish the container's `died` / `stopped` after `delay`, from a fresh inspect."""
        if self._publish is None:
            return
        pending = self._judging.pop(container.id, None)
        if pending is not None:
            pending.cancel()
        publish = self._publish

        async def verdict() -> None:
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(self.timeout):
                    await self._inspect([container])
            except Exception as exc:  # the engine went away: judged on what the event said
                self._log.warning(
                    "docker_inspect_failed", container=container.name, reason=self.reason(exc)
                )
            known = self._known.get(container.id, container)
            inspected = self._inspected.get(container.id)
            if inspected is not None:
                known = replace(known, state=inspected.state)
            self._ensure_rules(known)
            await publish(self._state_readings(known))
            self._judging.pop(container.id, None)

        self._judging[container.id] = asyncio.get_running_loop().create_task(verdict())

    def _ensure_rules(self, container: Container) -> None:
        """A container first met in an event gets its label thresholds before it is judged."""
        found = self._overrides_of(container)
        if any(key not in self._rules for key in found):
            self._rules = {**self._rules, **found}

    async def close(self) -> None:
        self.events.close()
        self.engine.close()

    def reconfigure(self, settings: DockerSettings) -> None:
        """New rules, interval and timeout; the timeout reaches the API clients (made afresh)
        and the next event subscription."""
        self.rules, self.interval = settings.rules, settings.interval
        if settings.timeout != self.timeout:
            self.timeout = settings.timeout
            self.engine.retime(settings.timeout)
            self.events.timeout = settings.timeout


DROPPED_NAMED = 5
"""Containers a label dropped: the engine's `up` message names this many, then counts."""


def _service_seen(container: Container, found: Sequence[Reading]) -> ServiceSeen | None:
    """A compose service's container as the book of services takes it (one-offs are none)."""
    project = container.labels.get("com.docker.compose.project", "")
    service = container.labels.get("com.docker.compose.service", "")
    if not project or not service or container.labels.get(ONEOFF_LABEL, "").lower() == "true":
        return None
    if container.running:
        return ServiceSeen(project, service, container.name, Sighting.RUNNING)
    paged = any(r.check in ("died", "stopped") and r.value >= 1 for r in found)
    finished = container.state == "exited" and not paged
    return ServiceSeen(
        project, service, container.name, Sighting.FINISHED if finished else Sighting.STOPPED
    )


def _missing_line(entry: Remembered) -> str:
    last = rfc3339(datetime.fromtimestamp(entry.last_seen, UTC))
    return (
        f"compose service {entry.project}/{entry.service} has no container (last seen running "
        f"at {last}) while other services of its project run"
    )


def _exit_signal(ending: Ending) -> str | None:
    """The signal that ended it: a `kill` event's, else from an exit code above 128."""
    number = ending.signal
    if number is None and ending.exit_code is not None and ending.exit_code > 128:
        number = ending.exit_code - 128
    try:
        return signal.Signals(number).name if number is not None else None
    except ValueError:
        return None


def _dropped_line(dropped: Sequence[Container]) -> str | None:
    """`up`'s message while labels drop selected containers (what `--once` shows)."""
    if not dropped:
        return None
    names = sorted(c.name for c in dropped)
    shown = ", ".join(names[:DROPPED_NAMED])
    more = f" (and {len(names) - DROPPED_NAMED} more)" if len(names) > DROPPED_NAMED else ""
    one = len(names) == 1
    return (
        f"{len(names)} selected container{'' if one else 's'} excluded by "
        f"{'its' if one else 'their'} own label poolwatch.enable=false: {shown}{more}"
    )


def _reading(
    container: Container,
    check: str,
    value: float,
    unit: str,
    message: str | None = None,
    *,
    limit: float | None = None,
    context: Mapping[str, Any] | None = None,
) -> Reading:
    return Reading(
        SOURCE,
        container.name,
        check,
        value,
        unit,
        limit,
        container.reading_labels(),
        message,
        context,
    )


def _read_cgroups(
    reader: CgroupReader, wanted: Sequence[tuple[str, CgroupFiles | None, str]]
) -> tuple[dict[str, Sample], dict[str, CgroupFiles]]:
    """Blocking: one /proc/stat read, then each container's files (located once, then cached)."""
    system = reader.system_ns()
    samples: dict[str, Sample] = {}
    found: dict[str, CgroupFiles] = {}
    for container_id, files, parent in wanted:
        files = files or reader.locate(container_id, parent)
        if files is None:
            continue
        try:
            samples[container_id] = reader.read(files, system)
        except (OSError, ValueError, KeyError):
            continue  # stopped meanwhile, or not where expected: the API answers instead
        found[container_id] = files
    return samples, found
