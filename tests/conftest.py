"""Shared fixtures and hooks: the `real` marker, the shipped stacks planned once through the real preflight CLI, the
recording of the pack lines a test fires, the dev data path started for real. Helpers live in tests/support/."""

import json
import os
import sys

import pytest

from tests.support.stacks import STACKS, PlannedStack, run_preflight

REAL_MODULES = ("test_real_", "test_harness_")
"""Modules whose tests start real servers (Thanos, Prometheus, MinIO, the Pulumi engine, an API server...): marked
`real`, so `./run tests -m "not real"` is the fast loop (docs/testing.md)."""


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name.startswith(REAL_MODULES):
            item.add_marker(pytest.mark.real)


def pytest_configure(config):
    """Refuse a pytest that ignores xdist_group: pytest-xdist 3.8 suffixes a grouped test's id where pytest 9.2 no
    longer reads it (pytest-xdist#1386), and the groups' shared real stacks would then start once per worker and run
    out of order (requirements-dev.txt pins pytest below 9.2)."""
    import xdist

    if config.getoption("dist", "no") == "loadgroup" and pytest.version_tuple[:2] >= (9, 2) and \
            tuple(int(p) for p in xdist.__version__.split(".")[:2]) <= (3, 8):
        raise pytest.UsageError(f"pytest {pytest.__version__} with pytest-xdist {xdist.__version__} ignores "
                                "xdist_group (pytest-xdist#1386): install requirements-dev.txt (pytest<9.2)")


@pytest.fixture
def record_policy_lines(monkeypatch):
    """When THANOS_FIRED_LINES names a file, record where the pack reports during this test and append those
    `file:line`s to it; otherwise nothing. Every policy's `report` callback is wrapped: a call to it records the
    lines its pack frames are on (the `report(...)` site and, through `deduplicated`, the rule's own call)."""
    # Imported here: tests.support.policies loads the pack and the AWS SDK, which no other fixture needs.
    from tests.support.policies import FIRED_LINES_FILE, POLICY_DIR

    target = os.environ.get(FIRED_LINES_FILE)
    if not target:
        yield
        return
    from preflight.policy import load_policies

    prefix, fired = str(POLICY_DIR), set()

    def recording(validate):
        def run(args, report):
            def traced(*arguments, **keywords):
                frame = sys._getframe(1)
                while frame is not None:
                    if frame.f_code.co_filename.startswith(prefix):
                        fired.add((frame.f_code.co_filename, frame.f_lineno))
                    frame = frame.f_back
                return report(*arguments, **keywords)
            return validate(args, traced)
        return run

    for policy in load_policies():
        monkeypatch.setattr(policy, "validate", recording(policy.validate))
    yield
    with open(target, "a") as out:
        out.writelines(f"{path}:{line}\n" for path, line in fired)


@pytest.fixture(scope="session")
def planned(tmp_path_factory) -> dict[str, PlannedStack]:
    """Every shipped stack, planned once per test session."""
    result = {}
    for stack in STACKS:
        out = tmp_path_factory.mktemp(f"plan-{stack}")
        proc = run_preflight(stack, "--json", str(out / "plan.json"), "--manifests", str(out / "manifests"),
                             "--conformance")
        plan = json.loads((out / "plan.json").read_text()) if (out / "plan.json").exists() else {}
        result[stack] = PlannedStack(stack, proc.returncode, proc.stdout, proc.stderr, plan, out / "manifests")
    return result


@pytest.fixture(scope="session")
def dev(tmp_path_factory):
    """The dev data path started for real (tests/realtools/devstack.py), once per test process: the happy-path tests
    and the fault runs (both in the xdist group `real-dev`, so in one process) share it."""
    from tests.realtools.devstack import started_dev

    with started_dev(tmp_path_factory.mktemp("real-dev")) as stack:
        yield stack
