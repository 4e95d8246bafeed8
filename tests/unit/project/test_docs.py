"""The docs: every relative link lands, and each reader's page is one click from the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.markdown import anchors, relative_links

ROOT = Path(__file__).resolve().parents[3]
DOCS = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "deploy").glob("*.md")),
]


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_and_heading(page: Path) -> None:
    """Each relative link names an existing file and, with #anchor, a heading there."""
    for link in relative_links(page):
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.relative_to(ROOT)}: {link}"
        if anchor:
            assert anchor in anchors(path), f"{page.relative_to(ROOT)}: {link}"


def test_each_reader_finds_their_page_from_the_readme() -> None:
    """The README links the runbook, the configuration, the Genesys page and CONTRIBUTING."""
    linked = {link.partition("#")[0] for link in relative_links(ROOT / "README.md")}
    for page in ("docs/operate/runbook.md", "docs/operate/configuration.md", "docs/genesys.md"):
        assert page in linked, page
    assert "CONTRIBUTING.md" in linked


def test_the_readme_stays_short() -> None:
    """README.md is at most about 200 lines: the rest lives in docs/."""
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
