"""The code passes the project's lint rules (pyflakes, pycodestyle, bugbear; pyproject.toml [tool.ruff])."""

import subprocess
import sys
from pathlib import Path

from .conftest import ROOT


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).parent / "ruff"
    proc = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
