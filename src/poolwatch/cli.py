"""Command line: arguments → daemon, `--once` or `--check-config`; exit codes are Nagios's."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn, TextIO

import yaml

from poolwatch import __version__
from poolwatch.config.load import ConfigError, load, source_sections
from poolwatch.config.model import Config
from poolwatch.config.secrets import redacted
from poolwatch.runtime import heartbeat

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
  poolwatch --once --format nagios --only postgres:main
                                         one Icinga/Nagios/NRPE service: plugin output
  CPU_WARNING=70% poolwatch --once       the seed script's variables still work
  poolwatch --config /etc/poolwatch.yaml run the daemon; stop it with SIGTERM or Ctrl-C
  poolwatch --check-config               validate and print the effective config, secrets hidden
  poolwatch --healthcheck                is the daemon itself alive? (Docker HEALTHCHECK)
  poolwatch silence add --match alert=PostgreSQLConnectionPoolHigh --match instance=main \\
      --for 2h --comment reindex          mute matching alerts; prints the silence's id
  poolwatch silence list | expire ID     (see poolwatch silence --help)

exit codes (--once): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad config, usage error, internal
error, or --only/--check selecting no result).
Every mode exits 3 with one line on stderr for a bad config or an internal error.
A source that cannot be reached is CRITICAL: it is down.
exit codes (--healthcheck): 0 the daemon's loops are turning, 1 they are not (or no daemon),
3 a bad config or an internal error.

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
    p.add_argument(
        "--include-muted",
        action="store_true",
        help="with --once: count results muted by a silence or maintenance window in the exit "
        "code (by default they are shown as muted and left out of it)",
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
        choices=("auto", "json", "table", "nagios", "checkmk"),
        default="auto",
        help="--once output: a table on a terminal, JSON lines otherwise (default auto); "
        "nagios: Monitoring Plugins output with perfdata; checkmk: local-check lines",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SOURCE[:INSTANCE]",
        help=f"with --once: check only this source ({', '.join(source_sections())}), or one of "
        "its instances; repeatable. Nothing else is polled",
    )
    p.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="NAME",
        help="with --once: report only this check (e.g. connections); repeatable. A source "
        "that is down is still reported",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="on an internal error, print the traceback too (also POOLWATCH_DEBUG=1)",
    )
    p.add_argument("--version", action="version", version=f"poolwatch {__version__}")
    return p


def silence_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    # before or after the subcommand: SUPPRESS keeps a later parser from resetting it
    common.add_argument(
        "--config", "-c", type=Path, metavar="PATH", default=argparse.SUPPRESS, help="YAML config"
    )
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="tracebacks"
    )
    p = _Parser(
        prog="poolwatch silence",
        parents=[common],
        description="Silences: mute alerts matching every --match until they end. Stored in "
        "state_dir; a running daemon applies a change within a second, without a reload.",
        epilog="exit codes: 0 done, 3 refused (usage, unknown id, bad config), one line on stderr",
    )
    commands = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add = commands.add_parser("add", help="add a silence; prints its id", parents=[common])
    add.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="key=value, key!=value, key=~regex or key!~regex over alert, source, instance, "
        "check, severity and the event's labels; repeatable (all must hold)",
    )
    ends = add.add_mutually_exclusive_group(required=True)
    ends.add_argument("--for", dest="for_", metavar="DURATION", help="e.g. 30m, 2h, 1d")
    ends.add_argument("--until", metavar="TIME", help="e.g. 2026-05-01T06:00+02:00")
    add.add_argument("--comment", required=True, help="why (shown in the audit trail)")
    add.add_argument("--author", help="who (default: the login name)")
    show = commands.add_parser("list", help="list active and pending silences", parents=[common])
    show.add_argument("--all", action="store_true", help="ended and expired ones too")
    show.add_argument("--format", choices=("table", "json"), default="table")
    expire = commands.add_parser("expire", help="end a silence now", parents=[common])
    expire.add_argument("id", help="the silence's id (or a unique prefix of it)")
    return p


def _is_silence(argv: list[str]) -> bool:
    """`silence` as the first word that is neither an option nor --config's value."""
    words = iter(argv)
    for word in words:
        if word in ("--config", "-c"):
            next(words, None)
        elif not word.startswith("-"):
            return word == "silence"
    return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if _is_silence(argv):
        index = argv.index("silence")
        return silence_main(argv[:index] + argv[index + 1 :])
    args = parser().parse_args(argv)
    if args.notify and not args.once:
        parser().error("--notify only goes with --once")
    if (args.only or args.check) and not args.once:
        parser().error("--only and --check only go with --once")
    if args.include_muted and not args.once:
        parser().error("--include-muted only goes with --once")
    debug = args.debug or os.environ.get("POOLWATCH_DEBUG", "") not in ("", "0")
    try:
        return _run(args)
    except KeyboardInterrupt:
        return EXIT_UNKNOWN
    except BrokenPipeError:
        # `poolwatch --once | head`: the reader left; say nothing more, and let Python's exit
        # flush go to /dev/null instead of raising a second time
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_UNKNOWN
    except Exception as exc:  # the one net: one line, exit UNKNOWN, never a bare traceback
        from poolwatch.core.reasons import one_line

        print(f"poolwatch: internal error: {one_line(exc, named=True)}", file=sys.stderr)
        if debug:
            traceback.print_exc()
        else:
            print("poolwatch: run with --debug for the traceback", file=sys.stderr)
        return EXIT_UNKNOWN


def _run(args: argparse.Namespace) -> int:
    try:
        config = load(args.config)
    except ConfigError as exc:
        # every mode, --healthcheck too: a config that cannot be read is no verdict on the
        # daemon (Docker counts any code but 0 as a failed check)
        print(f"poolwatch: {exc}", file=sys.stderr)
        return EXIT_UNKNOWN
    if args.healthcheck:
        return healthcheck(config, sys.stdout)
    if args.check_config:
        return check_config(config, sys.stdout)
    from poolwatch.once.run import once
    from poolwatch.once.select import Selection, SelectionError
    from poolwatch.runtime.daemon import StartError, daemon

    if args.once:
        try:
            selection = Selection.parse(args.only, args.check)
            selection.validate(config)
        except SelectionError as exc:
            print(f"poolwatch: {exc}", file=sys.stderr)
            return EXIT_UNKNOWN
        return asyncio.run(
            once(
                config,
                args.format,
                sys.stdout,
                notify=args.notify,
                selection=selection,
                include_muted=args.include_muted,
            )
        )
    try:
        asyncio.run(daemon(config, args.config))
    except StartError as exc:
        print(f"poolwatch: {exc}", file=sys.stderr)
        return EXIT_UNKNOWN
    return EXIT_OK


def silence_main(argv: list[str]) -> int:
    args = silence_parser().parse_args(argv)
    from poolwatch.core.model import now_utc
    from poolwatch.silences import commands
    from poolwatch.silences.store import SilenceStore

    debug = getattr(args, "debug", False) or os.environ.get("POOLWATCH_DEBUG", "") not in ("", "0")
    try:
        config = load(getattr(args, "config", None))
        store = SilenceStore(config.state_dir)
        now = now_utc()
        if args.command == "add":
            commands.add(
                store,
                now,
                matchers=args.match,
                for_=args.for_,
                until=args.until,
                comment=args.comment,
                author=args.author or _login(),
                max_duration=config.silences.max_duration,
                out=sys.stdout,
            )
        elif args.command == "expire":
            commands.expire(store, now, args.id, sys.stdout)
        else:
            commands.show(store, now, everything=args.all, output=args.format, out=sys.stdout)
    except (ConfigError, commands.UsageError) as exc:
        print(f"poolwatch silence: {exc}", file=sys.stderr)
        return EXIT_UNKNOWN
    except Exception as exc:  # the store unwritable, say: one line, never a bare traceback
        from poolwatch.core.reasons import one_line

        print(f"poolwatch silence: {one_line(exc, named=True)}", file=sys.stderr)
        if debug:
            traceback.print_exc()
        return EXIT_UNKNOWN
    return EXIT_OK


def _login() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a container's)
        return None


def check_config(config: Config, out: TextIO) -> int:
    out.write(f"# poolwatch {__version__}: configuration is valid (from {config.origin})\n")
    for note in config.notes:
        out.write(f"# note: {note}\n")
    out.write(yaml.safe_dump(redacted(config), sort_keys=False))
    return EXIT_OK


def healthcheck(config: Config, out: TextIO) -> int:
    healthy, reason = heartbeat.check(config.state_dir / heartbeat.FILE_NAME)
    out.write(f"{'healthy' if healthy else 'unhealthy'}: {reason}\n")
    return EXIT_OK if healthy else EXIT_UNHEALTHY
