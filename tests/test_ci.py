"""The pull-request workflow works as written: the virtualenvs it creates are the ones the project and the policy
pack name, and the credentials step fetches exactly the clusters each stack names (run with stub cloud CLIs)."""

import os
import re
import subprocess
import sys

import pytest
import yaml

from tests.support.stacks import ROOT

WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "pull-request.yml").read_text())


def stub_clis(tmp_path, aks_group: str):
    """gcloud, az and kubelogin that log their arguments (az answers the resource group lookup)."""
    log = tmp_path / "calls.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("gcloud", "kubelogin"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n')
    (bin_dir / "az").write_text(f'#!/bin/sh\necho "az $*" >> {log}\n'
                                f'if [ "$1 $2" = "aks list" ]; then printf "{aks_group}"; fi\n')
    for path in bin_dir.iterdir():
        path.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": sys.executable}
    return env, log


def fetch(stack, env):
    return subprocess.run([str(ROOT / "ci" / "kube-credentials.sh"), stack], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def test_gke_contexts_are_fetched_from_their_own_names(tmp_path):
    env, log = stub_clis(tmp_path, "")
    proc = fetch("gcp", env)
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines() == [
        "gcloud container clusters get-credentials iowa --location us-central1 --project acme-observability",
        "gcloud container clusters get-credentials belgium --location europe-west1 --project acme-eu-clusters"]


def test_aks_contexts_are_found_in_the_subscription_and_converted_for_entra_id(tmp_path):
    env, log = stub_clis(tmp_path, "rg-aks")
    proc = fetch("azure", env)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert calls[1] == "az aks get-credentials --name aks-amsterdam --resource-group rg-aks --context aks-amsterdam " \
                       "--overwrite-existing"
    assert calls[3].startswith("az aks get-credentials --name aks-dublin ")
    assert calls[-1] == "kubelogin convert-kubeconfig -l azurecli"


def test_a_missing_aks_cluster_fails_naming_the_context(tmp_path):
    env, _ = stub_clis(tmp_path, "")
    proc = fetch("azure", env)
    assert proc.returncode == 1
    assert "context aks-amsterdam of stack azure: no AKS cluster named aks-amsterdam" in proc.stderr


def test_stacks_reading_kubeconfigs_from_stack_outputs_fetch_nothing(tmp_path):
    env, log = stub_clis(tmp_path, "")
    proc = fetch("prod", env)
    assert proc.returncode == 0 and "nothing to fetch" in proc.stdout
    assert not log.exists()


def preview_steps():
    return WORKFLOW["jobs"]["preview"]["steps"]


def test_the_preview_creates_the_virtualenvs_the_project_and_the_pack_name():
    program_venv = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]["options"]["virtualenv"]
    pack_venv = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())["runtime"]["options"]["virtualenv"]
    script = next(s["run"] for s in preview_steps() if s.get("name", "").startswith("Create the program"))
    assert f"python -m venv {program_venv} " in script
    assert f"{program_venv}/bin/pip install --require-hashes -r requirements.lock" in script
    assert f"python -m venv policies/{pack_venv} " in script
    assert f"policies/{pack_venv}/bin/pip install --require-hashes -r policies/requirements.lock" in script


@pytest.mark.parametrize("stack", ["prod", "gcp", "azure"])
def test_every_previewed_stack_gets_credentials_or_an_explicit_skip(stack):
    matrix = {m["stack"]: m for m in WORKFLOW["jobs"]["preview"]["strategy"]["matrix"]["include"]}
    assert stack in matrix
    decide = preview_steps()[0]["run"]
    assert "skipping the ${{ matrix.stack }} preview: no PULUMI_PREVIEW_TOKEN secret" in decide
    assert "repository variable ${{ matrix.cloud_variable }} is not set" in decide
    fetch_step = next(s for s in preview_steps() if s.get("name") == "Fetch cluster credentials")
    assert "ci/kube-credentials.sh ${{ matrix.stack }}" in fetch_step["run"]
    assert all(s["if"].startswith("steps.ready.outputs.run == 'true'") for s in preview_steps()[1:])


def test_the_preview_refuses_edits_that_lose_state_against_the_stacks_last_state():
    step = next(s for s in preview_steps() if s.get("name") == "Refuse edits that lose state")
    assert step["if"] == "steps.ready.outputs.run == 'true'"
    export, check = step["run"].strip().splitlines()
    assert export.startswith("pulumi stack export -s ") and export.endswith(" --file state.json")
    assert check == ".venv/bin/python -m preflight ${{ matrix.stack }} --baseline state.json --no-policy"
    names = [s.get("name") or s.get("uses").split("@")[0] for s in preview_steps()]
    assert names.index("Refuse edits that lose state") > names.index("pulumi/actions")  # the action installs the CLI


DEPLOY_CREDENTIALS = {"secrets.PULUMI_ACCESS_TOKEN", "vars.AWS_ROLE_ARN", "vars.GCP_SERVICE_ACCOUNT",
                      "vars.AZURE_CLIENT_ID"}
"""What changes stacks: a Pulumi token with Stack Write and the deploy roles (environment `production` only)."""
READ_ONLY_CREDENTIALS = {"secrets.PULUMI_PREVIEW_TOKEN", "vars.AWS_PREVIEW_ROLE_ARN",
                         "vars.GCP_PREVIEW_SERVICE_ACCOUNT", "vars.AZURE_PREVIEW_CLIENT_ID"}
"""What previews and drift get: Stack Read, and roles trusted only for the `preview` and `drift` environments."""


def credentials(job: dict) -> set[str]:
    import re

    return {f"{kind}.{name}" for kind, name in re.findall(r"\$\{\{\s*(secrets|vars)\.([A-Z_]+)", yaml.safe_dump(job))}


def test_deploy_credentials_are_seen_only_by_reviewed_production_jobs_and_branch_code_gets_read_only_ones():
    seen = {}
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        triggers = workflow.get(True) or workflow.get("on")  # YAML reads the bare key `on` as true
        for name, job in workflow["jobs"].items():
            used = credentials(job)
            seen[f"{path.stem}/{name}"] = used
            environment = job.get("environment")
            environment = environment.get("name") if isinstance(environment, dict) else environment
            if used & DEPLOY_CREDENTIALS:
                assert environment == "production", (path.name, name, used & DEPLOY_CREDENTIALS)
                assert "pull_request" not in triggers and "pull_request_target" not in triggers, (path.name, name)
    preview = yaml.safe_load((ROOT / ".github/workflows/pull-request.yml").read_text())["jobs"]["preview"]
    assert preview["environment"] == "preview"  # the OIDC subject is `repo:<owner>/<repo>:environment:preview`
    assert {c for c in seen["pull-request/preview"] if c.startswith("secrets.")} == {
        "secrets.PULUMI_PREVIEW_TOKEN", "secrets.GITHUB_TOKEN"}
    assert READ_ONLY_CREDENTIALS <= seen["pull-request/preview"] and READ_ONLY_CREDENTIALS <= seen["drift/drift"]
    assert not seen["pull-request/offline"] & (DEPLOY_CREDENTIALS | READ_ONLY_CREDENTIALS)
    assert seen["deploy/prod"] >= {"secrets.PULUMI_ACCESS_TOKEN", "vars.AWS_ROLE_ARN"}


def test_every_third_party_action_is_pinned_to_a_commit():
    """A tag can be moved to other code; the jobs hold deploy credentials, so every action is a full commit SHA
    (the release it was noted from in a comment, for updates)."""
    found = 0
    for path in sorted((ROOT / ".github").rglob("*.yml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = re.search(r"uses:\s*(\S+)", line)
            if not match or match.group(1).startswith("./"):
                continue
            found += 1
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", match.group(1)), f"{path.name}:{number}: {line.strip()}"
            assert re.search(r"#\s*v\d", line), f"{path.name}:{number}: note the release the commit is"
    assert found >= 20


def test_cloud_stacks_follow_the_pulumi_cloud_model_and_dev_the_passphrase_one():
    """One state and secrets model per path (docs/state-and-ci.md, "State and secrets"): every workflow run of prod, gcp or azure
    names its stack `<org>/thanos/<stack>` on Pulumi Cloud with a Pulumi token and never a passphrase or another
    backend; dev logs in locally with a passphrase. A stack created the other way could not decrypt its config."""
    cloud_stacks = 0
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            env = {**(job.get("env") or {})}
            steps = job.get("steps") or []
            text = "\n".join([step.get("run") or "" for step in steps] +
                             [f"{k}: {v}" for step in steps for k, v in (step.get("with") or {}).items()] +
                             [f"{k}: {v}" for k, v in env.items()])
            if name == "dev":
                assert "pulumi login --local" in text and "PULUMI_CONFIG_PASSPHRASE" in env, path.name
                assert "--secrets-provider passphrase" in text
                continue
            assert "PULUMI_CONFIG_PASSPHRASE" not in text and "PULUMI_BACKEND_URL" not in text, (path.name, name)
            assert "pulumi login --local" not in text and "--secrets-provider" not in text, (path.name, name)
            stacks = re.findall(r"(?:stack-name: |--stack |-s )\"?(\$\{\{ [^}]+\}\}[^\s\"]*|[^\s\"]+)", text)
            for stack in stacks:
                assert stack.startswith("${{ vars.PULUMI_ORG }}/thanos/"), (path.name, name, stack)
                assert {"PULUMI_ACCESS_TOKEN"} & set(env), (path.name, name)
                cloud_stacks += 1
    assert cloud_stacks >= 4
    docs = "".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    assert "pulumi stack init prod --secrets-provider passphrase" not in docs
    assert "pulumi stack init acme/thanos/prod " in (ROOT / "docs" / "state-and-ci.md").read_text()


def test_workflows_run_the_pulumi_cli_the_tests_prove_and_production_only_from_main():
    """Every Pulumi CLI a workflow installs is the version ci/tools.sh builds (the one the real-engine tests run); a
    job that reaches the `production` environment runs only for main (workflow_dispatch may name any branch); a drift
    check that cannot run fails instead of passing as "no drift"."""
    proven = subprocess.run(["bash", str(ROOT / "ci" / "tools.sh"), "--version", "pulumi"], capture_output=True,
                            text=True, check=True).stdout.strip()
    files = [*sorted((ROOT / ".github" / "workflows").glob("*.yml")), ROOT / ".github" / "actions" / "cloud-login" / "action.yml"]
    installs = 0
    for path in files:
        document = yaml.safe_load(path.read_text())
        jobs = document.get("jobs") or {"action": {"steps": document["runs"]["steps"]}}
        for name, job in jobs.items():
            for step in job.get("steps") or []:
                if str(step.get("uses", "")).startswith(("pulumi/setup-pulumi@", "pulumi/actions@")):
                    installs += 1
                    assert str((step.get("with") or {}).get("pulumi-version")) == proven, (path.name, name, step)
            environment = job.get("environment")
            environment = environment.get("name") if isinstance(environment, dict) else environment
            if environment == "production":
                assert job.get("if") == "github.ref == 'refs/heads/main'", (path.name, name)
    assert installs >= 4
    drift = (ROOT / ".github" / "workflows" / "drift.yml").read_text()
    assert "cannot run: no PULUMI_PREVIEW_TOKEN secret" in drift and "exit 1" in drift


STATE_TOKENS = {"PULUMI_ACCESS_TOKEN", "PULUMI_PREVIEW_TOKEN"}
"""Pulumi tokens. Stack Read is enough to decrypt every secret of a stack's config and state (`pulumi stack export
--show-secrets`): the mTLS CA keys, the oauth2-proxy cookie secret, bucket and receiver credentials."""
ENVIRONMENTS = {"production": {"reviewers": True, "branches": "main", "secrets": {"PULUMI_ACCESS_TOKEN"}},
                "preview": {"reviewers": True, "branches": None, "secrets": {"PULUMI_PREVIEW_TOKEN"}},
                "drift": {"reviewers": False, "branches": "main", "secrets": {"PULUMI_PREVIEW_TOKEN"}},
                "dev": {"reviewers": False, "branches": None, "secrets": set()}}
"""The repository's environments as docs/state-and-ci.md, "Who can see which credential", tells to set them up: whether a reviewer
must approve each job, the only branch a job in it may run from (None: any), and the secrets it holds. No
repository-level secret decrypts state: a repository secret reaches every workflow run, and a pull request from a
branch of the repository runs its own, possibly edited, workflow files."""


def readme_credential_rows() -> dict[str, str]:
    """The credential table of docs/state-and-ci.md: credential name -> the "where it lives" cell."""
    rows = {}
    for line in (ROOT / "docs" / "state-and-ci.md").read_text().splitlines():
        match = re.match(r"\| `([A-Z_]+)`[^|]*\| ([^|]+) \|", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_no_token_that_decrypts_state_is_a_repository_secret_and_its_environments_are_guarded():
    """Whatever a branch writes into a workflow, it reaches a Pulumi token only through an environment; each
    environment holding one either waits for a reviewer or runs main only. docs/state-and-ci.md tells the same settings."""
    rows = readme_credential_rows()
    for token in STATE_TOKENS:
        homes = {name for name, env in ENVIRONMENTS.items() if token in env["secrets"]}
        assert homes, token
        for name in homes:
            assert ENVIRONMENTS[name]["reviewers"] or ENVIRONMENTS[name]["branches"] == "main", (token, name)
        assert "repository secret" not in rows[token], (token, rows[token])
        assert all(f"`{name}` environment" in rows[token] for name in homes), (token, rows[token], homes)
    readme = (ROOT / "docs" / "state-and-ci.md").read_text()
    for name, env in ENVIRONMENTS.items():
        if env["secrets"]:
            setting = re.search(rf"^- `{name}`: (.*)$", readme, re.M).group(1)
            assert ("required reviewers" in setting) == env["reviewers"], (name, setting)
            assert ("deployment branches limited to `main`" in setting) == (env["branches"] == "main"), (name, setting)


def test_a_pull_request_job_holds_no_token_that_decrypts_state_unless_a_reviewer_approved_it():
    """Per job: the Pulumi tokens it names come from the environment it runs in (a name the environment does not hold
    would be a repository secret); a job a pull request starts reaches one only through an environment with
    reviewers, and only for the repository's own branches (forks get the offline preflight)."""
    checked = 0
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        triggers = workflow.get(True) or workflow.get("on")
        for name, job in workflow["jobs"].items():
            tokens = {n for kind, n in (c.split(".") for c in credentials(job)) if kind == "secrets"} & STATE_TOKENS
            environment = job.get("environment")
            environment = environment.get("name") if isinstance(environment, dict) else environment
            held = ENVIRONMENTS[environment]["secrets"] if environment else set()
            assert tokens <= held, (path.name, name, tokens - held, environment)
            if "pull_request" in triggers or "pull_request_target" in triggers:
                assert "pull_request_target" not in triggers, path.name  # the base's secrets for a fork's code
                if environment is None:
                    continue  # only repository secrets, and none decrypts state
                checked += 1
                assert ENVIRONMENTS[environment]["reviewers"], (path.name, name, environment)
                assert ENVIRONMENTS[environment]["branches"] is None, (path.name, name, environment)
                assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"], (path.name, name)
            elif tokens:
                assert ENVIRONMENTS[environment]["branches"] == "main" and job.get("if") == \
                    "github.ref == 'refs/heads/main'", (path.name, name)  # schedule, push to main, dispatch of main
    assert checked == 1


def installs() -> list[tuple[str, str, str]]:
    """Every `pip install` line of the workflows and the composite action: (file, job, line)."""
    found = []
    files = [*sorted((ROOT / ".github" / "workflows").glob("*.yml")), ROOT / ".github" / "actions" / "cloud-login" / "action.yml"]
    for path in files:
        document = yaml.safe_load(path.read_text())
        jobs = document.get("jobs") or {"action": {"steps": document["runs"]["steps"]}}
        for name, job in jobs.items():
            for step in job.get("steps") or []:
                found += [(path.name, name, line.strip()) for line in (step.get("run") or "").splitlines()
                          if "pip install" in line]
    return found


def test_jobs_that_hold_credentials_install_only_hashed_locks():
    """Every job but the credential-less tests installs with `--require-hashes` from a lock ci/lock.sh wrote: a
    range resolved on the day (or a replaced file) never runs with a Pulumi token or a cloud role."""
    lines = installs()
    assert len(lines) >= 7
    for file, job, line in lines:
        if (file, job) == ("pull-request.yml", "offline"):
            assert "-r requirements-dev.txt" in line
            continue
        assert "--require-hashes" in line and re.search(r"-r (policies/)?requirements\.lock$", line), (file, job, line)


@pytest.mark.parametrize("requirements", ["requirements.txt", "policies/requirements.txt"])
def test_each_lock_pins_and_hashes_every_package_within_the_ranges(requirements):
    """Each lock pins every requirement within its range, every package with hashes, and (for the versions the test
    virtualenv holds) every dependency those declare for CPython 3.11 on Linux."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lock_text = (ROOT / requirements.replace(".txt", ".lock")).read_text()
    entries = re.findall(r"^(\S+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\\n)?)+)", lock_text, re.M)
    pinned = {canonicalize_name(name): version for name, version, _ in entries}
    assert len(pinned) == len(re.findall(r"^\S+==", lock_text, re.M)) >= 10  # every pin has its hashes
    assert not re.search(r"^(?!#)\S+(?<!\\)$", lock_text, re.M)  # nothing unpinned
    for line in (ROOT / requirements).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            assert requirement.specifier.contains(pinned[canonicalize_name(requirement.name)], prereleases=True), line
    environment = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
                   "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
                   "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
    closed = 0
    for name, version in pinned.items():
        try:
            installed = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if installed.version != version:
            continue
        closed += 1
        for dependency in map(Requirement, installed.requires or []):
            if dependency.marker is None or dependency.marker.evaluate(environment):
                assert canonicalize_name(dependency.name) in pinned, (name, str(dependency))
    assert closed >= len(pinned) // 2


def _run_project(tmp_path):
    """A copy of `./run` with the requirements files, and an installed virtualenv for them in a cache of its own
    whose python only says how it was called."""
    import hashlib
    import shutil

    project = tmp_path / "project"
    (project / "policies").mkdir(parents=True)
    for name in ("run", "requirements.txt", "policies/requirements.txt", "requirements-dev.txt"):
        shutil.copy2(ROOT / name, project / name)
    stamp = hashlib.sha256(b"".join((ROOT / n).read_bytes() for n in
                                    ("requirements.txt", "policies/requirements.txt", "requirements-dev.txt"))).hexdigest()
    venv = tmp_path / "cache" / "thanos-platform" / "venvs" / stamp[:16]
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text('#!/bin/sh\necho "ran $*"\n')
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".requirements-stamp").write_text(stamp + "\n")
    return project, venv


def test_run_needs_no_gnu_only_tool(tmp_path):
    """macOS has neither sha256sum nor flock(1): ./run hashes and locks with Python."""
    import shutil

    project, venv = _run_project(tmp_path)
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "cat", "dirname", "mkdir", "readlink", "rm", "ln", "sh"):
        (tools / tool).symlink_to(shutil.which(tool))
    (tools / "python3").symlink_to(os.path.realpath(sys.executable))  # not a version manager's shim (it runs sed)
    env = {"PATH": str(tools), "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.run([str(tools / "bash"), "./run", "capacity", "prod"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "ran -m capacity prod\n", proc.stderr
    assert os.readlink(project / ".venv") == str(venv)


def test_run_waits_for_another_installer(tmp_path):
    import fcntl
    import time

    project, venv = _run_project(tmp_path)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.Popen(["./run", "capacity", "prod"], cwd=project, env=env, stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert proc.poll() is None  # waiting for the lock
        fcntl.flock(lock, fcntl.LOCK_UN)
        assert proc.wait(timeout=30) == 0 and proc.stdout.read() == "ran -m capacity prod\n"
