"""SIGHUP: validate the config again; apply it, or keep running on the old one and say why.

Sources whose connection settings did not change keep their connections; rules, intervals
and timeouts apply from the next poll. Sinks, the listener and logging are wired once at
start: changing them needs a restart, and a reload says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from poolwatch import logs
from poolwatch.config.load import ConfigError, load
from poolwatch.config.model import Config
from poolwatch.config.secrets import secret_values
from poolwatch.core.secrets import Scrubber
from poolwatch.runtime.plan import plan
from poolwatch.runtime.settings import RuntimeSettings
from poolwatch.silences.settings import MaintenanceWindow
from poolwatch.sources import Collector, Planned


def scrubber_for(config: Config) -> Scrubber:
    """The scrubber of every secret the configuration declares."""
    return Scrubber(secret_values(config))


def settings_for(config: Config, scrub: Scrubber | None = None) -> RuntimeSettings:
    """The runtime's settings a configuration gives."""
    return RuntimeSettings(
        shutdown_timeout=config.shutdown_timeout,
        log_samples=config.log_samples,
        scrub=scrub or scrubber_for(config),
        origin=config.origin_of,
    )


class Reconciles(Protocol):
    """What a reload changes in the running collectors (the `Reconciler`)."""

    @property
    def collectors(self) -> Sequence[Collector]: ...

    async def apply(self, plan: Sequence[Planned]) -> dict[str, str]: ...


class Windows(Protocol):
    """What a reload changes in muting (the `MuteWatch`)."""

    def use_windows(self, windows: Sequence[MaintenanceWindow]) -> None: ...


class Reloader:
    """Reloads on request, one at a time."""

    RESTART_KEYS = ("webhooks", "alertmanager", "listen", "log_format", "state_dir")

    def __init__(
        self,
        reconciler: Reconciles,
        configure: Callable[[RuntimeSettings], None],
        config: Config,
        path: Path | None,
        muting: Windows | None = None,
    ) -> None:
        self._reconciler, self._configure = reconciler, configure
        self._config, self._path = config, path
        self._muting = muting
        self._log = logs.get_logger()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def request(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def reload(self) -> None:
        async with self._lock:
            try:
                config = load(self._path)
            except ConfigError as exc:
                self._log.error("reload_failed", reason=str(exc), running="previous configuration")
                return
            old = self._config.model_dump()
            new = config.model_dump()
            pending = [key for key in self.RESTART_KEYS if old[key] != new[key]]
            if pending:
                self._log.warning("reload_needs_restart", keys=pending)
            for note in config.notes:
                self._log.warning("config_note", note=note)
            scrub = scrubber_for(config)  # the new config's secrets, from now on
            logs.configure(self._config.log_format, scrubber=scrub)
            self._configure(settings_for(config, scrub))
            running = [f"{c.source}:{c.instance}" for c in self._reconciler.collectors]
            outcome = await self._reconciler.apply(await plan(config, running))
            if self._muting is not None:
                self._muting.use_windows(config.maintenance)
            self._config = config
            self._log.info("reloaded", collectors=outcome)
