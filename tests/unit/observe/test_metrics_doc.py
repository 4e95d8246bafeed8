"""The operator docs' metrics tables are the metrics classes, rendered."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from scripts import gen_metrics_doc

# Every label name any metric has. Each is a fixed set of values, a campaign (capped), a
# topic, partition or Alertmanager URL (without credentials), or an HTTP status: none can
# carry an interaction, agent or contact id. A new label is added here after checking that.
BOUNDED_LABELS = {
    "bucket",
    "campaign",
    "campaign_id",
    "cause",
    "dialing_mode",
    "endpoint",
    "kind",
    "outcome",
    "partition",
    "reason",
    "result",
    "sink",
    "stage",
    "stall",
    "status",
    "task",
    "topic",
    "transition",
    "url",
}


def test_the_committed_tables_are_the_generated_ones() -> None:
    """Each page as committed is what the generator makes of today's metrics classes."""
    for page in gen_metrics_doc.PAGES:
        text = page.path.read_text()
        assert gen_metrics_doc.render(page, text) == text, page.path


def test_every_metrics_class_is_in_a_table() -> None:
    """Each class of the package named ``...Metrics`` is registered for one of the pages."""
    package = gen_metrics_doc.ROOT / "consumer"
    defined = {
        node.name
        for path in package.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and node.name.endswith("Metrics")
    }
    documented = [m.func.__name__ for page in gen_metrics_doc.PAGES for m in page.metrics]
    assert sorted(documented) == sorted(defined)


def test_every_family_is_one_row() -> None:
    """Each family registered is one row, named as scraped, with its labels and values."""
    for page in gen_metrics_doc.PAGES:
        names = [row.name for row in gen_metrics_doc.rows(page)]
        lines = page.path.read_text().splitlines()
        table = [line.split("`")[1] for line in lines if line.startswith("| `")]
        assert len(names) == len(set(names))
        assert [name for name in table if name in names] == names
    text = gen_metrics_doc.PAGES[0].path.read_text()
    assert "| `dialer_events_total` | counter | `outcome` (`applied`, `duplicate`," in text
    assert "| `dialer_consumer_lag` | gauge | `topic`, `partition` | Records not yet" in text


def test_no_label_can_carry_personal_data() -> None:
    """Every label name of every metric is one known to hold bounded, impersonal values."""
    labels = {
        name
        for page in gen_metrics_doc.PAGES
        for row in gen_metrics_doc.rows(page)
        for name in row.labels
    }
    assert labels <= BOUNDED_LABELS


def test_the_check_fails_when_a_page_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--check exits 1 on a hand-edited table and 0 on the generated one."""
    daemon, poller = gen_metrics_doc.PAGES
    edited = tmp_path / "endpoints-and-metrics.md"
    edited.write_text(daemon.path.read_text().replace("| counter |", "| gauge |", 1))
    monkeypatch.setattr(gen_metrics_doc, "PAGES", (daemon._replace(path=edited), poller))
    assert gen_metrics_doc.main(["--check"]) == 1
    assert gen_metrics_doc.main([]) == 0
    assert gen_metrics_doc.main(["--check"]) == 0
