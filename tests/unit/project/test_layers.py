"""The layers written in docs/design/architecture.md are the import contract, and it bites."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def layers_contract() -> dict[str, Any]:
    """The layers contract of pyproject.toml."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return dict(contract)


def written_layers() -> list[str]:
    """The layers as docs/design/architecture.md lists them, top first."""
    text = (ROOT / "docs" / "design" / "architecture.md").read_text()
    block = re.search(r"<!-- layers -->\n```text\n(.*?)```\n<!-- /layers -->", text, re.S)
    assert block is not None, "architecture.md lost its layers block"
    return block[1].splitlines()


def test_the_written_layers_are_the_contract() -> None:
    """architecture.md's layer list and pyproject.toml's layers contract name the same order."""
    assert written_layers() == layers_contract()["layers"]


def test_every_package_has_a_layer() -> None:
    """No folder or top-level module of consumer/ escapes the layers."""
    named = {name.strip() for line in written_layers() for name in line.split("|")}
    present = {
        f"consumer.{path.stem}"
        for path in (ROOT / "consumer").iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and path.stem not in {"__init__", "__main__"})
    }
    assert present == named


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the layers contract alone, on the package copied to ``tree``."""
    contract = layers_contract()
    layers = ", ".join(f'"{layer}"' for layer in contract["layers"])
    (tree / "pyproject.toml").write_text(
        "[tool.importlinter]\n"
        'root_packages = ["consumer"]\n'
        "[[tool.importlinter.contracts]]\n"
        f'name = "{contract["name"]}"\n'
        'type = "layers"\n'
        f"layers = [{layers}]\n"
    )
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_wrong_way_import_breaks_the_contract(tmp_path: Path) -> None:
    """The engine importing a command fails lint-imports; the same tree without it passes."""
    shutil.copytree(
        ROOT / "consumer", tmp_path / "consumer", ignore=shutil.ignore_patterns("__pycache__")
    )
    kept = lint(tmp_path)
    assert kept.returncode == 0, kept.stdout
    with (tmp_path / "consumer" / "engine" / "clock.py").open("a") as clock:
        clock.write("\nfrom consumer.commands import run as _run  # the wrong way\n")
    broken = lint(tmp_path)
    assert broken.returncode != 0
    assert "consumer.engine is not allowed to import consumer.commands" in broken.stdout
    assert "consumer.engine.clock -> consumer.commands.run" in broken.stdout
