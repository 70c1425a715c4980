"""The deploy workflow's publish step, run by bash with the real Pulumi CLI (the pack's real analyzer reports its
name and version) against the STAND-IN Pulumi Cloud API: three merges to main, as the workflow sees them."""

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import yaml

from tests.support.stacks import ROOT
from .realtools import tool
from .realtools.pulumi_cloud import PulumiCloud

ORG = "acme"


def publish_step() -> str:
    """The `pulumi policy publish` step of deploy.yml, the org variable filled in. Its virtualenv line is replaced
    by one prepared from this machine's packages (pip is not what is under test)."""
    jobs = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())["jobs"]
    step = next(s for s in jobs["policy-pack"]["steps"] if s.get("name") == "pulumi policy publish")
    script = step["run"].replace("${{ vars.PULUMI_ORG }}", ORG)
    line = "python -m venv policies/venv && policies/venv/bin/pip install --require-hashes -r policies/requirements.lock"
    assert line in script
    return script.replace(line, "test -x policies/venv/bin/python")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", *args], cwd=repo,
                          capture_output=True, text=True, check=True).stdout


def checkout(tmp_path: Path) -> Path:
    """A repository with the pack, the CI scripts and the ignore file, one commit, and the pack's virtualenv."""
    repo = tmp_path / "repo"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "venv", "*.pyc")
    for part in ("policies", "ci"):
        shutil.copytree(ROOT / part, repo / part, ignore=ignore)
    for name in (".gitignore", "README.md"):
        shutil.copy(ROOT / name, repo / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the pack")
    rule = repo / "policies" / "thanos_policies" / "ha.py"  # a second change to the pack: version 0.2.0, whatever
    rule.write_text(rule.read_text() + "\n")               # PulumiPolicy.yaml says (0.1.0)
    git(repo, "commit", "-q", "-am", "a rule changed")
    venv.create(repo / "policies" / "venv", with_pip=False)
    site = next((repo / "policies" / "venv" / "lib").glob("python3*/site-packages"))
    (site / "project.pth").write_text("\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")
    return repo


def test_each_merge_publishes_a_changed_pack_once_and_skips_an_unchanged_one(tmp_path):
    repo = checkout(tmp_path)
    with PulumiCloud() as cloud:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")},
               "PATH": os.pathsep.join([str(Path(sys.executable).parent), str(tool("pulumi").parent),
                                        str(tool("pulumi-language-python").parent), os.environ["PATH"]]),
               "PULUMI_HOME": str(tmp_path / "home"), "PULUMI_ACCESS_TOKEN": cloud.token, "NO_COLOR": "1",
               "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true"}
        subprocess.run([str(tool("pulumi")), "login", cloud.url, "--non-interactive"], env=env, check=True,
                       capture_output=True, timeout=120)

        def merge() -> subprocess.CompletedProcess:
            """The step on a fresh checkout of main (the version it stamps is never committed)."""
            git(repo, "checkout", "-q", "--", "policies/PulumiPolicy.yaml")
            return subprocess.run(["bash", "-euo", "pipefail", "-c", publish_step()], cwd=repo, env=env,
                                  capture_output=True, text=True, timeout=600)

        first = merge()
        assert first.returncode == 0, first.stdout + first.stderr
        assert cloud.published == [(ORG, "thanos-guard", "0.2.0")]
        # The pack's virtualenv stays out of the upload (the repository's .gitignore, which the CLI honours).
        assert cloud.uploads["thanos-guard@0.2.0"] < 1_000_000, cloud.uploads

        # A merge that leaves the pack alone: the same version, already published, so the step skips it.
        (repo / "README.md").write_text("changed\n")
        git(repo, "commit", "-q", "-m", "docs only", "--", "README.md")
        second = merge()
        assert second.returncode == 0, second.stdout + second.stderr
        assert "thanos-guard 0.2.0 (policies/ at tree " in second.stdout and "is already published" in second.stdout
        assert cloud.published == [(ORG, "thanos-guard", "0.2.0")]

        # What the step used to do on every merge after the first: publish the same version, refused.
        again = subprocess.run([str(tool("pulumi")), "policy", "publish", ORG, "--non-interactive"],
                               cwd=repo / "policies", env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode != 0 and "thanos-guard version 0.2.0 already exists" in again.stderr, again.stderr

        # A merge that changes the pack: a new version, published.
        rule = repo / "policies" / "thanos_policies" / "ha.py"
        rule.write_text(rule.read_text() + "\n")
        git(repo, "commit", "-q", "-m", "a rule changed", "--", str(rule))
        third = merge()
        assert third.returncode == 0, third.stdout + third.stderr
        assert cloud.published == [(ORG, "thanos-guard", "0.2.0"), (ORG, "thanos-guard", "0.3.0")]
