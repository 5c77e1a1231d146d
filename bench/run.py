"""The benchmark run: sets up the stack, takes every measurement, prints the Markdown table.

    .venv/bin/python -m bench                 # the full run (about 30 minutes)
    .venv/bin/python -m bench --quick         # a smoke run: fewer repetitions, smaller numbers
    .venv/bin/python -m bench --only once     # some measurements: once, latency, cpu, soak, churn,
                                              # watched, goals
    .venv/bin/python -m bench --only goals    # issue 25's three cost figures against their goals

Run it as root from the repository root on a machine provisioned by tests/provision/ (PostgreSQL
15, Redis, a Docker engine with poolwatch-test/busybox). Exit 0 when every measurement was
taken, 1 when one could not be (the table says which and why), 2 on a usage error. Nothing here
asserts a time: the verdict column compares with issue 9's targets.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bench import churn, goals, measure, watched
from bench.report import Report, verdict
from bench.stack import BenchError, Stack, docker
from bench.stats import MIB, median, percentile, spread

MEASUREMENTS = ("once", "latency", "cpu", "soak", "churn", "watched", "goals")


@dataclass(frozen=True)
class Plan:
    containers: tuple[int, ...]
    once_reps: int
    shell_reps: int
    windows: int
    window: float
    idle: float
    wall_seconds: float
    trials: int
    intervals: tuple[float, ...]
    soak_minutes: float
    churn: ChurnPlan
    watched: WatchedPlan
    goals: GoalsPlan


@dataclass(frozen=True)
class GoalsPlan:
    polled: int
    """Containers for the CPU and memory goals."""
    once: int
    """Containers for the cold `--once` goal."""
    daemons: int
    """Fresh daemons for CPU and memory, each measured over `windows` windows."""
    windows: int
    window: float
    reps: int
    """Shell poller polls at each count, and `--once` runs (after a warm-up)."""


@dataclass(frozen=True)
class WatchedPlan:
    tables: int
    seconds: float
    """The window each `size_interval` is measured over."""


@dataclass(frozen=True)
class ChurnPlan:
    minutes: float
    """Measured, after the warm-up."""
    every: float
    """Seconds between container replacements."""
    sample_every: float
    warmup: float
    toggle_every: float
    """Seconds between the alerts' load going on and off."""


FULL = Plan(
    (0, 50, 200), 5, 5, 3, 20.0, 10.0, 12.0, 20, (1.0, 5.0), 10.0,
    ChurnPlan(10.0, 3.0, 30.0, 60.0, 10.0), WatchedPlan(20_000, 60.0),
    GoalsPlan(50, 200, 3, 6, 20.0, 5),
)  # fmt: skip
QUICK = Plan(
    (0, 10), 3, 2, 2, 5.0, 4.0, 4.0, 3, (1.0,), 1.0,
    ChurnPlan(0.2, 2.0, 4.0, 0.0, 4.0), WatchedPlan(500, 3.0),
    GoalsPlan(5, 10, 1, 2, 5.0, 2),
)  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: fewer, shorter measurements")
    p.add_argument(
        "--only",
        default=",".join(MEASUREMENTS),
        help=f"comma-separated subset of {','.join(MEASUREMENTS)} (default: all)",
    )
    p.add_argument("--containers", help="container counts for cpu, e.g. 0,50,200")
    p.add_argument("--trials", type=int, help="latency trials per interval")
    p.add_argument("--soak-minutes", type=float, help="minutes of the memory soak")
    p.add_argument(
        "--minutes", type=float, help="minutes of the churn soak, after its warm-up (default 10)"
    )
    p.add_argument("--output", type=Path, help="also write the table and machine notes here")
    args = p.parse_args(argv)
    unknown = set(args.only.split(",")) - set(MEASUREMENTS)
    if unknown:
        p.error(f"--only: unknown {sorted(unknown)}; choose from {','.join(MEASUREMENTS)}")
    return args


def plan_for(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    changes: dict[str, object] = {}
    if args.containers:
        changes["containers"] = tuple(int(n) for n in args.containers.split(","))
    if args.trials:
        changes["trials"] = args.trials
    if args.soak_minutes:
        changes["soak_minutes"] = args.soak_minutes
    if args.minutes:
        changes["churn"] = ChurnPlan(**{**plan.churn.__dict__, "minutes": args.minutes})
    return Plan(**{**plan.__dict__, **changes})


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except OSError:
        return "missing"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"


def machine() -> list[str]:
    mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    return [
        f"CPUs: {os.cpu_count()} ({cpu}); memory {int(mem) / 1024 / 1024:.1f} GiB",
        f"kernel {platform.release()}; Python {platform.python_version()}",
        f"{_version(['/usr/lib/postgresql/15/bin/postgres', '--version'])}; "
        f"{_version(['redis-server', '--version'])}; "
        f"Docker engine {_version(['docker', 'version', '--format', '{{.Server.Version}}'])}",
    ]


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def _split(cost: measure.CycleCost) -> str:
    """Where a poll's CPU went: the poller, then each server (medians, net of idle)."""
    parts = [f"itself {median(cost.process) * 1000:.1f}"] + [
        f"{name} {median(values) * 1000:.1f}" for name, values in cost.servers.items()
    ]
    return " (" + ", ".join(parts) + " ms)"


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in load_average())


class Run:
    def __init__(self, plan: Plan, only: set[str]) -> None:
        self.plan = plan
        self.only = only
        self.report = Report()
        self.stack = Stack()
        self.loads: list[tuple[str, tuple[float, float, float]]] = []

    def step(self, name: str, action: Callable[[], None]) -> None:
        """One measurement: its failure is recorded and reported, and the run goes on."""
        started = time.monotonic()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        self.loads.append((f"before {name}", load_average()))
        try:
            action()
        except (BenchError, OSError, subprocess.SubprocessError) as exc:
            print(f"bench: {name} FAILED: {exc}", file=sys.stderr, flush=True)
            self.report.fail(name, str(exc).splitlines()[0])
        except Exception as exc:  # a pytest.fail from a fixture, an asyncpg error, ...
            print(f"bench: {name} FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            self.report.fail(name, f"{type(exc).__name__}: {str(exc).splitlines()[:1]}")
        print(f"bench: {name} done in {time.monotonic() - started:.0f}s", file=sys.stderr)

    def go(self) -> int:
        docker_needed = bool(self.only & {"cpu", "soak", "churn", "goals"})
        docker_needed = docker_needed or self.stack.docker_source
        self.stack.start(docker_needed=docker_needed)
        probe = measure.PgProbe(self.stack)
        try:
            if "once" in self.only:
                self.step("once", self.once)
            if "latency" in self.only:
                for interval in self.plan.intervals:
                    self.step(f"latency {interval:g}s", lambda i=interval: self.latency(probe, i))
            if "cpu" in self.only:
                for count in self.plan.containers:
                    self.step(f"cpu {count} containers", lambda n=count: self.cpu(probe, n))
            if "soak" in self.only:
                self.step("soak", lambda: self.soak(probe))
            if "churn" in self.only:
                self.step("churn", lambda: self.churn(probe))
            if "goals" in self.only:
                self.step("goals", lambda: self.goals(probe))
            if "watched" in self.only:  # last: its tables make every size read dearer
                self.step("watched", lambda: self.watched(probe))
        finally:
            probe.close()
        self.notes()
        return 1 if self.report.failures else 0

    # --- measurements -------------------------------------------------------------------------

    def once(self) -> None:
        host = measure.once_cold_start(self.stack, "host", self.plan.once_reps)
        self.report.add(
            "`--once` cold start, wall",
            "host only",
            spread(host, unit=" s"),
            "—",
            "≤ 0.8 s",
            verdict(median(host) <= 0.8),
        )
        every = measure.once_cold_start(self.stack, "all", self.plan.once_reps)
        self.report.add(
            "`--once` cold start, wall",
            f"all sources ({self.sources_label()})",
            spread(every, unit=" s"),
        )

    def latency(self, probe: measure.PgProbe, interval: float) -> None:
        self.stack.containers.scale_to(0)
        values = measure.detection_latency(self.stack, probe, interval, self.plan.trials)
        p95 = percentile(values, 95)
        self.report.add(
            "detection latency (PostgreSQL warning → webhook)",
            f"interval {interval:g} s, {len(values)} trials",
            f"p50 {percentile(values, 50):.3f} s, p95 {p95:.3f} s, max {max(values):.3f} s",
            "—",
            f"p95 ≤ {interval + 0.25:g} s",
            verdict(p95 <= interval + 0.25),
        )

    def cpu(self, probe: measure.PgProbe, count: int) -> None:
        self.stack.containers.scale_to(count)
        running = self.stack.containers.running_total()
        rates = measure.idle_rates(self.stack, self.plan.idle)
        shell = measure.shell_cycles(self.stack, probe, rates, self.plan.shell_reps, count)
        pw = measure.poolwatch_cycles(
            self.stack, probe, rates, self.plan.windows, self.plan.window, self.plan.wall_seconds
        )
        after = self.stack.containers.running_total()
        where = f"{count} containers" + (
            f" ({running}-{after} running on the engine)"
            if (running, after) != (count, count)
            else ""
        )
        ms = "{:.1f}"
        self.report.add(
            "CPU per cycle: the poller itself",
            where,
            spread([v * 1000 for v in pw.process], ms, " ms"),
            spread([v * 1000 for v in shell.process], ms, " ms"),
        )
        for name in pw.servers:
            self.report.add(
                f"CPU per cycle: {name} (net of idle)",
                where,
                spread([v * 1000 for v in pw.servers[name]], ms, " ms"),
                spread([v * 1000 for v in shell.servers[name]], ms, " ms"),
            )
        pw_total, shell_total = median(pw.total()), median(shell.total())
        ratio = pw_total / shell_total if shell_total > 0 else float("inf")
        self.report.add(
            "CPU per cycle: total",
            where,
            spread([v * 1000 for v in pw.total()], ms, " ms"),
            spread([v * 1000 for v in shell.total()], ms, " ms"),
            "≤ 1/10 of the shell poller's at 50 containers" if count == 50 else "",
            f"{verdict(ratio <= 0.1) if count == 50 else 'ratio'} ({ratio:.3f})",
        )
        self.report.add(
            "wall time per cycle",
            where,
            spread(pw.wall, "{:.3f}", " s"),
            spread(shell.wall, "{:.3f}", " s"),
            "≤ 1 s at 200 containers" if count == 200 else "",
            verdict(max(pw.wall) <= 1.0) if count == 200 else "",
        )
        self.report.add(
            "new PostgreSQL sessions per cycle",
            where,
            spread(pw.sessions, "{:.2f}"),
            spread(shell.sessions, "{:.2f}"),
        )

    def soak(self, probe: measure.PgProbe) -> None:
        count = max(self.plan.containers)
        self.stack.containers.scale_to(count)
        result = measure.soak(self.stack, probe, self.plan.soak_minutes)
        growth = (result.rss_end - result.rss_start) / MIB
        full = self.plan.soak_minutes >= 10
        where = f"interval 1 s, {count} containers, {self.plan.soak_minutes:g} min"
        self.report.add(
            "resident memory",
            where,
            f"start {result.rss_start / MIB:.1f} MiB, end {result.rss_end / MIB:.1f} MiB, "
            f"max {result.rss_max / MIB:.1f} MiB, growth {growth:+.1f} MiB",
            "—",
            "≤ 60 MiB at 200 containers; growth < 2 MiB over 10 min",
            verdict(result.rss_max / MIB <= 60 and growth < 2)
            if full and count >= 200
            else "n/a (shorter soak or fewer containers)",
        )
        minutes = self.plan.soak_minutes
        new_pids = len(result.pids) - 1
        self.report.add(
            "PostgreSQL connections held by poolwatch",
            where + f", {len(result.held)} samples",
            f"min {min(result.held)}, max {max(result.held)}",
            "—",
            "exactly 1",
            verdict(min(result.held) == max(result.held) == 1),
        )
        self.report.add(
            "new PostgreSQL backends per minute (steady state)",
            where,
            f"{max(new_pids, result.sessions) / minutes:.2f} "
            f"({result.sessions} sessions, {len(result.pids)} distinct poolwatch pids)",
            "—",
            "0",
            verdict(new_pids == 0 and result.sessions == 0),
        )
        curve = ", ".join(f"{t / 60:.0f}m {r / MIB:.1f}" for t, r in result.samples[::6])
        self.report.note(f"RSS samples (minute, MiB), every 60 s: {curve}")

    def churn(self, probe: measure.PgProbe) -> None:
        if not self.stack.docker_source:
            raise BenchError("the churn soak needs poolwatch's Docker source")
        self.stack.containers.scale_to(0)
        plan = self.plan.churn
        result = churn.churn_soak(
            self.stack,
            probe,
            plan.minutes,
            every=plan.every,
            sample_every=plan.sample_every,
            warmup=plan.warmup,
            toggle_every=plan.toggle_every,
        )
        first, last = result.fitted()[0], result.fitted()[-1]
        where = (
            f"interval 1 s, every source; a container replaced every {plan.every:g} s "
            f"({result.replaced} replaced), PostgreSQL and Redis alerts toggled every "
            f"{plan.toggle_every:g} s; {plan.minutes:g} min after {plan.warmup:g} s of warm-up"
        )
        for label, name in (
            ("open descriptors", "fds"),
            ("of which sockets", "sockets"),
            ("threads", "threads"),
        ):
            values = [getattr(s, name) for s in result.fitted()]
            self.report.add(
                f"churn soak: {label}",
                where,
                f"start {values[0]}, end {values[-1]}, min {min(values)}, max {max(values)}; "
                f"fit {result.per_hour(name):+.1f}/h",
                "—",
                "no growth",
                verdict(churn.bounded(values)),
            )
        rss_hour = result.per_hour("rss") / MIB
        rss = [s.rss / MIB for s in result.fitted()]
        self.report.add(
            "churn soak: resident memory",
            where,
            f"start {first.rss / MIB:.1f} MiB, end {last.rss / MIB:.1f} MiB, "
            f"max {max(rss):.1f} MiB; fit {rss_hour:+.2f} MiB/h",
            "—",
            "growth < 2 MiB/h",
            verdict(rss_hour < 2),
        )
        counts = "; ".join(
            f"{alert} {c['firing']} firing, {c['resolved']} resolved"
            for alert, c in result.alerts.items()
        )
        self.report.add(
            "churn soak: alerts",
            f"pushed over the warning {result.toggles} times",
            counts,
            "—",
            "each toggle fires and resolves",
            verdict(
                all(
                    c["firing"] >= result.toggles - 1 and c["resolved"] >= result.toggles - 1
                    for c in result.alerts.values()
                )
            ),
        )
        rows = ", ".join(
            f"{s.at / 60:.1f}m {s.fds}/{s.sockets}/{s.threads}/{s.rss / MIB:.1f}"
            for s in result.samples
        )
        self.report.note(
            f"churn soak samples (minute fds/sockets/threads/RSS MiB, every "
            f"{plan.sample_every:g} s, the warm-up included): {rows}"
        )
        if result.churn_errors:
            self.report.note(
                f"churn soak: {len(result.churn_errors)} docker commands failed, the first: "
                f"{result.churn_errors[0]}"
            )

    def watched(self, probe: measure.PgProbe) -> None:
        plan = self.plan.watched
        watched.create_tables(self.stack, probe, plan.tables)
        try:
            files = watched.files(self.stack)
            costs = [
                watched.backend_cost(self.stack, probe, size_interval, plan.seconds)
                for size_interval in ("1s", "5m")
            ]
        finally:
            watched.drop_tables(probe)
        where = f"interval 1 s, {plan.tables:,} tables ({files:,} files), {plan.seconds:g} s"
        for cost in costs:
            before = cost.size_interval == "1s"
            self.report.add(
                "poolwatch's own PostgreSQL backend: CPU",
                f"{where}, size_interval {cost.size_interval}"
                + (" (every poll, as before)" if before else " (the default)"),
                f"{cost.share * 100:.2f} % of a core, {cost.per_poll * 1000:.1f} ms per poll "
                f"({cost.polls:g} polls)",
                "—",
                "" if before else "< 2 % of a core",
                "" if before else verdict(cost.share < 0.02),
            )
        every, default = costs
        read = every.per_poll - default.per_poll
        self.report.note(
            f"watched: a size read costs poolwatch's backend about {read * 1000:.0f} ms of CPU "
            f"(per poll at size_interval 1s minus per poll at 5m); at 5m that adds "
            f"{read / 300 * 100:.3f} % of a core, amortised."
        )

    def goals(self, probe: measure.PgProbe) -> None:
        """Issue 25's three cost figures, one table; the load average beside each."""
        if not self.stack.docker_source:
            raise BenchError("the goals need poolwatch's Docker source")
        plan = self.plan.goals
        image = goals.image_environment()
        said = ", ".join(f"{k}={v}" for k, v in image.items())
        ms = "{:.1f}"

        self.stack.containers.scale_to(plan.polled)
        running = self.stack.containers.running_total()
        load = _load()
        polled = goals.polling(
            self.stack, probe, image, daemons=plan.daemons, windows=plan.windows,
            window=plan.window, idle=self.plan.idle, shell_reps=plan.reps,
        )  # fmt: skip
        ratio = polled.ratio()
        pw, shell = polled.poolwatch, polled.shell
        self.report.goal(
            "(a) CPU per poll, poolwatch ÷ shell poller",
            f"host, PostgreSQL, Redis, {plan.polled} containers ({running} running on the "
            f"engine), webhook sink; interval 1 s; {plan.daemons} daemons x {plan.windows} "
            f"windows of {plan.window:g} s; each side with the server CPU it causes",
            spread([v * 1000 for v in pw.total()], ms, " ms") + _split(pw),
            spread([v * 1000 for v in shell.total()], ms, " ms") + _split(shell),
            f"≤ 1/{1 / goals.CPU_SHARE:.0f} ({goals.CPU_SHARE:.3f})",
            f"{verdict(ratio <= goals.CPU_SHARE)}: {ratio:.3f} (1/{1 / ratio:.0f})",
            load,
        )
        rss = [r / MIB for r in polled.rss_last]
        peak = max(pw.rss) / MIB
        self.report.goal(
            "(b) resident memory (VmRSS)",
            f"the same daemons, {plan.polled} containers, {said} (as the image runs), after "
            f"{polled.seconds / 60:.1f} min",
            spread(rss, ms, " MiB") + f"; highest sample {peak:.1f} MiB",
            "—",
            f"≤ {goals.RSS_MIB:g} MiB",
            verdict(peak <= goals.RSS_MIB),
            load,
        )

        self.stack.containers.scale_to(plan.once)
        running = self.stack.containers.running_total()
        load = _load()
        once = goals.once_over_containers(self.stack, image, plan.reps)
        shell_walls = goals.shell_walls(self.stack, plan.reps)
        wall = median(once.walls)
        self.report.goal(
            "(c) cold `poolwatch --once`, wall",
            f"{plan.once} running containers ({running} on the engine), the Docker source only, "
            f"start-up included; {plan.reps} runs after a warm-up",
            spread(once.walls, "{:.3f}", " s") + f"; CPU {median(once.cpus):.3f} s",
            spread(shell_walls, "{:.3f}", " s") + " (one poll)",
            f"≤ {goals.ONCE_SECONDS:g} s",
            verdict(wall <= goals.ONCE_SECONDS),
            load,
        )
        interpreter, imports = median(once.interpreter), median(once.import_seconds())
        self.report.goal(
            "(c) of which: the interpreter",
            "`python -c pass`, the same interpreter and site-packages",
            spread(once.interpreter, "{:.3f}", " s"),
        )
        self.report.goal(
            "(c) of which: imports",
            f"`-X importtime`, every module's own time summed ({median(once.modules):.0f} "
            "modules beyond the interpreter's own)",
            spread(once.import_seconds(), "{:.3f}", " s"),
        )
        for group, seconds in once.group_seconds():
            self.report.goal("(c) imports: " + group, "", f"{seconds:.3f} s")
        self.report.goal(
            "(c) of which: the rest",
            "the config, the engine's version and info, the listing, the inspections inside "
            "the 0.2 s CPU gap, the second cgroup sample, output, exit (wall minus the two above)",
            f"{wall - interpreter - imports:.3f} s",
        )

    # --- notes ---------------------------------------------------------------------------------

    def sources_label(self) -> str:
        return "host, PostgreSQL, Redis" + (
            ", Docker" if self.stack.docker_source else "; no Docker source yet"
        )

    def notes(self) -> None:
        if self.stack.docker_source:
            self.report.note("poolwatch ran with its Docker source on (`POOLWATCH_DOCKER=on`).")
        else:
            self.report.note(
                "**This poolwatch has no Docker source yet** "
                "(`poolwatch.sources.docker.collector` is missing): it ran with "
                "`POOLWATCH_DOCKER=off`, so its container columns measure "
                "host, PostgreSQL and Redis only while the shell poller's include "
                "`docker stats --no-stream`."
            )
        self.loads.append(("end", load_average()))
        loads = "; ".join(f"{name}: {a:.2f} {b:.2f} {c:.2f}" for name, (a, b, c) in self.loads)
        self.report.note(f"load average (1, 5, 15 min) {loads}")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    plan = plan_for(args)
    only = set(args.only.split(","))

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    run = Run(plan, only)
    started = time.time()
    try:
        code = run.go()
    except subprocess.CalledProcessError as exc:
        print(f"bench: FAILED: {exc}\n{(exc.stderr or b'')[-1000:]!r}", file=sys.stderr)
        code = 1
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        code = 1
    except Exception as exc:  # pytest.fail from a fixture (a server binary missing), ...
        print(f"bench: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    except BaseException as exc:
        if type(exc).__name__ != "Failed":  # pytest's fail() raises a BaseException
            run.stack.close()
            raise
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        code = 1
    finally:
        run.stack.close()
    command = " ".join(argv if argv is not None else sys.argv[1:])
    header = [
        f"poolwatch benchmarks, {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, "
        f"{(time.time() - started) / 60:.1f} min: `python -m bench {command}`",
        *machine(),
    ]
    text = "\n".join(f"{line}  " for line in header) + "\n\n" + run.report.markdown()
    print(text)
    if args.output:
        args.output.write_text(text)
    for failure in run.report.failures:
        print(f"bench: NOT MEASURED: {failure}", file=sys.stderr)
    if code:
        print("bench: FAILED: some measurements could not be taken (see above)", file=sys.stderr)
    return code


__all__ = ["docker", "main"]
