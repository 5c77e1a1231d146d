"""What README.md documents, read back so tests can hold the code to it."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def section(title: str) -> str:
    """The text under `## {title}` up to the next `## ` heading."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no section '## {title}'"
    return match.group(1)


def documented_checks(title: str) -> set[str]:
    """The `check` column of the first table in a README section."""
    checks: set[str] = set()
    for line in section(title).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and re.fullmatch(r"`[a-z0-9_]+`", cells[0]):
            checks.add(cells[0].strip("`"))
    return checks
