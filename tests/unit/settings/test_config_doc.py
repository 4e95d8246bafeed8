"""docs/operate/configuration.md's settings table is the settings structs, rendered."""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec
import pytest

from consumer.settings.schema import KafkaSettings, Settings
from scripts import gen_config_doc


def test_the_committed_table_is_the_generated_one() -> None:
    """The page as committed is what the generator makes of today's structs."""
    page = gen_config_doc.PAGE.read_text()
    assert gen_config_doc.render(page) == page


def test_every_setting_has_one_row_with_its_default() -> None:
    """Each leaf setting of Settings is a row, with its type and default as the structs say."""
    page = gen_config_doc.PAGE.read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    struct = msgspec.inspect.type_info(Settings)
    assert isinstance(struct, msgspec.inspect.StructType)
    names = [name for name, _, _ in gen_config_doc.settings(struct, Settings())]
    assert [row.split("`")[1] for row in rows] == names
    assert "| `kafka.max_record_bytes` | integer >= 1 | 1000000 |" in page
    assert "| `kafka.sasl_mechanism` | one of `OAUTHBEARER`, `PLAIN`," in page
    assert KafkaSettings().max_record_bytes == 1_000_000


def test_a_setting_without_a_description_fails_the_generation() -> None:
    """A new field with no hand-written description stops the generator, naming it."""
    descriptions = tomllib.loads(gen_config_doc.DESCRIPTIONS.read_text())
    del descriptions["kafka.topic"]
    with pytest.raises(SystemExit, match=r"kafka\.topic"):
        gen_config_doc.table(descriptions)


def test_the_check_fails_when_the_page_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--check exits 1 on a hand-edited table and 0 on the generated one."""
    page = tmp_path / "configuration.md"
    page.write_text(gen_config_doc.PAGE.read_text().replace("| 5000 |", "| 4000 |"))
    monkeypatch.setattr(gen_config_doc, "PAGE", page)
    assert gen_config_doc.main(["--check"]) == 1
    assert gen_config_doc.main([]) == 0
    assert gen_config_doc.main(["--check"]) == 0
