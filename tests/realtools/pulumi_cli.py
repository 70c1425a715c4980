"""The real Pulumi CLI, engine and Kubernetes provider running this program, as a user runs `pulumi preview` and
`pulumi up`: on a copy of the project (`pulumi stack init` rewrites the stack file), with a local file backend and
a passphrase, the plugins on PATH (the CLI cannot download any here, and uses PATH plugins as ambient ones).

Plugins: the real `pulumi-resource-kubernetes`, the Python language host (v3.79.0, the last one that can be built
here: see ci/tools.sh) and the STAND-INS for tls and random (standin_providers.py). The policy pack runs through the
CLI's analyzer protocol (`--policy-pack` given the pack as an executable): its findings come out of the CLI.

    project = Project(workdir, kubeconfig)
    project.init("dev")
    run = project.run("preview", "-s", "dev")      # Run: exit code, output, the engine's events
"""

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .build import tool
from .standin_providers import shims

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "thanos-platform-tests"
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache",
                                     "*.pyc", "tests")


@dataclass
class Run:
    """One CLI run: its exit code, what it printed (diagnostics and stderr), and the engine's events (`--json`)."""

    args: list[str]
    returncode: int
    output: str
    events: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    stack_files: dict[str, str] = field(default_factory=dict)
    """The project's Pulumi.<stack>.yaml files as they were when the run started."""

    def steps(self) -> dict[str, str]:
        """urn -> the engine's operation (create, same, update, replace, delete, ...), from the step events."""
        steps = {}
        for event in self.events:
            metadata = (event.get("resourcePreEvent") or {}).get("metadata")
            if metadata:
                steps[metadata["urn"]] = metadata["op"]
        return steps

    def changes(self) -> dict[str, int]:
        """The engine's summary: operation -> count."""
        summary = next((e["summaryEvent"] for e in self.events if "summaryEvent" in e), {})
        return summary.get("resourceChanges") or {}

    def policy_findings(self) -> list[dict[str, Any]]:
        """Every policy event: policyName, enforcementLevel, message, resourceUrn."""
        return [e["policyEvent"] for e in self.events if "policyEvent" in e]

    def errors(self) -> list[str]:
        """The engine's error diagnostics, first to last (the tail of the output is often only the shutdown)."""
        return [f"{d.get('urn', '')}: {d.get('message', '').strip()}" for d in
                (e["diagnosticEvent"] for e in self.events if "diagnosticEvent" in e) if d.get("severity") == "error"]

    def explain(self) -> str:
        errors = "\n".join(self.errors()[:10])
        return (f"pulumi {' '.join(self.args)} exited {self.returncode} after {self.seconds:.0f} s:\n{errors}\n"
                f"{self.output[-4000:]}")


class Project:
    """A copy of the project under workdir/project and the environment the real CLI runs it in."""

    def __init__(self, workdir: Path, kubeconfig: Path):
        self.workdir = workdir
        self.dir = workdir / "project"
        shutil.copytree(ROOT, self.dir, ignore=COPY_IGNORE)
        venv = Path(sys.prefix)
        (self.dir / ".venv").symlink_to(venv)
        plugins = workdir / "plugins"
        plugins.mkdir()
        shims(plugins, str(venv / "bin" / "python"))
        self.policy_pack = plugins / "thanos-guard"
        self.policy_pack.write_text(f"#!/bin/sh\nexec {venv / 'bin' / 'python'} {self.dir / 'policies' / '__main__.py'} \"$@\"\n")
        self.policy_pack.chmod(0o755)
        tools = [tool(name).parent for name in ("pulumi", "pulumi-language-python", "pulumi-resource-kubernetes")]
        (workdir / "state").mkdir()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")},
            # The program's virtualenv first: the v3.79 host runs the `python3` it finds on PATH.
            "PATH": os.pathsep.join([str(venv / "bin"), str(plugins), *map(str, tools), os.environ["PATH"]]),
            "PULUMI_HOME": str(workdir / "home"), "PULUMI_BACKEND_URL": f"file://{workdir / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE, "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true", "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "KUBECONFIG": str(kubeconfig), "NO_COLOR": "1",
            # `preview --json` streams engine events, as `up --json` does, instead of one summary at the end.
            "PULUMI_ENABLE_STREAMING_JSON_PREVIEW": "true",
        }
        self.runs: list[Run] = []

    def run(self, *args: str, timeout: float = 1800, check: bool = False) -> Run:
        """`pulumi ARGS --non-interactive` in the copy; preview, up, refresh and destroy stream the engine's events
        as JSON lines (`--json`), which `Run` reads."""
        stack_files = {p.name: p.read_text() for p in sorted(self.dir.glob("Pulumi.*.yaml"))}
        command = [*args, "--non-interactive"]
        if args and args[0] in ("preview", "up", "refresh", "destroy"):
            command.append("--json")
        start = time.monotonic()
        proc = subprocess.run([str(tool("pulumi")), *command], cwd=self.dir, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        events, text = [], []
        for line in proc.stdout.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                text.append(line)
                continue
            if isinstance(event, dict):
                events.append(event)
                message = (event.get("diagnosticEvent") or {}).get("message")
                if message:
                    text.append(message.rstrip())
        run = Run(list(command), proc.returncode, "\n".join(text) + "\n" + proc.stderr, events,
                  time.monotonic() - start, stack_files)
        self.runs.append(run)
        if check and run.returncode != 0:
            raise AssertionError(run.explain())
        return run

    def init(self, stack: str) -> None:
        self.run("stack", "init", stack, "--secrets-provider", "passphrase", check=True)

    def deployed_as_it_is(self) -> bool:
        """Whether the last run that changed the stack was a successful `up` of the stack files as they are now."""
        changing = [r for r in self.runs if r.args and r.args[0] in ("up", "destroy", "refresh", "import", "state")]
        last = changing[-1] if changing else None
        current = {p.name: p.read_text() for p in sorted(self.dir.glob("Pulumi.*.yaml"))}
        return bool(last and last.args[0] == "up" and last.returncode == 0 and last.stack_files == current)

    def policy_args(self, stack: str) -> list[str]:
        """The pack through the CLI, with the policy config of the stack's environment when there is one
        (policies/<environment>.json, as the preflight chooses it)."""
        stack_file = yaml.safe_load((self.dir / f"Pulumi.{stack}.yaml").read_text()) or {}
        environment = ((stack_file.get("config") or {}).get("thanos:config") or {}).get("environment", stack)
        config = self.dir / "policies" / f"{environment}.json"
        return ["--policy-pack", str(self.policy_pack)] + (["--policy-pack-config", str(config)] if config.exists() else [])
