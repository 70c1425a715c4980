"""The code passes the project's lint rules (pyflakes, pycodestyle, bugbear; pyproject.toml [tool.ruff]) and its
import contract (pyproject.toml [tool.importlinter]: the layers of components/ point one way)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.stacks import ROOT

BIN = Path(sys.executable).parent


def test_ruff_finds_nothing():
    proc = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root), "NO_COLOR": "1"}, timeout=120)


def test_imports_point_one_way():
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("KEPT") == 2, proc.stdout


def test_a_backward_import_breaks_the_contract(tmp_path):
    # The platform layer importing the composition of a cluster, as namespace.py once imported observability.
    for name in ("components", "config", "policies", "capacity", "preflight"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert lint_imports(tmp_path).returncode == 0
    common = tmp_path / "components" / "platform" / "common.py"
    common.write_text(common.read_text() + "\nfrom components.cluster import plan_cluster  # noqa: E402,F401\n")
    proc = lint_imports(tmp_path)
    assert proc.returncode != 0 and "components.platform.common -> components.cluster" in proc.stdout, proc.stdout
