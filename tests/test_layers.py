"""The layer contract of LAYOUT.md is checked, not just written down: on a copy of the package,
an upward import and an import circle each break `lint-imports`, and the tree as it is keeps it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def lint(tree: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(tree / "src"), "PATH": str(Path(sys.executable).parent)}
    return subprocess.run(
        [LINT, "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path):
    shutil.copytree(
        ROOT / "src" / "cinerl", tmp_path / "src" / "cinerl", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_both_contracts(tree):
    res = lint(tree)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 kept, 0 broken" in res.stdout


def test_an_upward_import_breaks_the_layers(tree):
    errors = tree / "src" / "cinerl" / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\n\ndef _late():\n    import cinerl.runtime.director\n")
    res = lint(tree)
    assert res.returncode != 0
    assert "cinerl.core.errors -> cinerl.runtime.director" in res.stdout


def test_an_import_circle_between_siblings_breaks_the_acyclic_contract(tree):
    context = tree / "src" / "cinerl" / "rewards" / "core" / "context.py"
    context.write_text(context.read_text() + "\n\ndef _late():\n    import cinerl.rewards.core.composite\n")
    res = lint(tree)
    assert res.returncode != 0
    assert "No import circles inside a package BROKEN" in res.stdout
