"""Every message the pack can report is made to fire by some test: each `report(...)` call of the pack is executed
by the policy tests (recorded line by line while they run), so a typo that silences a rule cannot go unnoticed."""

import pytest

from .conftest import FIRED_LINES, POLICY_TEST_MODULES, ROOT, report_call_sites

POLICY_TESTS = {"tests.test_policies", "tests.test_policy_incidents", "tests.test_third_party"}


@pytest.mark.after_policy_tests
def test_every_report_call_of_the_pack_fires_in_a_test():
    if POLICY_TESTS - POLICY_TEST_MODULES:
        pytest.skip(f"needs {', '.join(sorted(POLICY_TESTS - POLICY_TEST_MODULES))} in the same run")
    sites = report_call_sites()
    assert len(sites) >= 60
    silent = [f"{path.removeprefix(str(ROOT) + '/')}:{line}: {text}" for (path, line), text in sorted(sites.items())
              if (path, line) not in FIRED_LINES]
    assert silent == []
