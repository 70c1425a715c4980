"""The product code type-checks: mypy over the program, preflight, the capacity planner, recovery and the policy pack
(pyproject.toml [tool.mypy]; docs/testing.md says how to run it alone)."""

import subprocess
import sys
from pathlib import Path

from tests.support.stacks import ROOT

BIN = Path(sys.executable).parent


def mypy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "mypy"), *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_mypy_finds_nothing():
    # policies/__main__.py on its own: it shares the module name `__main__` with the program's entry point.
    for args in ((), ("policies/__main__.py",)):
        proc = mypy(*args)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_type_error_fails_the_check(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('def half(n: int) -> int:\n    return n // 2\n\n\nhalf("4")\n')
    proc = mypy(str(bad))
    assert proc.returncode == 1 and 'has incompatible type "str"; expected "int"' in proc.stdout, proc.stdout
