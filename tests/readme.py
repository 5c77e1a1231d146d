"""What README.md and the pages under docs/ document, read back so tests can hold the code to it.

Every test that reads the docs goes through `section` (or the helpers built on it), so a page
that is renamed or a heading that moves fails one place with a clear message."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

_FENCE = re.compile(r"^(```|~~~)")
_HEADING = re.compile(r"^(#{1,6}) (.+?)\s*$")


def headings(page: str) -> list[tuple[int, str, int]]:
    """(level, title, line index) of every heading of a page, skipping fenced code blocks (a
    shell comment `# ...` in a ```sh block is not a heading)."""
    found: list[tuple[int, str, int]] = []
    fenced = False
    for index, line in enumerate(_lines(page)):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            found.append((len(match.group(1)), match.group(2), index))
    return found


def section(page: str, heading: str) -> str:
    """The text under the one heading `heading` of `page` (a path from the repository's root,
    e.g. "docs/sources/redis.md"), up to the next heading of the same or a higher level."""
    lines = _lines(page)
    marks = headings(page)
    matches = [i for i, (_, title, _) in enumerate(marks) if title == heading]
    assert len(matches) == 1, f"{page} should have one heading {heading!r}, has {len(matches)}"
    level, _, start = marks[matches[0]]
    end = next((line for lvl, _, line in marks[matches[0] + 1 :] if lvl <= level), len(lines))
    return "\n".join(lines[start + 1 : end]) + "\n"


def table(page: str, heading: str) -> list[dict[str, str]]:
    """The rows of the first table in a section, each as {column header: cell}."""
    rows: list[list[str]] = []
    for line in section(page, heading).splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif rows:
            break
    assert len(rows) > 2, f"{page} '{heading}' has no table"
    header, rule, *body = rows
    assert all(set(cell) <= set("-:") for cell in rule), f"{page} '{heading}': not a table"
    return [dict(zip(header, row, strict=True)) for row in body]


def documented_checks(page: str, heading: str = "Readings") -> list[str]:
    """The `check` column of the first table under `heading`, in the page's order."""
    checks = [row["check"] for row in table(page, heading)]
    for check in checks:
        assert re.fullmatch(r"`[a-z0-9_]+`", check), f"{page} '{heading}': check {check!r}"
    return [check.strip("`") for check in checks]


def code_blocks(page: str, language: str, heading: str | None = None) -> list[str]:
    """The bodies of the code blocks fenced as ```{language}, in a page or one of its sections."""
    text = section(page, heading) if heading else "\n".join(_lines(page)) + "\n"
    return re.findall(rf"^```{re.escape(language)}\n(.*?)^```", text, re.M | re.S)


def _lines(page: str) -> list[str]:
    path = ROOT / page
    assert path.is_file(), f"no page {page}"
    return path.read_text(encoding="utf-8").splitlines()
