"""The house rules hold: ruff passes (E501, 100 characters, included), and `lint-imports` keeps
every import contract in pyproject.toml ([tool.importlinter]).

And the layer check can fail: the same contracts on a copy of the tree in which `sweep/frontier`
imports `sweep/tune` (an arrow up) are broken, and so are they on a copy with a circle between
two siblings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the console scripts of the packages this interpreter has (import-linter has no __main__)
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"


def test_ruff_passes():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _lint(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the tree's packages, not the installed ones
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True,
                          text=True,
                          timeout=300)


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for package in ("sweep", "models", "mappers"):
        shutil.copytree(ROOT / package, tree / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_every_import_contract_is_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_import_from_frontier_up_to_tune_breaks_the_layers(tmp_path):
    tree = _copy(tmp_path)
    pareto = tree / "sweep" / "frontier" / "pareto.py"
    pareto.write_text(pareto.read_text() + "\nfrom sweep.tune.points import point_name  # noqa: "
                                           "E402\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "sweep is layered" in result.stdout and "BROKEN" in result.stdout
    assert "sweep.frontier.pareto -> sweep.tune.points" in result.stdout


def test_a_circle_between_siblings_is_broken(tmp_path):
    tree = _copy(tmp_path)
    output = tree / "sweep" / "tune" / "output.py"  # tune.runner imports tune.output already
    output.write_text(output.read_text() + "\n\ndef _late():\n    from sweep.tune import runner  # "
                                           "noqa: F401\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "no module circles between siblings" in result.stdout and "BROKEN" in result.stdout
