"""Shared fixtures: the shipped stacks planned once through the real preflight CLI."""

import ast
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))
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


@dataclass
class PlannedStack:
    """A stack planned by `python -m preflight STACK --json --manifests`."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    plan: dict[str, Any]
    manifests: Path

    def resources(self, type_token: str) -> list[dict[str, Any]]:
        """Resources of one type token."""
        return [r for r in self.plan["resources"] if r["type"] == type_token]

    def objects(self, kind: str | None = None, cluster: str | None = None) -> list[dict[str, Any]]:
        """Kubernetes objects from the written manifests (of one cluster's directory when given)."""
        root = self.manifests / cluster if cluster else self.manifests
        docs = [yaml.safe_load(p.read_text()) for p in sorted(root.rglob("*.yaml")) if "files" not in p.parent.parts]
        return [d for d in docs if kind is None or d["kind"] == kind]

    def files(self, cluster: str, namespace: str, name: str) -> dict[str, str]:
        """The files preflight wrote from inside one object (ConfigMap keys, a PrometheusRule's groups)."""
        folder = self.manifests / cluster / namespace / "files" / name
        return {p.name: p.read_text() for p in sorted(folder.iterdir())}

    def clusters(self) -> list[str]:
        """The cluster directories of the written manifests."""
        return sorted(p.name for p in self.manifests.iterdir() if p.is_dir())


def run_preflight(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run the preflight CLI as users and CI do."""
    return subprocess.run([sys.executable, "-m", "preflight", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def stack_config(stack: str) -> dict[str, Any]:
    """The `thanos:config` object of a shipped stack file."""
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]["thanos:config"]


POLICY_DIR = ROOT / "policies" / "thanos_policies"
FIRED_LINES_FILE = "THANOS_FIRED_LINES"
"""Environment variable: a file where `record_policy_lines` appends `file:line` of every pack line a test ran."""


def report_call_sites() -> dict[tuple[str, int], str]:
    """Every `report(...)` call of the pack: (file, line) -> the message as written (its first string part)."""
    sites = {}
    for path in sorted(POLICY_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "report":
                sites[(str(path), node.lineno)] = ast.get_source_segment(path.read_text(), node.args[0])[:100]
    return sites


@pytest.fixture
def record_policy_lines(monkeypatch):
    """When THANOS_FIRED_LINES names a file, record where the pack reports during this test and append those
    `file:line`s to it; otherwise nothing. Every policy's `report` callback is wrapped: a call to it records the
    lines its pack frames are on (the `report(...)` site and, through `deduplicated`, the rule's own call)."""
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


PROBE_PRELUDE = f"""
import json, sys
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
import pulumi, yaml
import config as stack_config
from preflight import engine
from preflight.cli import offline_config, placeholder_stack_outputs

def plan_stack(stack, preview=False, edit=None):  # as preflight plans it; `edit` may change thanos:config first
    raw = yaml.safe_load(Path({str(ROOT)!r}, f"Pulumi.{{stack}}.yaml").read_text())["config"]
    if edit:
        edit(raw["thanos:config"])
    settings = stack_config.load(raw["thanos:config"])
    refs = placeholder_stack_outputs(settings.stack_references())
    return engine.run_program(Path({str(ROOT / "__main__.py")!r}), "thanos", stack, offline_config(raw, settings), refs,
                              preview=preview)
"""


def run_probe(tmp_path, body: str) -> subprocess.CompletedProcess:
    """Run `body` after PROBE_PRELUDE in a fresh interpreter (the mock engine's state is per process)."""
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE_PRELUDE + body)
    return subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.fixture(scope="session")
def dev(tmp_path_factory):
    """The dev data path started for real (tests/realtools/devstack.py), once per test process: the happy-path tests
    and the fault runs (both in the xdist group `real-dev`, so in one process) share it."""
    from tests.realtools.devstack import started_dev

    with started_dev(tmp_path_factory.mktemp("real-dev")) as stack:
        yield stack
