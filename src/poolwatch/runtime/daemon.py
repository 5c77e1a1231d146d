"""Wiring of the daemon (until SIGTERM); `--once` is wired in `poolwatch.once.run`.

The CLI parses arguments and maps outcomes to exit codes; everything that builds and connects
parts lives here, so that the command line stays a thin shell over it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from poolwatch import __version__, logs
from poolwatch.config.load import ConfigError, load
from poolwatch.config.model import Config
from poolwatch.config.secrets import secret_values
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.secrets import Scrubber
from poolwatch.runtime import heartbeat
from poolwatch.runtime.deadman import Pulse
from poolwatch.runtime.limits import LimitWatch
from poolwatch.runtime.muting import MuteWatch
from poolwatch.runtime.plan import build_sinks, plan
from poolwatch.runtime.scheduler import Runner, owner_of
from poolwatch.silences.store import SilenceStore
from poolwatch.sinks import SinkError
from poolwatch.sources.host.name import host_name
from poolwatch.statefiles import open_mode

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StartError(Exception):
    """The daemon cannot start (a port it cannot bind, a sink it cannot open); `str()` is the
    one line for stderr."""


def scrubber_for(config: Config) -> Scrubber:
    """The scrubber of every secret the configuration declares."""
    return Scrubber(secret_values(config))


async def daemon(config: Config, path: Path | None) -> None:
    """Run until SIGTERM/SIGINT; raises `StartError` when a part cannot start."""
    try:
        lock = heartbeat.claim(config.state_dir)
    except heartbeat.StateDirInUseError as exc:
        raise StartError(str(exc)) from None
    try:
        await _daemon(config, path)
    finally:
        if lock is not None:
            os.close(lock)


async def _daemon(config: Config, path: Path | None) -> None:
    logs.configure(config.log_format, scrubber=scrubber_for(config))
    log = logs.get_logger()
    for note in config.notes:
        log.warning("config_note", note=note)
    mode = open_mode(config.state_dir)
    if mode is not None:  # made by the operator: said, not changed (see poolwatch.statefiles)
        log.warning(
            "state_dir_open",
            path=str(config.state_dir),
            mode=mode,
            fix=f"chmod 700 {config.state_dir}: its files are private, the names in it are not",
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(logs.loop_exception_handler)  # JSON lines, not tracebacks

    def on_signal(signum: int) -> None:
        # from the first signal on, SIGTERM and SIGINT mean what they mean to any process: a
        # second one ends poolwatch at once, killed by it (exit status 143 or 130), at every
        # moment of the stop and after it, with no window in which the loop is gone and the
        # signal would be swallowed (the process then exited 0)
        for each in STOP_SIGNALS:
            loop.remove_signal_handler(each)
            signal.signal(each, signal.SIG_DFL)
        log.info(
            "stopping",
            signal=signal.Signals(signum).name,
            deadline_seconds=config.shutdown_timeout,
            again="a second signal ends poolwatch at once",
        )
        stop.set()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    host = host_name(config.host.rootfs)
    runner = Runner(
        [],
        [],
        Evaluator(host),
        shutdown_timeout=config.shutdown_timeout,
        log_samples=config.log_samples,
        scrub=scrubber_for(config),
        limits=LimitWatch(config.origin_of),
    )
    # the sinks' heartbeat and watchdog read the runner, so they are built once it exists
    runner.sinks = build_sinks(config, pulse=Pulse(runner.view, host, __version__))
    muting = MuteWatch(SilenceStore(config.state_dir), config.maintenance, runner, host)
    await runner.apply(await plan(config))
    reloader = Reloader(runner, config, path, muting)
    loop.add_signal_handler(signal.SIGHUP, reloader.request)
    beat = heartbeat.Heartbeat(config.state_dir / heartbeat.FILE_NAME, runner.view)
    listener = None
    if config.listen:
        # imported here: --once and --check-config never serve /metrics
        from poolwatch.runtime.health import liveness, readiness
        from poolwatch.runtime.listener import Listener
        from poolwatch.runtime.metrics import registry_for

        listener = Listener(
            config.listen,
            registry_for(runner.view, lambda: runner.sinks, muted=runner.muted),
            lambda: liveness(runner.view, heartbeat=beat),
            lambda: readiness(runner.view),
        )
        try:
            await listener.start()
        except OSError as exc:
            await runner.shutdown()
            raise StartError(
                f"listen {config.listen}: cannot listen there ({exc.strerror or exc}); "
                "free the port or set another POOLWATCH_LISTEN"
            ) from None
    log.info(
        "started",
        version=__version__,
        config=config.origin,
        sources=[f"{c.source}:{c.instance}" for c in runner.collectors],
        sinks=[s.name for s in runner.sinks],
        listen=f"{listener.host}:{listener.port}" if listener else None,
    )
    beating = asyncio.create_task(beat.run(), name="heartbeat")
    try:
        await runner.run(stop, prepare=muting.start, wind_down=muting.stop)
    except SinkError as exc:
        raise StartError(str(exc)) from None
    finally:
        await muting.stop()  # also when the sinks failed to start
        reloader.cancel()
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
        beat.remove()
        if listener is not None:
            await listener.close()


class Reloader:
    """SIGHUP: validate the config again; apply it, or keep running on the old one and say why.

    Sources whose connection settings did not change keep their connections; rules, intervals
    and timeouts apply from the next poll. Sinks, the listener and logging are wired once at
    start: changing them needs a restart, and a reload says so.
    """

    RESTART_KEYS = ("webhooks", "alertmanager", "listen", "log_format", "state_dir")

    def __init__(
        self, runner: Runner, config: Config, path: Path | None, muting: MuteWatch | None = None
    ) -> None:
        self._runner, self._config, self._path = runner, config, path
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
            self._runner.scrub = scrub
            self._runner.shutdown_timeout = config.shutdown_timeout
            self._runner.log_samples = config.log_samples
            self._runner.limits.origin = config.origin_of
            running = [owner_of(c) for c in self._runner.collectors]
            outcome = await self._runner.apply(await plan(config, running))
            if self._muting is not None:
                self._muting.windows = list(config.maintenance)
            self._config = config
            self._log.info("reloaded", collectors=outcome)
