"""The real Pulumi CLI and engine, the real Kubernetes provider and a real API server judge the program (see
tests/realtools/pulumi_cli.py and tests/realtools/kubernetes.py for what is real and what stands in).

dev, as the README runs it, on a cluster shaped like the documented one (one kind node, 4 CPUs, 8 GiB):
preview with the policy pack, up, a second preview and a refresh without changes, realistic edits, destroy.
Then every object of prod, gcp and azure admitted by the API server in a server-side dry run."""

import json
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from preflight.policy import load_policies
from tests.conftest import run_preflight
from tests.realtools.kubernetes import Cluster, wait_until
from tests.realtools.plan import kubernetes_objects
from tests.realtools.pulumi_cli import Project

# One dev, in file order on one worker (the tests of an xdist group run so): the first preview, the first up, the
# edits, the rename, the destroys. Two such sequences side by side were slower on two cores than one after the other:
# each is CPU-bound (engine, provider, API server). The dry runs on a bare API server are a group of their own.
SEQUENCE = pytest.mark.xdist_group("real-engine")
DRY_RUN = pytest.mark.xdist_group("real-engine-dry-run")

STATEFUL_KINDS = ("kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:PersistentVolumeClaim")
"""Types whose replacement loses a workload's state or its volume."""


@contextmanager
def dev_stack(workdir: Path):
    """A control plane shaped like the dev cluster and a new dev stack on a copy of the project; stopped after."""
    cluster = Cluster(workdir / "cluster")
    try:
        project = Project(workdir, cluster.kubeconfig)
        project.init("dev")
        yield project, cluster
    finally:
        cluster.close()
    assert not cluster.leftovers()


# Session-scoped (one per worker): xdist may interleave other modules' tests on a worker, and a module fixture would be
# torn down and rebuilt in between (a fresh cluster in the middle of the sequence).
@pytest.fixture(scope="session")
def dev(tmp_path_factory):
    """A new cluster and stack: previewed and deployed first, then edited, renamed and destroyed."""
    with dev_stack(tmp_path_factory.mktemp("real-engine-dev")) as stack:
        yield stack


def deployed(project: Project) -> None:
    """`pulumi up` to the stack file as it is now: each test below starts from a deployed dev whatever ran before it
    on this worker; skipped when the last run that changed the stack was a successful up of these very stack files
    (a no-op up takes 20-40 s)."""
    if project.deployed_as_it_is():
        return
    run = project.run("up", "-s", "dev", "--yes", "--skip-preview", timeout=1800)
    assert run.returncode == 0, run.explain()


def report(run) -> str:
    """One line of numbers for the closing note and the CI log."""
    return f"pulumi {run.args[0]}: exit {run.returncode}, {run.seconds:.0f} s, {run.changes()}"


@SEQUENCE
def test_preview_of_dev_with_the_pack_skips_no_policy_and_finds_what_the_preflight_finds(dev, tmp_path):
    project, cluster = dev
    assert not cluster.items("/apis/apps/v1/statefulsets"), "the first test of its group: nothing deployed yet"
    run = project.run("preview", "-s", "dev", *project.policy_args("dev"))
    print(report(run))
    assert run.returncode == 0, run.explain()
    findings = run.policy_findings()
    skipped = [f for f in findings if "can't run policy" in f.get("message", "")]
    assert not skipped, [f"{f['policyName']}: {f['message']}" for f in skipped]
    # The preflight's first-preview mode (every computed output unknown) finds exactly what the engine's pack finds.
    proc = run_preflight("dev", "--first-preview", "--json", str(tmp_path / "first-preview.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    planned = json.loads((tmp_path / "first-preview.json").read_text())["violations"]
    # The engine prints each finding after its policy's description.
    descriptions = {policy.name: policy.description for policy in load_policies()}
    through_the_cli = sorted((f["policyName"], f["enforcementLevel"], f.get("resourceUrn", ""),
                              f["message"].removeprefix(descriptions[f["policyName"]]).strip()) for f in findings)
    offline = sorted((v["policy"], v["level"], v["urn"], v["message"]) for v in planned)
    assert through_the_cli == offline
    assert all(level == "advisory" for _, level, _, _ in through_the_cli)  # dev's first preview passes
    print(f"{len(through_the_cli)} findings, all advisory: what a first preview cannot see (generated credentials)")
    assert run.changes().get("create", 0) > 300, run.changes()


@SEQUENCE
def test_up_of_dev_creates_everything_and_every_await_passes(dev):
    project, cluster = dev
    run = project.run("up", "-s", "dev", "--yes", "--skip-preview", *project.policy_args("dev"), timeout=2400)
    print(report(run))
    assert run.returncode == 0, run.explain() + "\n" + "\n".join(cluster.pending_pods())
    assert set(run.steps().values()) <= {"create", "same"}, run.changes()
    assert not cluster.pending_pods()
    jobs = cluster.items("/apis/batch/v1/jobs")
    assert jobs and all(j.get("status", {}).get("succeeded") == 1 for j in jobs), [
        (j["metadata"]["name"], j.get("status")) for j in jobs]


@SEQUENCE
def test_a_second_preview_and_a_refresh_show_no_change(dev):
    project, _ = dev
    deployed(project)
    preview = project.run("preview", "-s", "dev", "--expect-no-changes", "--diff", *project.policy_args("dev"))
    print(report(preview))
    assert preview.returncode == 0, {urn: op for urn, op in preview.steps().items() if op != "same"}
    refresh = project.run("refresh", "-s", "dev", "--yes", "--expect-no-changes")
    print(report(refresh))
    assert refresh.returncode == 0, refresh.explain()


def edit_config(project: Project, key: str, value) -> None:
    """Edit thanos:config in the copy's stack file, as a user edits Pulumi.dev.yaml."""
    import yaml

    path = project.dir / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    node = document["config"]["thanos:config"]
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def replaced(run) -> list[str]:
    return sorted(urn for urn, op in run.steps().items() if op in ("replace", "create-replacement", "delete-replaced"))


@SEQUENCE
def test_scaling_a_ruler_1_2_1_updates_it_in_place(dev):
    # dev's node-spread is ScheduleAnyway: the second replica may share the one node (a ruler fits beside the rest;
    # two store gateways in each cluster do not: the node has ~0.2 CPU to spare).
    project, cluster = dev
    deployed(project)
    statefulset = "/apis/apps/v1/namespaces/thanos-chicago/statefulsets/thanos-ruler"
    uid = cluster.api("GET", statefulset)["metadata"]["uid"]
    for replicas in (2, 1):
        edit_config(project, "thanos.ruler.replicas", replicas)
        run = project.run("up", "-s", "dev", "--yes", "--skip-preview", timeout=1200)
        print(report(run))
        assert run.returncode == 0, run.explain() + "\n" + "\n".join(cluster.pending_pods())
        assert not replaced(run), replaced(run)
        sts = cluster.api("GET", statefulset)
        assert sts["spec"]["replicas"] == replicas and sts["metadata"]["uid"] == uid
        assert run.changes().get("update", 0) >= 1, run.changes()
    assert cluster.get("/api/v1/namespaces/thanos-chicago/persistentvolumeclaims/data-thanos-ruler-1")  # retained


@SEQUENCE
def test_a_bigger_volume_is_refused_on_kinds_class_and_grows_where_the_class_expands(dev):
    project, cluster = dev
    deployed(project)
    claim = "/api/v1/namespaces/thanos-chicago/persistentvolumeclaims/data-thanos-store-0"
    statefulset = "/apis/apps/v1/namespaces/thanos-chicago/statefulsets/thanos-store"
    uid = cluster.api("GET", statefulset)["metadata"]["uid"]
    edit_config(project, "thanos.store.storage-size", "3Gi")
    refused = project.run("up", "-s", "dev", "--yes", "--skip-preview", timeout=1200)
    print(report(refused))
    # kind's "standard" class (local-path) cannot expand: the API server refuses, naming the claim; nothing replaced.
    assert refused.returncode != 0 and "data-thanos-store-0" in refused.output, refused.explain()
    assert "resize" in refused.output, refused.explain()
    assert not replaced(refused), replaced(refused)
    assert cluster.api("GET", claim)["spec"]["resources"]["requests"]["storage"] == "2Gi"
    # A class that expands (every cloud class the prod stacks use): the claim grows in place.
    cluster.api("PATCH", "/apis/storage.k8s.io/v1/storageclasses/standard", {"allowVolumeExpansion": True},
                content_type="application/merge-patch+json")
    grown = project.run("up", "-s", "dev", "--yes", "--skip-preview", timeout=1200)
    print(report(grown))
    cluster.api("PATCH", "/apis/storage.k8s.io/v1/storageclasses/standard", {"allowVolumeExpansion": None},
                content_type="application/merge-patch+json")  # kind's class again, for whatever runs next
    assert grown.returncode == 0, grown.explain()
    assert not replaced(grown), replaced(grown)
    assert cluster.api("GET", claim)["spec"]["resources"]["requests"]["storage"] == "3Gi"
    assert cluster.api("GET", statefulset)["metadata"]["uid"] == uid  # the same StatefulSet, never recreated


@SEQUENCE
def test_a_rotated_secret_and_a_changed_rule_change_in_place(dev):
    project, cluster = dev
    deployed(project)
    rules = "/api/v1/namespaces/thanos-chicago/configmaps/thanos-prometheus-rules"
    auth = "/api/v1/namespaces/thanos-global/secrets/thanos-basic-auth"
    before = {path: cluster.api("GET", path) for path in (rules, auth)}
    project.run("config", "set", "--secret", "thanos:basicAuthPassword", "rotated-in-a-test", "-s", "dev", check=True)
    edit_config(project, "observability.runbooks", "https://runbooks.example.com/thanos.md")
    run = project.run("up", "-s", "dev", "--yes", "--skip-preview", timeout=1200)
    print(report(run))
    assert run.returncode == 0, run.explain()
    assert not replaced(run), replaced(run)
    after = {path: cluster.api("GET", path) for path in (rules, auth)}
    for path in (rules, auth):  # the same objects (ConfigMaps and Secrets are mutable), with new content
        assert after[path]["metadata"]["uid"] == before[path]["metadata"]["uid"], path
        assert after[path].get("data") != before[path].get("data"), path
    assert "runbooks.example.com" in json.dumps(after[rules]["data"])


def edit_cluster(project: Project, **changes) -> None:
    """Edit dev's first cluster (chicago) in the copy's stack file; `name` also moves the global tier's host."""
    import yaml

    path = project.dir / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    config = document["config"]["thanos:config"]
    config["regions"][0]["clusters"][0].update(changes)
    if "name" in changes:
        config["global-view"]["host-cluster"] = changes["name"]
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def stateful_steps(run) -> dict[str, str]:
    """The steps that delete or replace a StatefulSet, a claim or a namespace."""
    kinds = (*STATEFUL_KINDS, "kubernetes:core/v1:Namespace")
    return {urn: op for urn, op in run.steps().items()
            if op not in ("same", "update", "create") and urn.split("::")[2].rsplit("$", 1)[-1] in kinds}


@SEQUENCE
def test_a_destructive_edit_is_refused_by_the_preflight_and_a_renamed_cluster_keeps_everything(dev, tmp_path):
    project, cluster = dev
    deployed(project)
    store = "/apis/apps/v1/namespaces/thanos-chicago/statefulsets/thanos-store"
    claim = "/api/v1/namespaces/thanos-chicago/persistentvolumeclaims/data-thanos-store-0"
    uids = {path: cluster.api("GET", path)["metadata"]["uid"] for path in (store, claim)}
    state = tmp_path / "state.json"
    project.run("stack", "export", "-s", "dev", "--file", str(state), check=True)
    store_urn = next(r["urn"] for r in json.loads(state.read_text())["deployment"]["resources"]
                     if r["urn"].endswith("::chicago-store-statefulset-thanos-store"))
    stack_file = str(project.dir / "Pulumi.dev.yaml")

    def preflight():
        return run_preflight("--config-file", stack_file, "--baseline", str(state), "--no-policy")

    # A new namespace: the real provider replaces every StatefulSet of the cluster; the preflight refuses first.
    edit_cluster(project, namespace="thanos-illinois")
    refused = preflight()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "[refused] chicago-store-statefulset-thanos-store: changing metadata.namespace" in refused.stdout
    assert "regions[].clusters[].namespace" in refused.stdout
    preview = project.run("preview", "-s", "dev")
    assert preview.returncode == 0, preview.explain()
    assert preview.steps()[store_urn] in ("replace", "create-replacement", "delete-replaced"), preview.steps()[store_urn]
    edit_cluster(project, namespace="thanos-chicago")

    # A rename without renamed-from: new resources for the same objects, the old ones deleted. The preflight names
    # each; the real preview fails on the first StatefulSet whose selector (the cluster's name) cannot change.
    edit_cluster(project, name="illinois")
    refused = preflight()
    assert refused.returncode == 1 and "[refused] chicago-store-statefulset-thanos-store: StatefulSet " \
        "thanos-chicago/thanos-store would be deleted" in refused.stdout, refused.stdout + refused.stderr
    assert "renamed-from" in refused.stdout
    preview = project.run("preview", "-s", "dev")
    assert preview.returncode != 0 and any("StatefulSet.apps" in e and "Forbidden: updates to statefulset spec" in e
                                           for e in preview.errors()), preview.explain()

    # With renamed-from: the preflight passes, and the real engine updates in place (aliases).
    edit_cluster(project, name="illinois", **{"renamed-from": ["chicago"]})
    allowed = preflight()
    assert allowed.returncode == 0 and "0 refused" in allowed.stdout, allowed.stdout + allowed.stderr
    up = project.run("up", "-s", "dev", "--yes", "--skip-preview", timeout=1800)
    print(report(up))
    assert up.returncode == 0, up.explain()
    assert stateful_steps(up) == {}, stateful_steps(up)
    for path, uid in uids.items():
        assert cluster.api("GET", path)["metadata"]["uid"] == uid, path
    labels = cluster.api("GET", store)["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == "chicago"  # selectors keep the first name
    receive = cluster.api("GET", "/apis/apps/v1/namespaces/thanos-chicago/statefulsets/thanos-receive")
    assert '--label=cluster=\\"illinois\\"' in json.dumps(receive["spec"]["template"]), "the external label follows"
    again = project.run("preview", "-s", "dev", "--expect-no-changes")
    assert again.returncode == 0, {urn: op for urn, op in again.steps().items() if op != "same"}


@pytest.fixture(scope="session")
def api_server(tmp_path_factory):
    with Cluster(tmp_path_factory.mktemp("real-engine-dry-run")) as cluster:
        cluster.install_crds()
        yield cluster
    assert not cluster.leftovers()


@DRY_RUN
@pytest.mark.parametrize("stack", ["dev", "prod", "gcp", "azure"])
def test_every_object_is_admitted_in_a_server_side_dry_run(api_server, stack):
    objects = [obj for _, obj in kubernetes_objects(stack)]
    for namespace in (o for o in objects if o["kind"] == "Namespace"):
        if api_server.get(f"/api/v1/namespaces/{namespace['metadata']['name']}") is None:
            api_server.api("POST", "/api/v1/namespaces", namespace)
    rejected, warned = [], []
    for obj in objects:
        if obj["kind"] == "Namespace":
            continue
        error, warnings = api_server.dry_run(obj)
        where = f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
        if error:
            rejected.append(f"{where}: {error}")
        warned += [f"{where}: {w}" for w in warnings]
    print(f"{stack}: {len(objects)} objects, {len(rejected)} rejected, {len(warned)} warnings")
    assert not rejected, rejected
    assert not warned, warned
    assert len(objects) > 200


@SEQUENCE
def test_destroy_under_protect_data_keeps_the_blocks_and_without_it_removes_everything(dev):
    # Claims hold blocks (MinIO's, and those Prometheus, receive and the ruler have not uploaded yet); StatefulSets
    # retain them, but deleting a namespace would delete them. protect-data protects the namespaces holding claims:
    # destroy removes the rest and stops there; --exclude-protected does the same without an error.
    project, cluster = dev
    edit_config(project, "protect-data", True)
    deployed(project)
    claim = "/api/v1/namespaces/thanos-chicago/persistentvolumeclaims/data-thanos-minio-0"
    uid = cluster.api("GET", claim)["metadata"]["uid"]
    destroy = project.run("destroy", "-s", "dev", "--yes", "--skip-preview", timeout=1800)
    print(report(destroy))
    assert destroy.returncode != 0 and "protected" in destroy.output, destroy.explain()
    for namespace in ("thanos-chicago", "thanos-seattle", "thanos-global"):
        assert cluster.api("GET", f"/api/v1/namespaces/{namespace}")["status"]["phase"] == "Active"
    assert cluster.api("GET", claim)["metadata"]["uid"] == uid
    assert not cluster.items("/apis/apps/v1/namespaces/thanos-chicago/statefulsets")  # the rest is gone
    kept = project.run("destroy", "-s", "dev", "--yes", "--skip-preview", "--exclude-protected", timeout=1800)
    print(report(kept))
    assert kept.returncode == 0, kept.explain()
    assert cluster.api("GET", claim)["metadata"]["uid"] == uid
    again = project.run("up", "-s", "dev", "--yes", "--skip-preview", timeout=1800)
    print(report(again))
    assert again.returncode == 0, again.explain()
    assert cluster.api("GET", claim)["metadata"]["uid"] == uid  # the new S3 server has the old blocks

    # Without protect-data, destroy removes it all.
    edit_config(project, "protect-data", False)
    deployed(project)
    gone = project.run("destroy", "-s", "dev", "--yes", "--skip-preview", timeout=1800)
    print(report(gone))
    assert gone.returncode == 0, gone.explain()

    def active_thanos_namespaces() -> list[str]:
        return [n["metadata"]["name"] for n in cluster.items("/api/v1/namespaces")
                if n["metadata"]["name"].startswith("thanos") and n.get("status", {}).get("phase") != "Terminating"]

    assert wait_until(lambda: not active_thanos_namespaces(), 60), active_thanos_namespaces()


def test_the_cli_is_not_older_than_the_python_sdk_it_runs():
    # The CLI is the newest the Go proxy serves, the SDK the newest on PyPI here: a CLI older than its SDK would
    # miss engine features the SDK asks for.
    from importlib import metadata

    from tests.realtools.build import tool

    out = subprocess.run([str(tool("pulumi")), "version"], capture_output=True, text=True, timeout=60).stdout.strip()
    cli = tuple(int(part) for part in out.removeprefix("v").split("."))
    sdk = tuple(int(part) for part in metadata.version("pulumi").split(".")[:3])
    assert cli >= sdk, (out, sdk)
