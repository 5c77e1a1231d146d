"""Whether a container that is not running should be, and what that is: died, stopped, or fine.
Pure: what the engine said (inspect, events) and the time are passed in.

Intent comes from what the container says. Its label `poolwatch.expect` (`running`, `exited`,
`any`) wins; else its restart policy: `always` / `unless-stopped` mean it should run;
`on-failure` that it should run until it exits 0 or uses up its retries; `no` (or none) that it
is a job, whose exit 0 is its success and whose non-zero exit or kill is a failure.

How it ended comes from the event stream when poolwatch saw it (`kill` with its signal, `die`
with the exit code, `stop` when it was stopped through the API: `docker stop`, `compose stop`),
else from inspect (`ExitCode`, `OOMKilled`, `FinishedAt`) with the cause unknown.
"""

from __future__ import annotations

import enum
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EXPECT_LABEL = "poolwatch.expect"
EXPECTATIONS = ("running", "exited", "any")
SHOULD_RUN = ("always", "unless-stopped")


class Verdict(enum.Enum):
    FINE = "fine"
    """Running, restarting within its grace, finished as intended, or not expected to run."""
    DIED = "died"
    """Should run and ended on its own, was killed, or its policy gave up restarting it."""
    STOPPED = "stopped"
    """Should run and was stopped through the API."""


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    """`no`, `always`, `unless-stopped`, `on-failure` (an empty name is `no`)."""
    max_retries: int = 0
    """`on-failure:N`'s N; 0 is no limit."""

    @classmethod
    def of(cls, host_config: Mapping[str, Any]) -> Policy:
        policy = host_config.get("RestartPolicy") or {}
        retries = policy.get("MaximumRetryCount")
        return cls(str(policy.get("Name") or "no"), retries if isinstance(retries, int) else 0)

    def __str__(self) -> str:
        return f"{self.name}:{self.max_retries}" if self.max_retries else self.name


@dataclass(frozen=True, slots=True)
class Ending:
    """How a container last ended, as far as poolwatch knows."""

    exit_code: int | None
    at: float | None
    """Wall-clock time of the `die` (or inspect's `FinishedAt`); None when unknown."""
    oom_killed: bool = False
    by_api: str | None = None
    """`stop` (docker stop, compose stop) or `kill` (docker kill) when the event stream said
    so; None when it died on its own or poolwatch did not see it end."""
    signal: int | None = None
    """The signal a `kill` event named."""
    seen: bool = False
    """Seen on the event stream (else read from inspect after the fact)."""

    def how(self) -> str:
        """`exited 137 (SIGKILL)`, `OOM-killed`, `exited 0`."""
        if self.oom_killed:
            return "OOM-killed" + (f", exit {self.exit_code}" if self.exit_code is not None else "")
        if self.exit_code is None:
            return "ended"
        name = _signal_name(self.exit_code - 128) if self.exit_code > 128 else None
        return f"exited {self.exit_code}" + (f" ({name})" if name else "")

    def cause(self) -> str:
        if self.by_api == "stop":
            return "stopped through the API (docker stop, compose stop)"
        if self.by_api == "kill":
            name = _signal_name(self.signal) if self.signal is not None else None
            return "killed through the API (docker kill" + (f", {name})" if name else ")")
        if not self.seen:
            return "ended while poolwatch was not watching (stopped, killed or died)"
        return "died on its own"


def _signal_name(number: int | None) -> str | None:
    try:
        return signal.Signals(number).name if number is not None else None
    except ValueError:
        return None


def expectation(labels: Mapping[str, str], policy: Policy) -> str:
    """`running`, `exited`, `any` (from the label), else `policy`: judged by the policy."""
    said = labels.get(EXPECT_LABEL, "").strip().lower()
    return said if said in EXPECTATIONS else "policy"


def judge(
    state: str,
    policy: Policy,
    expect: str,
    ending: Ending | None,
    restart_count: int,
    now: float,
    grace: float,
    forget_after: float,
) -> Verdict:
    """The verdict on one container. `state` is the engine's (running, restarting, exited,
    dead, created, paused); `now` and `ending.at` are wall-clock seconds. An ending poolwatch
    did not see that is older than `forget_after` is history, not an outage (the exited
    leftovers of last month's `docker run`s)."""
    if state in ("running", "paused", "created") or expect in ("any", "exited"):
        return Verdict.FINE
    ending = ending or Ending(None, None)
    if not ending.seen and ending.at is not None and now - ending.at > forget_after:
        return Verdict.FINE
    label_says_run = expect == "running"
    if ending.by_api == "stop":
        job = policy.name not in (*SHOULD_RUN, "on-failure") and not label_says_run
        return Verdict.FINE if job else Verdict.STOPPED
    if ending.by_api == "kill":
        return Verdict.DIED
    failed = bool(ending.oom_killed or (ending.exit_code or 0) != 0)
    restarts = policy.name in SHOULD_RUN or (
        policy.name == "on-failure"
        and failed
        and (policy.max_retries == 0 or restart_count < policy.max_retries)
    )
    if restarts:
        # the engine brings it back: only a container still down after the grace is paged
        if not ending.seen and policy.name in SHOULD_RUN and state == "exited":
            # the engine holds a crashed one in `restarting`: an exited one was stopped or
            # killed through the API while poolwatch was not watching
            return Verdict.STOPPED
        within = ending.at is not None and now - ending.at < grace
        if state == "restarting" or within:
            return Verdict.FINE if within or ending.at is None else Verdict.DIED
        return Verdict.DIED
    if failed or label_says_run:
        return Verdict.DIED
    return Verdict.FINE
