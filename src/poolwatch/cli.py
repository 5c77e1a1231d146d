"""Command line: arguments → daemon, `--once` or `--check-config`; exit codes are Nagios's."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn, TextIO

import yaml

from poolwatch import __version__
from poolwatch.config import load as configuration
from poolwatch.core.evaluate import Evaluator
from poolwatch.runtime import heartbeat, logs
from poolwatch.runtime.notify import firing_events
from poolwatch.runtime.once import check_once, worst, write_json, write_table
from poolwatch.runtime.plan import build_collectors, build_sinks, plan
from poolwatch.runtime.scheduler import Runner, owner_of
from poolwatch.sinks import SinkError
from poolwatch.sources.host.collector import host_name

EXIT_OK = 0
EXIT_WARNING = 1
EXIT_CRITICAL = 2
EXIT_UNKNOWN = 3
"""Config invalid or an internal error: the check itself could not be made."""
EXIT_UNHEALTHY = 1
"""--healthcheck: the daemon is not alive (Docker's HEALTHCHECK convention)."""

EPILOG = """\
examples:
  poolwatch --once                       check this host (and whatever is configured) once
  poolwatch --once --format json         the same as JSON lines, for scripts
  CPU_WARNING=70% poolwatch --once       the seed script's variables still work
  poolwatch --config /etc/poolwatch.yaml run the daemon; stop it with SIGTERM or Ctrl-C
  poolwatch --check-config               validate and print the effective config, secrets hidden
  poolwatch --healthcheck                is the daemon itself alive? (Docker HEALTHCHECK)

exit codes (--once): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad config, internal error).
A source that cannot be reached is CRITICAL: it is down.
exit codes (--healthcheck): 0 the daemon's loops are turning, 1 they are not (or no daemon).

configuration: built-in defaults < YAML file (--config or POOLWATCH_CONFIG) < environment.
See config/poolwatch.yaml for every key, and README.md for the environment variables.
"""


class _Parser(argparse.ArgumentParser):
    """A usage error is UNKNOWN (3), as for Nagios, not argparse's 2 (which reads CRITICAL)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNKNOWN, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="poolwatch",
        description="Watch PostgreSQL and Redis connection pools, host resources and Docker "
        "containers; emit JSON events on thresholds.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--once",
        action="store_true",
        help="run every enabled check once, print results, exit with the worst",
    )
    mode.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration, print it with secrets redacted, exit",
    )
    mode.add_argument(
        "--healthcheck",
        action="store_true",
        help="liveness of the running daemon (its heartbeat in the state dir), not of the "
        "watched systems: exit 0 alive, 1 not",
    )
    p.add_argument(
        "--config",
        "-c",
        type=Path,
        metavar="PATH",
        help="YAML config file (default: $POOLWATCH_CONFIG, else built-in defaults)",
    )
    p.add_argument(
        "--notify",
        action="store_true",
        help="with --once: also send the non-OK results as firing events to the configured "
        "webhooks and Alertmanagers",
    )
    p.add_argument(
        "--format",
        choices=("auto", "json", "table"),
        default="auto",
        help="--once output: a table on a terminal, JSON lines otherwise (default auto)",
    )
    p.add_argument("--version", action="version", version=f"poolwatch {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.notify and not args.once:
        parser().error("--notify only goes with --once")
    try:
        config = configuration.load(args.config)
    except configuration.ConfigError as exc:
        print(f"poolwatch: {exc}", file=sys.stderr)
        # Docker reads any exit code but 0 and 1 as "reserved": unhealthy is 1
        return EXIT_UNHEALTHY if args.healthcheck else EXIT_UNKNOWN
    if args.healthcheck:
        return healthcheck(config, sys.stdout)
    if args.check_config:
        return check_config(config, args.config, sys.stdout)
    try:
        if args.once:
            return asyncio.run(once(config, args.format, sys.stdout, notify=args.notify))
        return asyncio.run(daemon(config, args.config))
    except KeyboardInterrupt:
        return EXIT_UNKNOWN
    except BrokenPipeError:
        # `poolwatch --once | head`: the reader left; say nothing more, and let Python's exit
        # flush go to /dev/null instead of raising a second time
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_UNKNOWN


def check_config(config: configuration.Config, path: Path | None, out: TextIO) -> int:
    source = path or os.environ.get("POOLWATCH_CONFIG") or "built-in defaults"
    out.write(f"# poolwatch {__version__}: configuration is valid ({source})\n")
    out.write(yaml.safe_dump(config.redacted(), sort_keys=False))
    return EXIT_OK


def healthcheck(config: configuration.Config, out: TextIO) -> int:
    healthy, reason = heartbeat.check(config.state_dir / heartbeat.FILE_NAME)
    out.write(f"{'healthy' if healthy else 'unhealthy'}: {reason}\n")
    return EXIT_OK if healthy else EXIT_UNHEALTHY


async def once(
    config: configuration.Config, output: str, out: TextIO, *, notify: bool = False
) -> int:
    # diagnostics go to stderr so stdout holds only results
    logs.configure("json" if output == "json" else config.log_format, stream=sys.stderr)
    host = host_name(config.host.rootfs)
    runner = Runner(
        await build_collectors(config),
        build_sinks(config, stdout=False) if notify else [],
        Evaluator(host),
        shutdown_timeout=config.shutdown_timeout,
    )
    try:
        results = await check_once(runner)
        if output == "table" or (output == "auto" and out.isatty()):
            write_table(results, out, colour=out.isatty())
        else:
            write_json(results, out)
        out.flush()
        if notify:
            try:
                await runner.start_sinks()
            except SinkError as exc:
                runner.sinks = []  # start_sinks closed the ones it had opened
                print(f"poolwatch: --notify: {exc}", file=sys.stderr)
            else:
                await runner.deliver(firing_events(results, host))
    finally:
        # durable sinks keep what they could not deliver within shutdown_timeout
        await runner.shutdown()
    return int(worst(results))


async def daemon(config: configuration.Config, path: Path | None) -> int:
    logs.configure(config.log_format)
    log = logs.get_logger()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.error("forced_exit", signal=signal.Signals(signum).name)
            os._exit(EXIT_UNKNOWN)
        log.info(
            "stopping", signal=signal.Signals(signum).name, deadline_seconds=config.shutdown_timeout
        )
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    runner = Runner(
        [],
        build_sinks(config),
        Evaluator(host_name(config.host.rootfs)),
        shutdown_timeout=config.shutdown_timeout,
        log_samples=config.log_samples,
    )
    await runner.apply(await plan(config))
    reloader = Reloader(runner, config, path)
    loop.add_signal_handler(signal.SIGHUP, reloader.request)
    listener = None
    if config.listen:
        # imported here: --once and --check-config never serve /metrics
        from poolwatch.runtime.health import liveness, readiness
        from poolwatch.runtime.listener import Listener
        from poolwatch.runtime.metrics import registry_for

        listener = Listener(
            config.listen,
            registry_for(runner.view, lambda: runner.sinks),
            lambda: liveness(runner.view),
            lambda: readiness(runner.view),
        )
        try:
            await listener.start()
        except OSError as exc:
            log.error("listen_failed", address=config.listen, reason=str(exc))
            return EXIT_UNKNOWN
    log.info(
        "started",
        version=__version__,
        config=str(path or os.environ.get("POOLWATCH_CONFIG") or "built-in defaults"),
        sources=[f"{c.source}:{c.instance}" for c in runner.collectors],
        sinks=[s.name for s in runner.sinks],
        listen=f"{listener.host}:{listener.port}" if listener else None,
    )
    beat = heartbeat.Heartbeat(config.state_dir / heartbeat.FILE_NAME, runner.view)
    beating = asyncio.create_task(beat.run(), name="heartbeat")
    try:
        await runner.run(stop)
    except SinkError as exc:
        log.error("start_failed", reason=str(exc))
        return EXIT_UNKNOWN
    finally:
        reloader.cancel()
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
        beat.remove()
        if listener is not None:
            await listener.close()
    return EXIT_OK


class Reloader:
    """SIGHUP: validate the config again; apply it, or keep running on the old one and say why.

    Sources whose connection settings did not change keep their connections; rules, intervals
    and timeouts apply from the next poll. Sinks, the listener and logging are wired once at
    start: changing them needs a restart, and a reload says so.
    """

    RESTART_KEYS = ("webhooks", "alertmanager", "listen", "log_format", "state_dir")

    def __init__(self, runner: Runner, config: configuration.Config, path: Path | None) -> None:
        self._runner, self._config, self._path = runner, config, path
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
                config = configuration.load(self._path)
            except configuration.ConfigError as exc:
                self._log.error("reload_failed", reason=str(exc), running="previous configuration")
                return
            old = self._config.model_dump()
            new = config.model_dump()
            pending = [key for key in self.RESTART_KEYS if old[key] != new[key]]
            if pending:
                self._log.warning("reload_needs_restart", keys=pending)
            self._runner.shutdown_timeout = config.shutdown_timeout
            self._runner.log_samples = config.log_samples
            running = [owner_of(c) for c in self._runner.collectors]
            outcome = await self._runner.apply(await plan(config, running))
            self._config = config
            self._log.info("reloaded", collectors=outcome)
