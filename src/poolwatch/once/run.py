"""Wiring of `--once`: plan the selected checks, poll each once, print, maybe notify.

It builds the runtime's parts (a `Runner` with no loops of its own) for one pass; the daemon's
wiring is `poolwatch.runtime.daemon`.
"""

from __future__ import annotations

import io
import sys
from typing import TextIO

from poolwatch import logs
from poolwatch.config.model import Config
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import now_utc
from poolwatch.once.notify import firing_events
from poolwatch.once.results import (
    check_once,
    mark_caused,
    mark_muted,
    worst,
    write_json,
    write_table,
)
from poolwatch.once.select import Selection
from poolwatch.runtime.graph import graph, local_addresses
from poolwatch.runtime.muting import current_mutes, stored_silences
from poolwatch.runtime.plan import build_sinks
from poolwatch.runtime.reload import scrubber_for, settings_for
from poolwatch.runtime.runner import Runner
from poolwatch.sinks import SinkError
from poolwatch.sources.host.name import host_name

PLUGIN_FORMATS = ("nagios", "checkmk")
"""`--once` formats read by a monitoring system, which takes stderr for output too."""


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
        parents = graph(runner.collectors, local_addresses())
        results = mark_caused(results, parents, now_utc())
        counted = results if include_muted else [r.unmuted() for r in results]
        # the plugin formats are imported only when asked for: a HEALTHCHECK's start-up pays
        # for the format it prints, not for every format
        if output == "table" or (output == "auto" and out.isatty()):
            write_table(results, out, colour=out.isatty())
        elif output == "nagios":  # a plugin's text must agree with its exit code
            from poolwatch.once.formats.nagios import write_nagios

            write_nagios(counted, out)
        elif output == "checkmk":
            from poolwatch.once.formats.checkmk import write_checkmk

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
    if selection:
        from poolwatch.once.formats.nagios import status_of

        return status_of(counted)
    return int(worst(counted))
