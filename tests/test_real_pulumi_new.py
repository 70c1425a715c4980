"""`pulumi new` with this repository as the template, run by the real Pulumi CLI (the version the tests prove): it
asks for what Pulumi.yaml's `template:` section lists (here answered by `--yes` with the defaults and by `-c`), writes
each answer as a `thanos:config.<path>` key, and the stack it makes plans: the preflight with the pack, and the real
engine's `pulumi preview` (config.fold_path_keys reads the answers in both) of the same resources. About 15 s.

What stands in: the dependency install at the end of `pulumi new` (the v3.79 language host this harness runs would
create a virtualenv in the project's root and pip-install from an index): `PULUMI_PYTHON_CMD` names a python whose
`-m venv` makes a virtualenv whose pip does nothing. The project's own virtualenv runs the program afterwards."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.realtools.build import tool
from tests.realtools.pulumi_cli import Project

ANSWERS = {
    "thanos:config.environment": "dev",
    "thanos:config.regions[0].name": "local",
    "thanos:config.regions[0].storage.provider": "in-cluster",
    "thanos:config.regions[0].storage.bucket": "thanos",
    "thanos:config.regions[0].clusters[0].name": "main",
    "thanos:config.regions[0].clusters[0].kubernetes.context": "kind-mine",  # given with -c, the rest are defaults
}
NO_INSTALL = """#!/bin/sh
# STAND-IN for python at `pulumi new`'s dependency install (tests/test_real_pulumi_new.py): the project's python, but
# `-m venv DIR` makes DIR/bin/python (this script again), `-m pip install` does nothing and `-m pip list` lists
# nothing (so the CLI downloads no provider plugin).
case "$1 $2 $3" in
  "-m venv "*) mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; exit;;
  "-m pip install") exit 0;;
  "-m pip list") echo "[]"; exit 0;;
esac
exec {python} "$@"
"""


def pulumi_new(project: Project, into: Path, stack: str, *args: str) -> subprocess.CompletedProcess:
    """`pulumi new` of the template (the copy of the repository) into `into`, answering every prompt with its
    default (`--yes`) but what `args` gives (`-c KEY=VALUE`)."""
    standin = project.workdir / "no-install"
    standin.mkdir(exist_ok=True)
    (standin / "python-no-install").write_text(NO_INSTALL.format(python=sys.executable))
    (standin / "python-no-install").chmod(0o755)
    env = {**project.env, "PATH": f"{standin}:{project.env['PATH']}", "PULUMI_PYTHON_CMD": "python-no-install"}
    return subprocess.run([str(tool("pulumi")), "new", str(project.dir), "--dir", str(into), "--stack", stack, "--yes",
                           "--non-interactive", *args],
                          env=env, capture_output=True, text=True, timeout=120)


def preflight(project_dir: Path, stack: str) -> subprocess.CompletedProcess:
    """The preflight of the made project (its own copy of the code), as `./run preflight STACK` runs it there."""
    return subprocess.run([sys.executable, "-m", "preflight", stack], cwd=project_dir, capture_output=True, text=True,
                          timeout=300)


def preview(project: Project, project_dir: Path, stack: str) -> subprocess.CompletedProcess:
    """The real engine's `pulumi preview` of the made project, the program in the project's own virtualenv."""
    (project_dir / ".venv").symlink_to(sys.prefix)
    return subprocess.run([str(tool("pulumi")), "preview", "-s", stack, "--non-interactive"], cwd=project_dir,
                          env=project.env, capture_output=True, text=True, timeout=300)


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: mine, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: mine, user: {token: unused}}]
contexts: [{name: kind-mine, context: {cluster: mine, user: mine}}]
"""
"""The context the answers name, on a port where nothing listens: the Kubernetes provider previews without a cluster."""


def test_pulumi_new_asks_for_the_template_keys_and_the_stack_it_makes_plans(tmp_path):
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    project = Project(tmp_path, kubeconfig=tmp_path / "kubeconfig")  # the template: a copy of the repository
    (project.dir / ".venv").unlink()  # as cloned
    template = yaml.safe_load((project.dir / "Pulumi.yaml").read_text())["template"]
    assert set(template["config"]) == set(ANSWERS)

    made = tmp_path / "made"
    context = "thanos:config.regions[0].clusters[0].kubernetes.context"
    run = pulumi_new(project, made, "mine", "-c", f"{context}=kind-mine")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Next: ./run preflight <stack>" in run.stdout  # the template's quickstart
    stack_file = yaml.safe_load((made / "Pulumi.mine.yaml").read_text())["config"]
    assert {k: v for k, v in stack_file.items() if k.startswith("thanos:")} == ANSWERS
    made_project = yaml.safe_load((made / "Pulumi.yaml").read_text())
    assert "template" not in made_project and made_project["config"]["thanos:config"]["default"] == {}

    planned = preflight(made, "mine")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "Cluster main (context kind-mine)" in planned.stdout and "Policies: 0 mandatory" in planned.stdout
    resources = int(re.search(r"Plan of thanos/mine: (\d+) resources", planned.stdout).group(1))
    previewed = preview(project, made, "mine")
    assert previewed.returncode == 0, previewed.stdout[-4000:] + previewed.stderr
    assert f"+ {resources + 1} to create" in previewed.stdout  # and the stack itself

    # With --config-path the CLI sets -c keys inside thanos:config, but still writes the template's own keys with
    # their defaults. A second `pulumi new` of project thanos in this backend needs the stack's full name.
    twice = pulumi_new(project, tmp_path / "twice", "organization/thanos/twice", "--config-path",
                       "-c", f"{context}=kind-mine")
    assert twice.returncode == 0, twice.stdout + twice.stderr
    hint = f"is set twice: in thanos:config and as its own key; keep one (pulumi config rm '{context}')"
    refused = preflight(tmp_path / "twice", "twice")
    assert refused.returncode != 0 and hint in refused.stderr, refused.stdout + refused.stderr
    assert "Set a key with: pulumi config set --path 'thanos:config.<key>' VALUE -s twice" in refused.stderr
    refused = preview(project, tmp_path / "twice", "organization/thanos/twice")
    assert refused.returncode != 0 and hint in refused.stdout, refused.stdout[-4000:] + refused.stderr
