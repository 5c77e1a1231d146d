"""Wiring of the two ways poolwatch runs: the daemon (until SIGTERM) and `--once`; a reload
is `poolwatch.runtime.reload`.

The CLI parses arguments and maps outcomes to exit codes; everything that builds and connects
parts lives here, so that the command line stays a thin shell over it.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
from pathlib import Path
from typing import TextIO

from poolwatch import __version__
from poolwatch.config.model import Config
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import now_utc
from poolwatch.runtime import heartbeat, logs
from poolwatch.runtime.deadman import Pulse
from poolwatch.runtime.formats.checkmk import write_checkmk
from poolwatch.runtime.formats.nagios import status_of, write_nagios
from poolwatch.runtime.muting import MuteWatch, current_mutes, stored_silences
from poolwatch.runtime.notify import firing_events
from poolwatch.runtime.once import check_once, mark_muted, worst, write_json, write_table
from poolwatch.runtime.plan import build_sinks, plan
from poolwatch.runtime.reload import Reloader, scrubber_for, settings_for
from poolwatch.runtime.runner import Runner
from poolwatch.runtime.select import Selection
from poolwatch.silences.store import SilenceStore
from poolwatch.sinks import SinkError
from poolwatch.sources.host.collector import host_name
from poolwatch.statefiles import open_mode

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

PLUGIN_FORMATS = ("nagios", "checkmk")
"""`--once` formats read by a monitoring system, which takes stderr for output too."""


class StartError(Exception):
    """The daemon cannot start (a port it cannot bind, a sink it cannot open); `str()` is the
    one line for stderr."""


async def once(
    config: Config,
    output: str,
    out: TextIO,
    *,
    notify: bool = False,
    selection: Selection | None = None,
    include_muted: bool = False,
) -> int:
    """`--once`: every selected check once, printed; the worst severity as the exit code
    (UNKNOWN when a selection matched no result: a check of nothing is not OK). A result a
    silence or an open maintenance window covers is shown as muted and, unless
    `include_muted`, counts as OK for the exit code (and is not sent with `notify`)."""
    selection = selection or Selection()
    scrub = scrubber_for(config)
    # diagnostics go to stderr so stdout holds only results; a monitoring system reads a
    # plugin's stderr as output too (Icinga 2 merges it), so plugin formats log nothing: what
    # went wrong is in the results (a down source's reason is in its `up` message)
    plugin = output in PLUGIN_FORMATS
    diagnostics = io.StringIO() if plugin else sys.stderr
    logs.configure("json" if output == "json" or plugin else config.log_format, diagnostics, scrub)
    for note in config.notes:
        logs.get_logger().warning("config_note", note=note)
    host = host_name(config.host.rootfs)
    runner = Runner(
        [item.build() for item in await selection.plan(config)],
        build_sinks(config, stdout=False) if notify else [],
        Evaluator(host),
        settings=settings_for(config, scrub),
    )
    try:
        checked = await check_once(runner.pipeline, runner.collectors, config.origin_of)
        results = [r for r in checked if selection.keeps(r)]
        mutes = current_mutes(stored_silences(config.state_dir), config.maintenance, now_utc())
        results = mark_muted(results, mutes, now_utc())
        counted = results if include_muted else [r.unmuted() for r in results]
        if output == "table" or (output == "auto" and out.isatty()):
            write_table(results, out, colour=out.isatty())
        elif output == "nagios":  # a plugin's text must agree with its exit code
            write_nagios(counted, out)
        elif output == "checkmk":
            write_checkmk(counted, out)
        else:
            write_json(results, out)
        out.flush()
        if notify:
            try:
                await runner.sinks.start()  # on failure, closes those it had opened
            except SinkError as exc:
                print(f"poolwatch: --notify: {exc}", file=sys.stderr)
            else:
                await runner.pipeline.deliver(firing_events(counted, host))
    finally:
        # durable sinks keep what they could not deliver within shutdown_timeout
        await runner.shutdown()
    return status_of(counted) if selection else int(worst(counted))


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
