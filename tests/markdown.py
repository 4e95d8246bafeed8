"""Markdown as GitHub renders it: the anchors of a file's headings and its relative links.

Shared by the tests of the runbook links (tests/unit/deploy/test_deploy.py) and of the docs' links
(tests/unit/project/test_docs.py).
"""

from __future__ import annotations

import re
from pathlib import Path

# [text](target): the target up to the first space or closing parenthesis
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _outside_fences(text: str) -> list[str]:
    """The lines of ``text`` that are not inside a fenced code block."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """The anchors of the file's headings, as GitHub makes them (a repeat gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for line in _outside_fences(path.read_text()):
        heading = re.match(r"^#+ (.+)$", line)
        if heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        repeat = seen.get(slug, 0)
        seen[slug] = repeat + 1
        found.add(slug if repeat == 0 else f"{slug}-{repeat}")
    return found


def relative_links(path: Path) -> list[str]:
    """The file's link targets that are not absolute URLs (outside code blocks)."""
    targets = [t for line in _outside_fences(path.read_text()) for t in _LINK.findall(line)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]
