"""Every message the pack can report is made to fire by some test: the policy tests run in a fresh process that
traces the pack line by line, and every `report(...)` call of the pack must have run, so a typo that silences a rule
cannot go unnoticed."""

import os
import subprocess
import sys

from tests.support.policies import FIRED_LINES_FILE, report_call_sites
from tests.support.stacks import ROOT

POLICY_TESTS = ["tests/test_policies.py", "tests/policies", "tests/test_policy_incidents.py", "tests/test_third_party.py"]


def test_every_report_call_of_the_pack_fires_in_a_test(tmp_path):
    fired_file = tmp_path / "fired.txt"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
                           *POLICY_TESTS], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, FIRED_LINES_FILE: str(fired_file)})
    assert proc.returncode == 0, proc.stdout[-3000:]
    fired = {(path, int(line)) for path, _, line in
             (entry.rpartition(":") for entry in fired_file.read_text().splitlines())}
    sites = report_call_sites()
    assert len(sites) >= 60
    silent = [f"{path.removeprefix(str(ROOT) + '/')}:{line}: {text}" for (path, line), text in sorted(sites.items())
              if (path, line) not in fired]
    assert silent == []
