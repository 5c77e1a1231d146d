"""The README and the pages under docs/ hold together: every relative link and anchor resolves,
every source of the event schema has its page, the README links every page, every place in src/
that points a reader at a page (and a heading of it) points at one that exists, and a source
page's example output shows only checks it documents."""

from __future__ import annotations

import json
import re

import pytest

from tests import readme

PAGES = sorted(
    str(path.relative_to(readme.ROOT))
    for path in [readme.README, *(readme.ROOT / "docs").rglob("*.md")]
)
LINK = re.compile(r"\]\(([^)\s]+)\)")
REFERENCE = re.compile(r"((?:docs/[\w/]+|README)\.md)(?:,? \(?\"([^\"]+)\")?")
"""`docs/sources/redis.md, "The hit rate"`, `docs/sources/postgres.md ("Readings")`, `README.md`."""


def slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def anchors(page: str) -> set[str]:
    return {slug(title) for _, title, _ in readme.headings(page)}


def links(page: str) -> list[str]:
    """Relative links of a page, outside code blocks (a code block's `](` is not a link)."""
    prose: list[str] = []
    fenced = False
    for line in (readme.ROOT / page).read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            prose.append(line)
    targets = LINK.findall("\n".join(prose))
    return [target for target in targets if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_and_anchor_resolves(page: str) -> None:
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = ((readme.ROOT / page).parent / path).resolve() if path else readme.ROOT / page
        assert resolved.exists(), f"{page}: link {target!r} leads nowhere"
        if anchor:
            name = str(resolved.relative_to(readme.ROOT))
            assert anchor in anchors(name), f"{page}: link {target!r}: {name} has no such heading"


def test_every_source_of_the_event_schema_has_its_page() -> None:
    schema = json.loads((readme.ROOT / "src/poolwatch/schema/event.v1.json").read_text())
    sources = schema["properties"]["source"]["enum"]
    assert sources
    for source in sources:
        page = f"docs/sources/{source}.md"
        assert (readme.ROOT / page).is_file(), f"{source} has no {page}"
        for heading in ("Configuration", "Readings", "Example output"):
            assert readme.section(page, heading).strip(), f"{page}: '{heading}' is empty"


def test_the_readme_links_every_page_from_its_sources_and_sinks_table() -> None:
    linked = {
        str(((readme.ROOT / target.partition("#")[0]).resolve()).relative_to(readme.ROOT))
        for target in LINK.findall(readme.section("README.md", "Sources and sinks"))
    }
    assert linked == set(PAGES) - {"README.md"}


def test_every_docs_reference_in_the_code_names_a_page_and_heading_that_exist() -> None:
    """`docs/sources/redis.md, "The hit rate"` in a docstring or a message: both must be there.
    A docstring naming a README section that moved to a page would fail the same way."""
    checked = 0
    code = [*sorted((readme.ROOT / "src").rglob("*.py")), readme.ROOT / "config/poolwatch.yaml"]
    for path in code:
        text = re.sub(r"\s+", " ", path.read_text(encoding="utf-8"))  # a heading may wrap
        for page, heading in re.findall(REFERENCE, text):
            assert (readme.ROOT / page).is_file(), f"{path}: no page {page}"
            if heading:
                titles = {title for _, title, _ in readme.headings(page)}
                assert any(t.startswith(heading) for t in titles), f"{path}: {page} '{heading}'"
            checked += 1
        for heading in re.findall(r"README \"([^\"]+)\"", text):
            titles = {title for _, title, _ in readme.headings("README.md")}
            assert any(t.startswith(heading) for t in titles), f"{path}: README '{heading}'"
            checked += 1
    assert checked > 10


ROW = re.compile(r"^(?:OK|WARNING|CRITICAL|UNKNOWN)(?: \(muted\))?\s+(\S+)\s+\S+\s+(\S+)\s", re.M)


@pytest.mark.parametrize("page", [p for p in PAGES if p.startswith("docs/sources/")])
def test_a_source_pages_example_output_shows_only_its_documented_checks(page: str) -> None:
    """An example that shows a check the page no longer documents (renamed, removed) is stale."""
    rows = [
        row
        for block in readme.code_blocks(page, "", "Example output")
        for row in ROW.findall(block)
    ]
    assert rows, f"{page}: no --once table rows under 'Example output'"
    source = page.removeprefix("docs/sources/").removesuffix(".md")
    assert {shown for shown, _ in rows} == {source}
    assert {check for _, check in rows} <= set(readme.documented_checks(page))
