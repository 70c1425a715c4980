"""The real Pulumi CLI and engine, the real Kubernetes provider and a real API server judge the program (see
tests/realtools/pulumi_cli.py and tests/realtools/kubernetes.py for what is real and what stands in).

dev, as docs/deploying.md runs it, on a cluster shaped like the documented one (one kind node, 4 CPUs, 8 GiB):
preview with the policy pack, up, a second preview and a refresh without changes, realistic edits, destroy.
Then every object of prod, gcp and azure admitted by the API server in a server-side dry run."""

import json
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

from components.platform.common import OBJSTORE_KEY, OBJSTORE_SECRET
from preflight.policy import load_policies
from tests.support.stacks import run_preflight
from tests.realtools.kubernetes import NODE, Cluster, wait_until
from tests.realtools.plan import kubernetes_objects
from tests.realtools.pulumi_cli import Project

# One dev, in file order on one worker (the tests of an xdist group run so): the first preview, the first up, the
# edits, the rename, the destroys. Two such sequences side by side were slower on two cores than one after the other:
# each is CPU-bound (engine, provider, API server). The dry runs on a bare API server are a group of their own.
SEQUENCE = pytest.mark.xdist_group("real-engine")
DRY_RUN = pytest.mark.xdist_group("real-engine-dry-run")

STATEFUL_KINDS = ("kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:PersistentVolumeClaim")
"""Types whose replacement loses a workload's state or its volume."""
LATE_INGESTORS = (r"^thanos-receive-[1-9]", 12)
"""dev runs one ingestor per cluster: any further one becomes ready 12 s after it is scheduled, so the scaling test
sees new ingestors pending (the real kubelet takes that long and more: image pull, WAL replay, readiness probe)."""


@contextmanager
def dev_stack(workdir: Path):
    """A control plane shaped like the dev cluster and a new dev stack on a copy of the project; stopped after."""
    cluster = Cluster(workdir / "cluster", late_ready=LATE_INGESTORS)
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
def test_a_rotated_password_and_a_changed_rule_change_in_place(dev, tmp_path):
    """team-a's basic-auth password replaced (`pulumi up --replace` on it, what rotating one person's password is) and a
    rule edited: only the password is replaced; the tenant gate's config Secret (the users' hashes, which Caddy's
    --watch reloads) and the rules ConfigMap are the same objects with new content."""
    project, cluster = dev
    deployed(project)
    rules = "/api/v1/namespaces/thanos-chicago/configmaps/thanos-prometheus-rules"
    gate = "/api/v1/namespaces/thanos-global/secrets/thanos-tenant-gate-config"
    before = {path: cluster.api("GET", path) for path in (rules, gate)}
    state = tmp_path / "state.json"
    project.run("stack", "export", "-s", "dev", "--file", str(state), check=True)
    password = [r["urn"] for r in json.loads(state.read_text())["deployment"]["resources"]
                if r["urn"].endswith("-basic-auth-team-a") and "RandomPassword" in r["type"]]
    assert len(password) == 1, password
    edit_config(project, "observability.runbooks", "https://runbooks.example.com/thanos.md")
    run = project.run("up", "-s", "dev", "--yes", "--skip-preview", "--replace", password[0], timeout=1200)
    print(report(run))
    assert run.returncode == 0, run.explain()
    assert {urn for urn in replaced(run)} == set(password), replaced(run)
    after = {path: cluster.api("GET", path) for path in (rules, gate)}
    for path in (rules, gate):  # the same objects (ConfigMaps and Secrets are mutable), with new content
        assert after[path]["metadata"]["uid"] == before[path]["metadata"]["uid"], path
        assert after[path].get("data") != before[path].get("data"), path
    assert "runbooks.example.com" in json.dumps(after[rules]["data"])


RING_NAMESPACES = ("thanos-chicago", "thanos-seattle")


@SEQUENCE
def test_the_hashring_lists_only_ready_ingestors_while_they_scale_up_and_down(dev, tmp_path):
    """Scale dev's ingestors 1 -> 3 (the new ones pending 12 s), drain two, then 3 -> 1, each with the real engine,
    while an observer samples every hashring ConfigMap, ingestor and router: no sample has a ring (the ConfigMap's,
    or the one a ready router started on) listing a pod that is not ready, nor a moment without a ready router. The
    one-step shrink is refused by the preflight against the real state."""
    from tests.support.rings import RingObserver

    project, cluster = dev
    deployed(project)
    # Room for four more ingestors (100m and 256Mi each): the documented node has about 0.2 CPU and 280 MiB to spare.
    node = {k: v for k, v in cluster.api("GET", f"/api/v1/nodes/{NODE}")["status"]["allocatable"].items()
            if k in ("cpu", "memory")}
    roomier = {"cpu": "5", "memory": "10Gi"}
    cluster.api("PATCH", f"/api/v1/nodes/{NODE}/status", {"status": {"capacity": roomier, "allocatable": roomier}},
                content_type="application/merge-patch+json")
    statefulset = "/apis/apps/v1/namespaces/{}/statefulsets/thanos-receive"
    seen: dict[str, RingObserver] = {}
    grown = tmp_path / "grown-state.json"
    began = time.monotonic()
    try:
        for step, ingestors, draining, ring in (("grow", 3, 0, 3), ("drain", 3, 2, 1), ("shrink", 1, 0, 1)):
            if step == "shrink":
                # Against the grown state, lowering `ingestors` without the drain is refused; against the drained
                # state it passes.
                drained = tmp_path / "drained-state.json"
                project.run("stack", "export", "-s", "dev", "--file", str(drained), check=True)
                edit_config(project, "thanos.receive", {**receive_config(project), "ingestors": 1, "draining": 0})
                refused = run_preflight("--config-file", str(project.dir / "Pulumi.dev.yaml"), "--baseline",
                                        str(grown), "--no-policy")
                assert refused.returncode == 1, refused.stdout + refused.stderr
                assert ("[refused] chicago-receive-configmap-thanos-receive-hashring: hashring thanos-chicago/"
                        "thanos-receive-hashring 3 -> 1 endpoints: thanos-receive-1, thanos-receive-2 leave it in the "
                        "same step as their pods go") in refused.stdout, refused.stdout
                assert "thanos.receive.draining: 2 with ingestors: 3, pulumi up" in refused.stdout
                allowed = run_preflight("--config-file", str(project.dir / "Pulumi.dev.yaml"), "--baseline",
                                        str(drained), "--no-policy")
                assert allowed.returncode == 0 and "0 refused" in allowed.stdout, allowed.stdout + allowed.stderr
            edit_config(project, "thanos.receive", {**receive_config(project), "ingestors": ingestors,
                                                    "draining": draining})
            with RingObserver(cluster, RING_NAMESPACES) as observer:
                run = project.run("up", "-s", "dev", "--yes", "--skip-preview", timeout=600)
            seen[step] = observer
            print(report(run))
            for namespace in RING_NAMESPACES:
                print(f"{step} {namespace}: {len(observer.samples[namespace])} samples", *observer.timeline(namespace),
                      sep="\n  ")
            assert run.returncode == 0, run.explain() + "\n" + "\n".join(cluster.pending_pods())
            assert not observer.violations, observer.violations[:10]
            assert not replaced(run), replaced(run)
            for namespace in RING_NAMESPACES:
                last = observer.samples[namespace][-1]
                assert len(last.ring) == ring and len(last.present) == len(last.ready) == ingestors, last
                assert cluster.api("GET", statefulset.format(namespace))["spec"]["replicas"] == ingestors
                assert {h for _, h in last.routers} == {last.ring_hash}, last  # every router on the new ring
            if step == "grow":
                project.run("stack", "export", "-s", "dev", "--file", str(grown), check=True)
        # Each step was observed where it could have gone wrong: the new pods pending while the ring left them out,
        # the drained pods running out of the ring, then gone.
        for namespace in RING_NAMESPACES:
            grow, drain = seen["grow"].samples[namespace], seen["drain"].samples[namespace]
            assert any(len(s.present) == 3 and len(s.ready) == 1 and len(s.ring) == 1 for s in grow), grow
            assert any(len(s.ready) == 3 and len(s.ring) == 1 for s in drain), drain
    finally:
        cluster.api("PATCH", f"/api/v1/nodes/{NODE}/status", {"status": {"capacity": node, "allocatable": node}},
                    content_type="application/merge-patch+json")
    print(f"hashring scaled 1 -> 3 -> drained -> 1 in {time.monotonic() - began:.0f} s, "
          f"{sum(len(o.samples[n]) for o in seen.values() for n in RING_NAMESPACES)} "
          "samples, no ring listing an unready pod")


def receive_config(project: Project) -> dict[str, Any]:
    """thanos.receive as the copy's stack file has it now."""
    import yaml

    document = yaml.safe_load((project.dir / "Pulumi.dev.yaml").read_text())
    return dict(document["config"]["thanos:config"]["thanos"]["receive"])


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


def refusal_of(stdout: str, name: str) -> str:
    """What the preflight's `--baseline --verbose` says of refusing `name`: its own line, or the cause of the group
    of refusals it is listed in (one line with the cause, the next with every name)."""
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"  [refused] {name}: "):
            return line.split(": ", 1)[1]
        names = lines[i + 1].strip().split(", ") if i + 1 < len(lines) else []
        if line.startswith("  [refused] ") and " resources: " in line and name in names:
            return line.split(" resources: ", 1)[1]
    raise AssertionError(f"the preflight does not refuse {name}:\n{stdout}")


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
        return run_preflight("--config-file", stack_file, "--baseline", str(state), "--no-policy", "--verbose")

    # A new namespace: the real provider replaces every StatefulSet of the cluster; the preflight refuses first.
    edit_cluster(project, namespace="thanos-illinois")
    refused = preflight()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refusal_of(refused.stdout, "chicago-store-statefulset-thanos-store").startswith(
        "changing metadata.namespace"), refused.stdout
    assert "regions[].clusters[].namespace" in refused.stdout
    preview = project.run("preview", "-s", "dev")
    assert preview.returncode == 0, preview.explain()
    assert preview.steps()[store_urn] in ("replace", "create-replacement", "delete-replaced"), preview.steps()[store_urn]
    edit_cluster(project, namespace="thanos-chicago")

    # A rename without renamed-from: new resources for the same objects, the old ones deleted. The preflight names
    # each; the real preview fails on the first StatefulSet whose selector (the cluster's name) cannot change.
    edit_cluster(project, name="illinois")
    refused = preflight()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "would be deleted" in refusal_of(refused.stdout, "chicago-store-statefulset-thanos-store"), refused.stdout
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
@pytest.mark.parametrize("stack", ["dev", "laptop", "prod", "gcp", "azure"])
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
    assert len(objects) > 150  # a whole platform each (the one-cluster laptop: 174)


DATA_NAMESPACES = ("thanos-chicago", "thanos-seattle", "thanos-global")
"""dev's namespaces: every claim of the data path is in one of them."""


def claims(cluster: Cluster) -> dict[str, tuple[str, str]]:
    """namespace/name -> (uid, bound volume) of every claim in dev's namespaces, as the API server lists them."""
    return {f"{ns}/{c['metadata']['name']}": (c["metadata"]["uid"], c["spec"].get("volumeName", ""))
            for ns in DATA_NAMESPACES for c in cluster.items(f"/api/v1/namespaces/{ns}/persistentvolumeclaims")}


def claimed(cluster: Cluster) -> set[str]:
    """namespace/name of the claim of every replica of every StatefulSet with claim templates (what the plan asks for)."""
    return {f"{ns}/{template['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"
            for ns in DATA_NAMESPACES for sts in cluster.items(f"/apis/apps/v1/namespaces/{ns}/statefulsets")
            for template in sts["spec"].get("volumeClaimTemplates") or [] for ordinal in range(sts["spec"]["replicas"])}


MINIO_OBJECTS = (("apps/v1", "StatefulSet", "/apis/apps/v1/namespaces/{}/statefulsets"),
                 ("batch/v1", "Job", "/apis/batch/v1/namespaces/{}/jobs"), ("v1", "Secret", "/api/v1/namespaces/{}/secrets"),
                 ("v1", "Service", "/api/v1/namespaces/{}/services"))


@dataclass
class DeployedMinio:
    """A deployed MinIO server running for real: a client of it as the user Thanos runs as, and the credentials."""

    client: Any
    bucket: str
    user_password: str
    root_password: str


@contextmanager
def deployed_minio(cluster: Cluster, workdir: Path,
                   before_setup: Callable[[dict[str, DeployedMinio]], None] | None = None):
    """The MinIO servers as deployed (their StatefulSets, setup Jobs, Secrets and Services read back from the API
    server, credentials included) run for real on the claim folders under `workdir` (kept from one start to the
    next): each server started, `before_setup` called, then every setup Job run with the real mc. Yields namespace ->
    DeployedMinio (the Thanos user's keys from the deployed objstore Secret); stopped after."""
    import base64

    import boto3
    import yaml
    from botocore.config import Config

    from tests.realtools.harness import Harness
    from tests.realtools.pods import planned_containers

    objects = []
    for namespace in DATA_NAMESPACES:
        for api_version, kind, path in MINIO_OBJECTS:
            objects += [(namespace, {"apiVersion": api_version, "kind": kind, **item})
                        for item in cluster.items(path.format(namespace))
                        if kind not in ("StatefulSet", "Job") or item["spec"]["template"]["spec"]["containers"][0][
                            "image"].startswith(("quay.io/minio/minio", "quay.io/minio/mc"))]
    containers = planned_containers("dev", objects)
    servers = [c for c in containers if c.kind == "StatefulSet"]
    jobs = sorted((c for c in containers if c.kind == "Job"), key=lambda c: not c.workload.endswith("make-bucket"))
    assert servers and jobs, [c.id for c in containers]
    with Harness(workdir, objects, filesystem_buckets=False, kubernetes={ns: "kind" for ns in DATA_NAMESPACES}) as harness:
        started = {c.namespace: harness.start(c) for c in servers}
        for process in started.values():
            assert process.wait_ready(60) == "ready", process.output()
            assert harness.wait_published(process, 10), process.container.id  # the Jobs reach it by its Service
        clients = {}
        for namespace, minio in started.items():
            secret = next(o for ns, o in objects if ns == namespace and o["kind"] == "Secret"
                          and o["metadata"]["name"] == OBJSTORE_SECRET)
            config = yaml.safe_load(base64.b64decode(secret["data"][OBJSTORE_KEY]))["config"]
            client = boto3.client("s3", endpoint_url=f"http://{minio.ip}:{minio.ports['--address']}",
                                  aws_access_key_id=config["access_key"], aws_secret_access_key=config["secret_key"],
                                  region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                                                         retries={"max_attempts": 2}))
            clients[namespace] = DeployedMinio(client, config["bucket"], config["secret_key"],
                                               minio.container.env["MINIO_ROOT_PASSWORD"])
        if before_setup:
            before_setup(clients)
        for job in jobs:
            process = harness.start(job)
            assert process.wait_exit(120) == 0, f"{job.id}:\n{process.output()}"
        yield clients
    assert not harness.leftovers(), harness.leftovers()


@SEQUENCE
def test_destroy_under_protect_data_keeps_the_blocks_and_without_it_removes_everything(dev):
    # Claims hold blocks (MinIO's, and those Prometheus, receive and the ruler have not uploaded yet); StatefulSets
    # retain them, but deleting a namespace would delete them. protect-data protects the namespaces holding claims:
    # destroy removes the rest and stops there; --exclude-protected does the same without an error.
    project, cluster = dev
    edit_config(project, "protect-data", True)
    deployed(project)
    kept_claims = claims(cluster)
    assert claimed(cluster) <= kept_claims.keys(), claimed(cluster) - kept_claims.keys()
    assert all(volume for _, volume in kept_claims.values()), kept_claims  # each bound to its volume
    print(f"{len(kept_claims)} claims in {len(DATA_NAMESPACES)} namespaces: {sorted(kept_claims)}")
    # Blocks written into each MinIO as the user Thanos runs as, under the credentials of this deployment.
    began = time.monotonic()
    blocks = {}
    with deployed_minio(cluster, project.workdir / "minio") as clients:
        for namespace, minio in clients.items():
            block = f"01JEXAMPLE{namespace.upper()[-6:]}"
            blocks[namespace] = {f"{block}/meta.json": f'{{"ulid": "{block}"}}'.encode(),
                                 f"{block}/chunks/000001": bytes(range(256)) * 4096}
            for key, body in blocks[namespace].items():
                minio.client.put_object(Bucket=minio.bucket, Key=key, Body=body)
        first = {namespace: (minio.root_password, minio.user_password) for namespace, minio in clients.items()}
    print(f"real MinIO on the deployed objects, {len(blocks)} servers, blocks written: {time.monotonic() - began:.0f} s")

    destroy = project.run("destroy", "-s", "dev", "--yes", "--skip-preview", timeout=1800)
    print(report(destroy))
    assert destroy.returncode != 0 and "protected" in destroy.output, destroy.explain()
    for namespace in DATA_NAMESPACES:
        assert cluster.api("GET", f"/api/v1/namespaces/{namespace}")["status"]["phase"] == "Active"
    assert claims(cluster) == kept_claims
    assert not cluster.items("/apis/apps/v1/namespaces/thanos-chicago/statefulsets")  # the rest is gone
    kept = project.run("destroy", "-s", "dev", "--yes", "--skip-preview", "--exclude-protected", timeout=1800)
    print(report(kept))
    assert kept.returncode == 0, kept.explain()
    assert claims(cluster) == kept_claims
    again = project.run("up", "-s", "dev", "--yes", "--skip-preview", timeout=1800)
    print(report(again))
    assert again.returncode == 0, again.explain()
    assert claims(cluster) == kept_claims  # the new StatefulSets have the old claims, bound to the same volumes

    # The re-up's MinIO on the old data directories, with the credentials the re-up deployed (generated again: the
    # passwords are not protected): the server starts under the new root password, its setup Jobs run again (as root),
    # and the user Thanos runs as reads the old blocks.
    began = time.monotonic()
    refused = {}

    def before_setup(clients: dict[str, DeployedMinio]) -> None:
        # MinIO keeps its users and policies in .minio.sys, not sealed by the root credentials: the old user is still
        # there with its old password, so a new one is refused until the re-up's user Job sets it.
        for namespace, minio in clients.items():
            if minio.user_password != first[namespace][1]:
                with pytest.raises(ClientError) as error:
                    minio.client.get_object(Bucket=minio.bucket, Key=next(iter(blocks[namespace])))
                refused[namespace] = error.value.response["Error"]["Code"]

    with deployed_minio(cluster, project.workdir / "minio", before_setup) as clients:
        assert clients.keys() == blocks.keys()
        for namespace, minio in clients.items():
            for key, body in blocks[namespace].items():
                assert minio.client.get_object(Bucket=minio.bucket, Key=key)["Body"].read() == body, (namespace, key)
        regenerated = {namespace: (minio.root_password, minio.user_password) != first[namespace]
                       for namespace, minio in clients.items()}
    assert all(code == "SignatureDoesNotMatch" for code in refused.values()), refused
    print(f"the re-up's MinIO serves the old blocks to the Thanos user: credentials regenerated {regenerated}, the new "
          f"password refused before the setup Jobs {refused}, {time.monotonic() - began:.0f} s")

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


LAPTOP = pytest.mark.xdist_group("real-engine-laptop")


def _quantity(value: str) -> float:
    """A Kubernetes CPU or memory quantity as a number (cores, bytes)."""
    units = {"m": 1e-3, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value[:-len(suffix)]) * factor
    return float(value)


@LAPTOP
def test_the_laptop_stack_comes_up_on_one_laptop_sized_node_with_room_to_spare(tmp_path_factory):
    """The laptop stack as docs/laptop.md runs it: a preview with the pack and `pulumi up` on one kind node of 4 CPUs
    and 8 GiB beside kind's own pods and Envoy Gateway (its Gateway gets an address; no ingress-nginx): every pod
    scheduled and ready, every Job done; what the node's pods request leaves at least a CPU and 2 GiB free."""
    workdir = tmp_path_factory.mktemp("real-engine-laptop")
    with Cluster(workdir / "cluster", entry="envoy-gateway") as cluster:
        project = Project(workdir, cluster.kubeconfig)
        # Pulumi.yaml declares thanos:config a mapping (default empty, for `pulumi new`'s answers): the CLI refuses a
        # string before the program runs.
        (project.dir / "Pulumi.typo.yaml").write_text("config:\n  thanos:config: laptop\n")
        project.init("typo")
        refused = project.run("preview", "-s", "typo")
        assert refused.returncode != 0 and "'thanos:config' must be of type 'object'" in refused.output, refused.explain()
        project.init("laptop")
        preview = project.run("preview", "-s", "laptop", *project.policy_args("laptop"))
        print(report(preview))
        assert preview.returncode == 0, preview.explain()
        up = project.run("up", "-s", "laptop", "--yes", "--skip-preview", *project.policy_args("laptop"),
                         timeout=1800)
        print(report(up))
        assert up.returncode == 0, up.explain() + "\n" + "\n".join(cluster.pending_pods())
        assert not cluster.pending_pods()
        jobs = cluster.items("/apis/batch/v1/jobs")
        assert jobs and all(j.get("status", {}).get("succeeded") == 1 for j in jobs), [
            (j["metadata"]["name"], j.get("status")) for j in jobs]
        gateway = cluster.get("/apis/gateway.networking.k8s.io/v1/namespaces/thanos-global/gateways/thanos")
        assert gateway["status"]["addresses"], gateway.get("status")
        requested = {"cpu": 0.0, "memory": 0.0}
        running = [p for p in cluster.items("/api/v1/pods") if p["status"].get("phase") == "Running"]
        for pod in running:
            for container in pod["spec"]["containers"]:
                for key in requested:
                    requested[key] += _quantity(((container.get("resources") or {}).get("requests") or {}).get(key, "0"))
        node = cluster.get(f"/api/v1/nodes/{NODE}")["status"]["allocatable"]
        free = {key: _quantity(node[key]) - requested[key] for key in requested}
        print(f"laptop on one node of {node['cpu']} CPU / {node['memory']}: {len(running)} pods request "
              f"{requested['cpu']:.2f} CPU and {requested['memory'] / 2 ** 30:.2f} GiB, "
              f"{free['cpu']:.2f} CPU and {free['memory'] / 2 ** 30:.2f} GiB free")
        assert free["cpu"] >= 1 and free["memory"] >= 2 * 2 ** 30, free


def test_the_cli_is_not_older_than_the_python_sdk_it_runs():
    # The CLI is the newest the Go proxy serves, the SDK the newest on PyPI here: a CLI older than its SDK would
    # miss engine features the SDK asks for.
    from importlib import metadata

    from tests.realtools.build import tool

    out = subprocess.run([str(tool("pulumi")), "version"], capture_output=True, text=True, timeout=60).stdout.strip()
    cli = tuple(int(part) for part in out.removeprefix("v").split("."))
    sdk = tuple(int(part) for part in metadata.version("pulumi").split(".")[:3])
    assert cli >= sdk, (out, sdk)
