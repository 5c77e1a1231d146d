"""`poolwatch silence add|list|expire` against a state dir, as an operator runs it, and
`--once` showing muted results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from poolwatch import cli

ALERT = "PostgreSQLConnectionPoolHigh"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POOLWATCH_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("POOLWATCH_CONFIG", raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys: pytest.CaptureFixture[str], *more: str) -> list[dict[str, object]]:
    code, out, _ = run(capsys, "silence", "list", "--format", "json", *more)
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


def test_add_list_expire(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "silence", "add", "--match", f"alert={ALERT}", "--match", "instance=~ma.*",
        "--for", "2h", "--comment", "reindex", "--author", "ops",
    )  # fmt: skip
    assert (code, err) == (0, "")
    ident = out.strip()
    (row,) = listed(capsys)
    assert row["id"] == ident
    assert row["state"] == "active"
    assert row["matchers"] == [f"alert={ALERT}", "instance=~ma.*"]
    assert (row["author"], row["comment"]) == ("ops", "reindex")

    code, out, _ = run(capsys, "silence", "expire", ident[:8])  # a unique prefix will do
    assert (code, out) == (0, f"{ident} expired\n")
    assert listed(capsys) == []
    (row,) = listed(capsys, "--all")
    assert row["state"] == "expired"
    code, _, err = run(capsys, "silence", "expire", ident)
    assert code == 3
    assert err.count("\n") == 1
    assert "already expired" in err


def test_list_shows_a_comment_with_line_breaks_and_escapes_on_one_row(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anyone who may add a silence writes its comment; `silence list` prints it on its row, each
    control character as `?`, and `--format json` gives it back exactly."""
    comment = "reindex\nabc123  active  2026  ops\x1b[2J\x1b[H\r"
    code, _, _ = run(
        capsys, "silence", "add", "--match", "instance=main\x1b[31m", "--for", "1h",
        "--comment", comment, "--author", "ops\x85x",
    )  # fmt: skip
    assert code == 0
    code, out, _ = run(capsys, "silence", "list")
    assert code == 0
    header, row = out.split("\n")[:-1]
    assert len(out.splitlines()) == 2
    assert header.startswith("ID")
    assert row.endswith("reindex?abc123  active  2026  ops?[2J?[H?")
    assert "ops?x" in row
    assert "instance=main?[31m" in row
    assert "\x1b" not in out
    (listed_row,) = listed(capsys)
    assert (listed_row["comment"], listed_row["author"]) == (comment, "ops\x85x")


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["--match", "alert=X", "--comment", "c"], "one of the arguments --for --until"),
        (["--match", "alert=X", "--for", "8d", "--comment", "c"], "at most 168h"),
        (["--match", "alert=X", "--for", "soon", "--comment", "c"], "--for 'soon'"),
        (["--match", "alert=X", "--until", "2020-01-01T00:00Z", "--comment", "c"], "has passed"),
        (["--match", "alert=X", "--until", "2099-01-01T00:00", "--comment", "c"], "offset"),
        (["--match", "alert", "--for", "1h", "--comment", "c"], "expected key=value"),
        (["--for", "1h", "--comment", "c"], "at least one --match"),
        (["--match", "alert=X", "--for", "1h", "--comment", " "], "--comment"),
    ],
)
def test_refusals_are_one_line_and_exit_3(
    state: Path, capsys: pytest.CaptureFixture[str], argv: list[str], why: str
) -> None:
    code, out, err = run(capsys, "silence", "add", *argv)
    assert code == 3
    assert out == ""
    assert why in err
    assert listed(capsys, "--all") == []


def test_max_duration_comes_from_the_config(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "poolwatch.yaml"
    config.write_text("silences: {max_duration: 1h}\n")
    argv = ["silence", "add", "--config", str(config), "--match", "alert=X", "--comment", "c"]
    assert run(capsys, *argv, "--for", "2h")[0] == 3
    assert run(capsys, *argv, "--for", "1h")[0] == 0
    # --config also goes before the subcommand
    assert run(capsys, "--config", str(config), "silence", "list")[0] == 0


def test_concurrent_writers_lose_nothing(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Eight processes add at once (and one expires meanwhile): every silence is stored."""
    env = {**os.environ, "POOLWATCH_STATE_DIR": str(state)}
    env.pop("POOLWATCH_CONFIG", None)

    def add(index: int) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "poolwatch", "silence", "add", "--match", f"instance=n{index}",
             "--for", "1h", "--comment", f"writer {index}"],
            env=env, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(add, range(8)))
    assert len(set(ids)) == 8
    assert {row["id"] for row in listed(capsys)} == set(ids)


def test_once_shows_muted_results_and_leaves_them_out_of_the_exit_code(
    state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CPU_WARNING", "0")  # the host's CPU alert is always at warning
    monkeypatch.setenv("CPU_CRITICAL", "off")
    monkeypatch.setenv("MEMORY_WARNING", "off")
    monkeypatch.setenv("MEMORY_CRITICAL", "off")
    monkeypatch.setenv("DISK_WARNING", "off")
    monkeypatch.setenv("DISK_CRITICAL", "off")
    monkeypatch.setenv("POOLWATCH_DOCKER", "off")
    once = ["--once", "--format", "json", "--only", "host", "--check", "cpu_percent"]
    code, out, _ = run(capsys, *once)
    assert code == 1
    assert "muted" not in json.loads(out.splitlines()[0])

    code, out, _ = run(
        capsys, "silence", "add", "--match", "check=cpu_percent", "--for", "1h", "--comment", "t"
    )
    ident = out.strip()
    code, out, _ = run(capsys, *once)
    (result,) = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert result["severity"] == "warning"
    assert (result["muted"], result["muted_by"]) == (True, ident)
    assert run(capsys, *once, "--include-muted")[0] == 1
    code, out, _ = run(
        capsys, "--once", "--format", "nagios", "--only", "host", "--check", "cpu_percent"
    )
    assert code == 0
    assert out.startswith("POOLWATCH OK")
