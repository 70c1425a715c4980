"""Fixtures of the per-domain policy tests: the prod plan's resources, and the pack lines each test fires."""

import pytest


@pytest.fixture(scope="module")
def prod(planned):
    return planned["prod"].plan["resources"]


@pytest.fixture(autouse=True)
def _records_policy_lines(record_policy_lines):
    """Every policy test records the pack lines it fires (tests/test_policy_messages.py)."""
