"""The memory budget: the container's limit read from cgroup files, and what it holds."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from consumer import engine
from consumer.daemon import memory
from consumer.daemon.policy import tracking_budget
from consumer.engine.tracker import Tracker
from consumer.settings.schema import Settings, TrackingSettings

GIB = 1 << 30


def _v2(root: Path, text: str) -> Path:
    (root / "memory.max").write_text(text + "\n")
    return root


def _v1(root: Path, text: str) -> Path:
    (root / "memory").mkdir()
    (root / "memory" / "memory.limit_in_bytes").write_text(text + "\n")
    return root


def _none() -> list[Tracker]:
    return []


def test_a_cgroup_v2_limit_is_read(tmp_path: Path) -> None:
    """In cgroup v2, memory.max in bytes is the limit."""
    assert memory.container_limit(_v2(tmp_path, str(GIB))) == GIB


def test_a_cgroup_v2_max_is_no_limit(tmp_path: Path) -> None:
    """In cgroup v2, memory.max of "max" is no limit."""
    assert memory.container_limit(_v2(tmp_path, "max")) is None


def test_a_cgroup_v1_limit_is_read(tmp_path: Path) -> None:
    """In cgroup v1, memory/memory.limit_in_bytes is the limit."""
    assert memory.container_limit(_v1(tmp_path, str(512 << 20))) == 512 << 20


def test_a_cgroup_v1_huge_value_is_no_limit(tmp_path: Path) -> None:
    """In cgroup v1, the kernel says "no limit" with the largest page-aligned 63-bit number."""
    assert memory.container_limit(_v1(tmp_path, "9223372036854771712")) is None


@pytest.mark.parametrize("text", ["", "lots", "-1", "0"])
def test_an_unreadable_limit_is_no_limit(tmp_path: Path, text: str) -> None:
    """A limit file that does not parse is no limit, never a crash."""
    assert memory.container_limit(_v2(tmp_path, text)) is None


def test_no_cgroup_files_is_no_limit(tmp_path: Path) -> None:
    """Outside a container (no cgroup memory files): no limit."""
    assert memory.container_limit(tmp_path) is None


def test_the_budget_is_half_the_limit_past_the_runtime_at_the_builds_cost(
    tmp_path: Path,
) -> None:
    """A container's limit gives (limit - base) / 2 bytes, at the cost of the build that runs."""
    budget = tracking_budget(Settings(), _none, _v2(tmp_path, str(GIB)))
    assert budget is not None
    share = (GIB - memory.BASE_BYTES) // 2
    assert budget.interactions == share // memory.bytes_per_interaction(engine.compiled())


def test_the_setting_wins_over_the_container(tmp_path: Path) -> None:
    """tracking.memory_limit_bytes is the share outright, whatever the container's limit."""
    settings = Settings(tracking=TrackingSettings(memory_limit_bytes=44_000_000))
    budget = tracking_budget(settings, _none, _v2(tmp_path, str(GIB)))
    assert budget is not None
    assert budget.interactions == 44_000_000 // memory.bytes_per_interaction(engine.compiled())


def test_no_limit_and_no_setting_is_no_budget(tmp_path: Path) -> None:
    """With no container limit and no setting, only the cap per partition holds."""
    assert tracking_budget(Settings(), _none, _v2(tmp_path, "max")) is None


def test_bytes_per_interaction_follow_the_build() -> None:
    """The uncompiled build's interactions cost more than the compiled one's."""
    assert memory.bytes_per_interaction(True) < memory.bytes_per_interaction(False)


def test_a_setting_under_a_mebibyte_stops_the_start() -> None:
    """tracking.memory_limit_bytes below 1 MiB is refused, naming the setting."""
    with pytest.raises(msgspec.ValidationError, match="memory_limit_bytes"):
        msgspec.convert({"tracking": {"memory_limit_bytes": 1000}}, Settings)
