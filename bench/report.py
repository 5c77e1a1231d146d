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
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, *args: str) -> None:
        self.rows.append(Row(*args))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def fail(self, measurement: str, reason: str) -> None:
        self.failures.append(f"{measurement}: {reason}")
        self.rows.append(Row(measurement, "", "**NOT MEASURED**", "—", "", f"failed: {reason}"))

    def markdown(self) -> str:
        lines = [
            "| measurement | condition | poolwatch | shell poller | target | verdict |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            cells = (r.measurement, r.condition, r.poolwatch, r.shell, r.target, r.verdict)
            lines.append(
                "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"
            )
        text = "\n".join(lines) + "\n"
        if self.notes:
            text += "\n" + "\n".join(f"- {n}" for n in self.notes) + "\n"
        return text


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "n/a"
    return "met" if ok else "**missed**"
