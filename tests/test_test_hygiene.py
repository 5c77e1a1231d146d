"""The tests wait one way: through `tests/eventually.py`, or on `tests/fakeclock.py`. A
hand-written "wait until" loop, or a fixed sleep that an assertion would follow, fails here, so
the helpers folded into `eventually` cannot come back one file at a time.

Read over `ast`, not text: a comment or a string that mentions a sleep is no sleep. In any test
module but `tests/eventually.py`, these are found:

- a `while` or `for` loop whose body sleeps (`time.sleep`, `asyncio.sleep`, any `x.sleep`, but
  not `sleep(0)`: that yields a turn to the event loop, it does not wait for time to pass) or
  calls `x.wait(...)` with a timeout (`process.wait(1)`, `event.wait(0.5)`: a sleep by another
  name);
- a `while` or `for` loop that reads a clock (`time.monotonic()`, `time.time()`,
  `time.perf_counter()`, `loop.time()`) in its test or body: a deadline kept by hand;
- a sleep outside any loop: a fixed sleep, after which a test would assert what it hopes
  happened in the meantime.

A function or lambda defined inside a loop is its own scope, not the loop's body. What has one
of these shapes without being a wait is allowed below, one entry per function with its reason;
an entry that no longer matches anything fails too, so the list shrinks with the code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

THE_WAIT = "tests/eventually.py"
"""The one place a condition is polled against a deadline."""

ALLOWED = {
    ("tests/daemon.py", "Daemon.wait_for"): (
        "reads the daemon's stdout lines as they arrive (a queue filled by a reader thread), "
        "each within what is left of the deadline: a stream read, nothing polled or slept"
    ),
    ("tests/test_listener_bounds.py", "Slowloris._trickle"): (
        "is the load, not a wait: one byte a second to every slow socket until the test stops "
        "it (`_stop.wait(1.0)` paces the trickle; nothing is awaited and nothing asserted)"
    ),
    (
        "tests/test_lifecycle.py",
        "test_after_the_first_sigterm_a_second_one_always_ends_poolwatch_by_that_signal",
    ): (
        "sweeps when the second SIGTERM lands after `stopped` (0 to 10 ms): each round asserts "
        "an exit code that must hold whatever the delay, never a state reached by waiting"
    ),
    ("tests/recording.py", "RecordingSink.close"): (
        "is the slow sink itself: its close takes `close_delay`, what the shutdown deadline is "
        "tested against; the test asserts that the runtime did not wait for it"
    ),
    ("tests/test_runner.py", "ScriptedCollector.collect"): (
        "sleeps on the fake clock (`self.clock.sleep`): a poll that takes that long, in the "
        "time the test moves by hand"
    ),
    ("tests/pgbouncer_source/record.py", "main"): (
        "a recording script, not a test: lets pgbench's clients queue up before the SHOW "
        "answers are recorded; nothing is asserted"
    ),
}
"""(file, function) → why it sleeps, or loops on a clock, without being a wait."""

Loop = ast.While | ast.For | ast.AsyncFor
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def own_nodes(loop: Loop) -> Iterator[ast.AST]:
    """The loop's test (or iterable) and body, not descending into nested scopes."""
    pending: list[ast.AST] = [loop.test if isinstance(loop, ast.While) else loop.iter]
    pending += loop.body
    while pending:
        node = pending.pop()
        if isinstance(node, _SCOPES):
            continue
        yield node
        pending += ast.iter_child_nodes(node)


def sleeps(call: ast.Call) -> bool:
    """A call of `sleep` that waits: `sleep(0)` only yields a turn."""
    func = call.func
    named = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if named != "sleep":
        return False
    only = call.args[0] if len(call.args) == 1 and not call.keywords else None
    return not (isinstance(only, ast.Constant) and only.value == 0)


def pauses(call: ast.Call) -> bool:
    """A sleep, or a `wait` given a timeout (`process.wait(1)`, `event.wait(0.5)`): in a loop,
    a sleep by another name."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "wait":
        return bool(call.args) or any(k.arg == "timeout" for k in call.keywords)
    return sleeps(call)


def reads_clock(call: ast.Call) -> bool:
    """`time.monotonic()`, `time.time()`, `time.perf_counter()` or an event loop's `time()`."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    owner = func.value
    if isinstance(owner, ast.Name) and owner.id == "time":
        return func.attr in ("monotonic", "time", "perf_counter")
    is_loop = (isinstance(owner, ast.Name) and owner.id == "loop") or (
        isinstance(owner, ast.Call)
        and isinstance(owner.func, ast.Attribute | ast.Name)
        and getattr(owner.func, "attr", getattr(owner.func, "id", None))
        in ("get_running_loop", "get_event_loop")
    )
    return func.attr == "time" and is_loop


def why_a_wait(loop: Loop) -> str | None:
    """What makes `loop` a hand-written wait, or None."""
    calls = [node for node in own_nodes(loop) if isinstance(node, ast.Call)]
    if any(pauses(call) for call in calls):
        return "sleeps in a loop"
    if any(reads_clock(call) for call in calls):
        return "reads the clock in a loop (a deadline of its own)"
    return None


def waits(tree: ast.AST) -> Iterator[tuple[str, int, str]]:
    """(enclosing function's qualified name, line, why) for every wait loop in `tree`, and for
    every sleep outside one (a fixed sleep: whatever follows it asserts after it)."""

    def visit(
        node: ast.AST, names: tuple[str, ...], in_loop: bool
    ) -> Iterator[tuple[str, int, str]]:
        where = ".".join(names) or "<module>"
        for child in ast.iter_child_nodes(node):
            inner, looping = names, in_loop
            if isinstance(child, _SCOPES):
                looping = False  # a function defined in a loop runs on its own terms
                if not isinstance(child, ast.Lambda):
                    inner = (*names, child.name)
            if isinstance(child, Loop):
                looping = True
                why = why_a_wait(child)
                if why is not None:
                    yield where, child.lineno, why
            if isinstance(child, ast.Call) and not in_loop and sleeps(child):
                yield where, child.lineno, "a fixed sleep"
            yield from visit(child, inner, looping)

    yield from visit(tree, (), False)


def found_in(source: str) -> list[tuple[str, int, str]]:
    return list(waits(ast.parse(source)))


def test_no_test_waits_on_its_own() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name == THE_WAIT:
            continue
        for function, line, why in found_in(path.read_text(encoding="utf-8")):
            if (name, function) not in ALLOWED:
                offenders.append(f"{name}:{line} {function}: {why}")
    assert not offenders, (
        "wait through tests/eventually.py (`eventually`, `eventually_sync`), or drive the code "
        "on tests/fakeclock.py, instead of a loop or a sleep of your own:\n" + "\n".join(offenders)
    )


def test_every_allowed_entry_still_matches() -> None:
    """An entry for a function that no longer waits this way is removed, not kept "just in
    case": the list says what is excused today."""
    present = set()
    for name, function in ALLOWED:
        found = found_in((ROOT / name).read_text(encoding="utf-8"))
        if any(where == function for where, _, _ in found):
            present.add((name, function))
    assert present == set(ALLOWED)


def test_the_one_wait_is_itself_a_wait_loop() -> None:
    """The rule would find `eventually` itself: it is excused by name, not missed."""
    found = found_in((ROOT / THE_WAIT).read_text(encoding="utf-8"))
    assert {function for function, _, _ in found} == {"eventually", "eventually_sync"}


def test_the_shapes_that_were_folded_are_found() -> None:
    """The shapes removed from the tests: each is found, in the function that holds it."""
    shapes = """
import asyncio, time

def deadline_then_sleep(check):
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)

async def bounded_by_a_timeout(probe):
    async with asyncio.timeout(60):
        while True:
            if await probe():
                return
            await asyncio.sleep(0.3)

async def counted_tries(ready):
    for _ in range(100):
        if ready():
            break
        await asyncio.sleep(0.05)

async def asserts_after_a_fixed_sleep(receiver):
    await asyncio.sleep(3)
    assert len(receiver.requests) == 2

def started(process, answers):
    for _ in range(60):
        if answers():
            return
        process.wait(1)

class Harness:
    async def poll_until(self, done):
        end = asyncio.get_running_loop().time() + 30
        while not done():
            if asyncio.get_running_loop().time() > end:
                raise AssertionError("not reached")
"""
    assert [(function, why) for function, _, why in found_in(shapes)] == [
        ("deadline_then_sleep", "sleeps in a loop"),
        ("bounded_by_a_timeout", "sleeps in a loop"),
        ("counted_tries", "sleeps in a loop"),
        ("asserts_after_a_fixed_sleep", "a fixed sleep"),
        ("started", "sleeps in a loop"),
        ("Harness.poll_until", "reads the clock in a loop (a deadline of its own)"),
    ]


def test_what_is_not_a_wait_is_not_found() -> None:
    """A yield (`sleep(0)`), a bounded wait for a process outside any loop, a loop that only
    reads a stream, and a function that waits merely defined inside a loop are no waits of
    their own."""
    fine = """
import asyncio, time

async def yields_turns(probe):
    for _ in range(5):
        probe.poll()
        await asyncio.sleep(0)

def exits(process):
    return process.wait(timeout=10)

def reads_lines(stream, seen):
    for line in stream:
        seen.append(line)

def defines_in_a_loop(made, process):
    for n in range(3):
        def later():
            return process.wait(n)
        made.append(later)
"""
    assert found_in(fine) == []
