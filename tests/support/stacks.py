"""The shipped stacks as the tests read them: where the project is, the stack files, the preflight CLI as users run
it, and a probe that plans a stack in a fresh interpreter."""

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


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


