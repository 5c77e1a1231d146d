"""The results table: one row per measurement and condition, poolwatch beside the shell poller,
the target and whether it is met."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Row:
    measurement: str
    condition: str
    poolwatch: str
    shell: str = "—"
    target: str = ""
    verdict: str = ""


@dataclass
class GoalRow:
    """One of issue 25's cost figures (or a line of its breakdown), with the load it ran at."""

    goal: str
    condition: str
    poolwatch: str
    shell: str = "—"
    target: str = ""
    verdict: str = ""
    load: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    goals: list[GoalRow] = field(default_factory=list)

    def add(self, *args: str) -> None:
        self.rows.append(Row(*args))

    def goal(self, *args: str) -> None:
        self.goals.append(GoalRow(*args))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def fail(self, measurement: str, reason: str) -> None:
        self.failures.append(f"{measurement}: {reason}")
        self.rows.append(Row(measurement, "", "**NOT MEASURED**", "—", "", f"failed: {reason}"))

    def markdown(self) -> str:
        text = ""
        if self.goals:
            lines = [
                "| goal (issue 25) | condition | poolwatch | shell poller | target | verdict "
                "| load average before (1/5/15 min) |",
                "|---|---|---|---|---|---|---|",
            ]
            for g in self.goals:
                lines.append(_line((g.goal, g.condition, g.poolwatch, g.shell, g.target,
                                    g.verdict, g.load)))  # fmt: skip
            text += "\n".join(lines) + "\n"
        if self.rows or not self.goals:
            lines = [
                "| measurement | condition | poolwatch | shell poller | target | verdict |",
                "|---|---|---|---|---|---|",
            ]
            for r in self.rows:
                lines.append(
                    _line((r.measurement, r.condition, r.poolwatch, r.shell, r.target, r.verdict))
                )
            text += ("\n" if text else "") + "\n".join(lines) + "\n"
        if self.notes:
            text += "\n" + "\n".join(f"- {n}" for n in self.notes) + "\n"
        return text


def _line(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "n/a"
    return "met" if ok else "**missed**"
