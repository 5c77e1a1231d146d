"""Wiring of the daemon (until SIGTERM); `--once` is wired in `poolwatch.once.run`, a reload
in `poolwatch.runtime.reload`.

The CLI parses arguments and maps outcomes to exit codes; everything that builds and connects
parts lives here, so that the command line stays a thin shell over it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from poolwatch import __version__, logs
from poolwatch.config.model import Config
from poolwatch.core.evaluate import Evaluator
from poolwatch.runtime import heartbeat
from poolwatch.runtime.deadman import Pulse
from poolwatch.runtime.muting import MuteWatch
from poolwatch.runtime.plan import build_sinks, plan
from poolwatch.runtime.reload import Reloader, scrubber_for, settings_for
from poolwatch.runtime.runner import Runner
from poolwatch.silences.store import SilenceStore
from poolwatch.sinks import SinkError
from poolwatch.sources.host.name import host_name
from poolwatch.statefiles import open_mode

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StartError(Exception):
    """The daemon cannot start (a port it cannot bind, a sink it cannot open); `str()` is the
    one line for stderr."""


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
        # the sinks' heartbeat and watchdog read the runtime's view: built from it
        lambda view: build_sinks(config, pulse=Pulse(view, host, __version__)),
        Evaluator(host),
        settings=settings_for(config),
    )
    muting = MuteWatch(SilenceStore(config.state_dir), config.maintenance, runner.pipeline, host)
    await runner.reconciler.apply(await plan(config))
    reloader = Reloader(runner.reconciler, runner.configure, config, path, muting)
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
            registry_for(runner.view, lambda: list(runner.sinks), muted=runner.pipeline.muted),
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
