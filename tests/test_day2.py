"""Day 2: the upgrade order read from recorded dependencies, the post-deploy validation script against a fake Thanos
on loopback, the validation Jobs in the plan, the deploy and drift workflows."""

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from components.operations import validate_deploy

from tests.support.stacks import ROOT, run_probe

# --- upgrade order -----------------------------------------------------------------------------------------------

ORDER = ["thanos-compactor", "thanos-store", "thanos-ruler", "thanos-query-pods", "thanos-receive", "thanos-prometheus"]


def workload_dependencies(plan, cluster, namespace):
    """{workload name: names of the workloads it waits for}, from the recorded dependsOn."""
    by_urn = {r["urn"]: r for r in plan["resources"]}
    workloads = {r["urn"]: r["inputs"]["metadata"]["name"] for r in plan["resources"]
                 if r["type"] in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")
                 and r["inputs"]["metadata"]["namespace"] == namespace and f"k8s-{cluster}" in (r["provider"] or "")}
    return {name: {workloads[u] for u in by_urn[urn]["dependsOn"] if u in workloads} for urn, name in workloads.items()}


@pytest.mark.parametrize(("stack", "cluster", "namespace"), [("prod", "chicago", "thanos"), ("dev", "seattle", "thanos-seattle")])
def test_version_changes_roll_in_the_operations_guides_order(planned, stack, cluster, namespace):
    """compactor, store, ruler, query + query-frontend, receive (router and ingestors), Prometheus last: each tier
    depends on the one before it, so `pulumi up` updates them in that order."""
    deps = workload_dependencies(planned[stack].plan, cluster, namespace)
    compactors = {"thanos-compactor", *(["thanos-compactor-receive"] if stack == "prod" else [])}  # prod: receive's shard
    assert all(deps[name] == set() for name in compactors)
    assert deps["thanos-store"] == compactors
    assert deps["thanos-ruler"] == {"thanos-store"}
    assert deps["thanos-query-pods"] == deps["thanos-query-frontend-pods"] == {"thanos-ruler"}
    assert deps["thanos-receive-router"] == {"thanos-query-pods", "thanos-query-frontend-pods"}
    ingestors = sorted(n for n in deps if n.startswith("thanos-receive") and n != "thanos-receive-router")
    assert ingestors
    # Zoned ingestors roll one zone after another: each waits for the zone before it.
    for index, name in enumerate(ingestors):
        assert deps[name] == deps["thanos-receive-router"] | set(ingestors[index - 1:index] if index else []), name
    assert deps["thanos-prometheus"] == {"thanos-receive-router"} | set(ingestors)
    # The hashring waits for every ingestor's rollout and the routers for the hashring: a grown ring lists ready pods.
    by_name = {r["name"]: r for r in planned[stack].plan["resources"]}
    ring = by_name[f"{cluster}-receive-configmap-thanos-receive-hashring"]
    assert {by_name[f"{cluster}-receive-statefulset-{name}"]["urn"] for name in ingestors} <= set(ring["dependsOn"])
    assert ring["urn"] in by_name[f"{cluster}-receive-deployment-thanos-receive-router"]["dependsOn"]


def test_rolling_updates_take_one_pod_at_a_time_and_the_compactor_never_overlaps(planned):
    for obj in planned["prod"].objects(cluster="chicago"):
        if obj["kind"] == "Deployment":
            assert obj["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] in (0, 1)
        if obj["kind"] == "StatefulSet":
            assert obj["spec"]["updateStrategy"] == {"type": "RollingUpdate"}  # one pod at a time, highest first
            if obj["metadata"]["name"] == "thanos-compactor":
                # One replica: the old pod is gone before the new one starts (what Recreate means for a Deployment).
                assert obj["spec"]["replicas"] == 1


# --- post-deploy validation --------------------------------------------------------------------------------------

class FakeThanos:
    """A loopback HTTP server answering the Thanos APIs the validation reads, from a mutable dict."""

    def __init__(self):
        self.answers = {
            "/api/v1/blocks": {"status": "success", "data": {"blocks": [], "refreshedAt": "2026-11-22T00:00:00Z"}},
            "/api/v1/stores": {"status": "success", "data": {
                "sidecar": [{"name": "10.0.0.1:10901", "lastError": None}, {"name": "10.0.0.2:10901", "lastError": None}],
                "store": [{"name": "10.0.0.3:10901", "lastError": None}]}},
            "/api/v1/query": {"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {"cluster": "chicago"}, "value": [0, "12"]}]}},
            "/api/v1/rules": {"status": "success", "data": {"groups": [{"name": "thanos", "rules": []}]}},
            "/api/v2/status": {"cluster": {"status": "ready", "name": "a", "peers": [
                {"name": n, "address": f"10.0.1.{i}:9094"} for i, n in enumerate("abc")]}},
        }
        self.queries = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                parsed = urlparse(self.path)
                if parsed.path == "/api/v1/query":
                    fake.queries.append(parse_qs(parsed.query)["query"][0])
                answer = fake.answers.get(parsed.path)
                body = json.dumps(answer).encode() if answer is not None else b"not found"
                self.send_response(200 if answer is not None else 404)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def plan_for(url, **overrides):
    plan = {"bucket_web": [url], "queries": [{"url": url, "store_types": {"sidecar": 2, "store": 1},
                                               "clusters": ["chicago"]}], "rulers": [url], "attempts": 2, "interval": 0,
            "alertmanagers": [{"url": url, "peers": 3}]}
    plan.update(overrides)
    return plan


def validate(plan):
    out = io.StringIO()
    code = validate_deploy.run(plan, out)
    return code, out.getvalue()


def test_validation_passes_on_a_healthy_deployment():
    with FakeThanos() as fake:
        code, output = validate(plan_for(fake.url))
    assert code == 0 and "deployment valid: 5 checks passed" in output
    assert fake.queries == ["count by (cluster) (up)"]


@pytest.mark.parametrize(("break_it", "message"), [
    (lambda a: a.pop("/api/v1/blocks"), "bucket {url}: HTTP Error 404: Not Found"),
    (lambda a: a["/api/v1/blocks"].update(data={}), "bucket web {url}: no block list (object storage unreachable?)"),
    (lambda a: a["/api/v1/stores"]["data"]["sidecar"].pop(), "query {url}: sidecar: 1 healthy of 2 expected"),
    (lambda a: a["/api/v1/stores"]["data"]["store"][0].update(lastError="rpc error: connection refused"),
     "query {url}: store: 0 healthy of 1 expected (rpc error: connection refused)"),
    (lambda a: a["/api/v1/query"]["data"].update(result=[]), "query {url}: no series from cluster chicago"),
    (lambda a: a["/api/v1/rules"]["data"].update(groups=[]), "ruler {url}: no rule groups loaded"),
    (lambda a: a["/api/v2/status"]["cluster"]["peers"].pop(), "alertmanager {url}: gossip 'ready' with 2 of 3 peers"),
    (lambda a: a["/api/v2/status"]["cluster"].update(status="settling"),
     "alertmanager {url}: gossip 'settling' with 3 of 3 peers"),
    (lambda a: a["/api/v1/query"].update(status="error", error="timeout"),
     "clusters {url}: {url}/api/v1/query?query=count%20by%20%28cluster%29%20%28up%29: status 'error': timeout"),
])
def test_validation_fails_naming_what_is_wrong(break_it, message):
    with FakeThanos() as fake:
        break_it(fake.answers)
        code, output = validate(plan_for(fake.url))
    assert code == 1
    assert f"FAIL {message.format(url=fake.url)}" in output.splitlines()


def test_validation_retries_until_the_deployment_settles():
    with FakeThanos() as fake:
        fake.answers["/api/v1/rules"]["data"]["groups"] = []
        timer = threading.Timer(0.2, lambda: fake.answers["/api/v1/rules"]["data"]["groups"].append({"name": "x"}))
        timer.start()
        code, output = validate(plan_for(fake.url, attempts=20, interval=0.05))
        timer.join()
    assert code == 0 and f"ok   rules {fake.url}" in output


def test_an_unreachable_server_fails_with_the_reason():
    code, output = validate(plan_for("http://127.0.0.1:9", attempts=1))
    assert code == 1 and "Connection refused" in output


def test_every_cluster_and_global_tier_runs_the_validation_job_last(planned):
    """The Job's plan matches the stack, and it waits for every workload (pulumi-kubernetes awaits the Job, so a
    broken deploy fails `pulumi up`)."""
    plan = planned["prod"].plan
    jobs = [r for r in plan["resources"] if r["type"] == "kubernetes:batch/v1:Job"
            and r["inputs"]["metadata"]["name"].startswith("thanos-validate-")]
    assert len(jobs) == 4  # chicago, seattle, and the two global tiers
    maps = {(m["provider"], m["inputs"]["metadata"]["namespace"]): json.loads(m["inputs"]["data"]["plan.json"])
            for m in plan["resources"] if m["type"] == "kubernetes:core/v1:ConfigMap"
            and m["inputs"]["metadata"]["name"].startswith("thanos-validate-")}
    leaf = next(v for (p, ns), v in maps.items() if ns == "thanos" and "chicago" in p)
    assert leaf["queries"][0]["store_types"] == {"sidecar": 2, "store": 2, "rule": 2, "receive": 6}
    top = next(v for (p, ns), v in maps.items() if ns == "thanos-global" and "chicago" in p)
    assert top["queries"][0]["store_types"] == {"query": 2, "rule": 2}
    assert top["queries"][0]["clusters"] == ["chicago", "seattle"]
    by_urn = {r["urn"]: r for r in plan["resources"]}
    chicago_job = next(j for j in jobs if "chicago" in j["provider"] and j["inputs"]["metadata"]["namespace"] == "thanos")
    waited = {by_urn[u]["inputs"]["metadata"]["name"] for u in chicago_job["dependsOn"]
              if by_urn[u]["type"].startswith("kubernetes:apps/v1:")}
    assert {"thanos-prometheus", "thanos-bucket-web"} <= waited


# --- deploy and drift workflows ----------------------------------------------------------------------------------

WORKFLOWS = ROOT / ".github" / "workflows"


def steps_text(job):
    return "\n".join(str(s.get("run", "")) + str(s.get("uses", "")) for s in job["steps"])


def test_merge_to_main_deploys_dev_for_real_then_prod_behind_review():
    deploy = yaml.safe_load((WORKFLOWS / "deploy.yml").read_text())
    assert deploy[True]["push"]["branches"] == ["main"]  # PyYAML reads the key `on` as True
    assert deploy["concurrency"]["cancel-in-progress"] is False
    jobs = deploy["jobs"]
    assert "helm/kind-action@" in steps_text(jobs["dev"])
    assert "pulumi up --yes --stack dev --policy-pack policies --policy-pack-config policies/dev.json" in steps_text(jobs["dev"])
    teardown = jobs["dev"]["steps"][-1]
    assert teardown["if"] == "always()" and "pulumi destroy" in teardown["run"]
    assert "pulumi policy publish" in steps_text(jobs["policy-pack"]) and jobs["policy-pack"]["needs"] == "dev"
    assert set(jobs["prod"]["needs"]) == {"dev", "policy-pack"}
    assert jobs["prod"]["environment"]["name"] == "production"
    assert 'pulumi up --yes --stack "${{ vars.PULUMI_ORG }}/thanos/prod" --policy-pack policies' in steps_text(jobs["prod"])


def test_the_drift_check_fails_visibly_and_opens_one_issue():
    drift = yaml.safe_load((WORKFLOWS / "drift.yml").read_text())
    assert drift[True]["schedule"][0]["cron"]
    job = drift["jobs"]["drift"]
    assert job["strategy"]["matrix"]["stack"] == ["prod", "gcp", "azure"]
    check = next(s for s in job["steps"] if "ci/drift.py" in str(s.get("run")))
    assert "--refresh" in check["run"] and "|| true" not in check["run"]
    report = next(s for s in job["steps"] if "gh issue create" in str(s.get("run")))
    assert report["if"].startswith("failure()") and "gh issue list --state open" in report["run"]
    assert "steps.check.outputs.drift == 'true'" in report["if"]  # an issue for drift only (tests/test_drift.py)
    assert drift["permissions"]["issues"] == "write"



def test_each_bucket_is_verified_daily_read_only_by_its_own_identity(planned):
    plan = planned["prod"].plan
    jobs = [r for r in plan["resources"] if r["type"] == "kubernetes:batch/v1:CronJob"]
    # One per region's bucket in its compactor cluster (its own identity), one per DR copy as the DR store's reader.
    assert sorted(j["inputs"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"] for j in jobs) == [
        "thanos-bucket-verify", "thanos-bucket-verify", "thanos-store-dr-us-east-1", "thanos-store-dr-us-west-2"]
    for job in jobs:
        spec = job["inputs"]["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        args = pod["containers"][0]["args"]
        assert args[:3] == ["tools", "bucket", "verify"] and not any(a.startswith("--repair") for a in args)
    roles = {r["name"]: json.loads(r["inputs"]["policy"]) for r in plan["resources"]
             if r["type"] == "aws:iam/rolePolicy:RolePolicy" and r["name"].endswith("-bucket-verify")}
    assert len(roles) == 2
    for policy in roles.values():
        actions = {a for s in policy["Statement"] for a in s["Action"]}
        assert actions <= {"s3:ListBucket", "s3:GetObject", "kms:Decrypt"}


# --- the DR read path and the switch -----------------------------------------------------------------------------

SWITCH_PROBE = """
from preflight import policy
def edit(config):
    {edit}
plan = plan_stack('{stack}', edit=edit)
out = {{"resources": [], "violations": [v.__dict__ if hasattr(v, '__dict__') else v for v in
                                       policy.run_policies(plan, {{}})]}}
for r in plan.resources:
    out["resources"].append({{"urn": r.urn, "type": r.type, "name": r.name, "provider": r.provider,
                              "dependsOn": r.depends_on, "inputs": r.inputs}})
print(json.dumps(out, default=str))
"""


def switched_plan(tmp_path, edit, stack="prod"):
    proc = run_probe(tmp_path, SWITCH_PROBE.format(edit=edit, stack=stack))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def objects(plan, kind, name=None):
    return [r for r in plan["resources"] if r["type"].endswith(f":{kind}")
            and (name is None or r["inputs"].get("metadata", {}).get("name") == name)]


def objstore_bucket(plan, cluster, secret="thanos-objstore"):
    found = next(r for r in objects(plan, "Secret", secret) if f"k8s-{cluster}" in r["provider"])
    return yaml.safe_load(found["inputs"]["stringData"]["objstore.yml"])["config"]["bucket"]


def compactor_buckets(plan):
    """bucket -> compactor count, read from each compactor cluster's objstore Secret."""
    counts = {}
    for sts in objects(plan, "StatefulSet", "thanos-compactor"):
        cluster = sts["provider"].rsplit("k8s-", 1)[-1]
        bucket = objstore_bucket(plan, cluster)
        counts[bucket] = counts.get(bucket, 0) + 1
    return counts


@pytest.fixture(scope="module")
def prod_plans(tmp_path_factory):
    normal = switched_plan(tmp_path_factory.mktemp("normal"), "pass")
    switched = switched_plan(tmp_path_factory.mktemp("switched"), "config['regions'][0]['storage']['active'] = 'dr'")
    return normal, switched


def test_each_dr_copy_has_a_standby_read_only_store_gateway_in_the_dr_region(prod_plans):
    normal, _ = prod_plans
    store = [r for r in objects(normal, "StatefulSet", "thanos-store-dr-us-east-1")]
    assert len(store) == 1 and "k8s-seattle" in store[0]["provider"]
    assert objstore_bucket(normal, "seattle", "thanos-objstore-dr-us-east-1") == "acme-thanos-prod-us-east-1-dr"
    role = next(r for r in normal["resources"] if r["type"] == "aws:iam/rolePolicy:RolePolicy"
                and r["name"].endswith("seattle-store-dr-us-east-1"))
    policy = json.loads(role["inputs"]["policy"])
    assert {a for s in policy["Statement"] for a in s["Action"]} <= {"s3:ListBucket", "s3:GetObject", "kms:Decrypt"}
    assert all("acme-thanos-prod-us-east-1-dr" in str(s["Resource"]) or "kms" in str(s["Resource"])
               for s in policy["Statement"])
    leaf = next(r for r in objects(normal, "Deployment", "thanos-query-pods")
                if "k8s-seattle" in r["provider"] and r["inputs"]["metadata"]["namespace"] == "thanos")
    args = leaf["inputs"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "thanos-store-dr-us-east-1" not in " ".join(args)  # standby: read only after a switch
    assert normal["violations"] == []


def test_switching_a_region_to_its_dr_copy_moves_every_reader_writer_and_the_one_compactor(prod_plans):
    normal, switched = prod_plans
    assert compactor_buckets(normal) == {"acme-thanos-prod-us-east-1": 1, "acme-thanos-prod-us-west-2": 1}
    assert compactor_buckets(switched) == {"acme-thanos-prod-us-east-1-dr": 1, "acme-thanos-prod-us-west-2": 1}
    assert objstore_bucket(switched, "chicago") == "acme-thanos-prod-us-east-1-dr"
    roles = [r for r in switched["resources"] if r["type"] == "aws:iam/rolePolicy:RolePolicy"
             and r["name"].startswith("us-east-1-objectstore-chicago-")]
    assert len(roles) == 7
    for role in roles:
        resources = str(json.loads(role["inputs"]["policy"])["Statement"])
        assert "acme-thanos-prod-us-east-1-dr" in resources, role["name"]
        assert "key/2b8e6d4c" in resources and "key/7f3b2c1e" not in resources  # the DR copy's KMS key
    rule = next(r for r in switched["resources"] if r["name"] == "us-east-1-objectstore-replication"
                and r["type"].startswith("aws:s3/bucketReplicationConfig"))["inputs"]["rules"][0]
    assert rule["status"] == "Disabled"
    compactor = next(r for r in objects(switched, "StatefulSet", "thanos-compactor") if "k8s-chicago" in r["provider"])
    replication_urn = next(r["urn"] for r in switched["resources"] if r["name"] == "us-east-1-objectstore-replication"
                           and r["type"].startswith("aws:s3/bucketReplicationConfig"))
    assert replication_urn in compactor["dependsOn"]  # the stream stops before the compactor moves in
    annotations = compactor["inputs"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["thanos.io/objstore-copy"] == "acme-thanos-prod-us-east-1-dr"  # pods restart on the switch
    leaf = next(r for r in objects(switched, "Deployment", "thanos-query-pods")
                if "k8s-seattle" in r["provider"] and r["inputs"]["metadata"]["namespace"] == "thanos")
    assert "thanos-store-dr-us-east-1" in " ".join(leaf["inputs"]["spec"]["template"]["spec"]["containers"][0]["args"])
    assert switched["violations"] == []


def test_the_pack_refuses_a_compactor_on_a_bucket_that_is_still_replicated_into(prod_plans):
    _, switched = prod_plans
    resources = [{"type": r["type"], "inputs": r["inputs"], "provider": r["provider"], "urn": r["urn"],
                  "name": r["name"]} for r in switched["resources"]]
    rule = next(r for r in resources if r["name"] == "us-east-1-objectstore-replication"
                and r["type"].startswith("aws:s3/bucketReplicationConfig"))
    rule["inputs"]["rules"][0]["status"] = "Enabled"
    from .test_policies import check_stack

    assert check_stack("thanos-compactor-one-per-bucket", resources) == [
        "a compactor writes to acme-thanos-prod-us-east-1-dr, a replication destination: it would compact the "
        "replicated streams a second time (overlaps); DR copies are read-only."]


def test_azure_switches_by_pausing_object_replication_first(tmp_path):
    """Object replication cannot be disabled, only deleted (last): the rule is narrowed to a prefix no Thanos object
    has (an update), and the compactor waits for both policies before it moves to the DR account."""
    plan = switched_plan(tmp_path, "config['regions'][0]['storage']['active'] = 'dr'", "azure")
    policies = [r for r in plan["resources"] if r["type"] == "azure-native:storage:ObjectReplicationPolicy"
                and r["name"].startswith("westeurope-")]
    assert len(policies) == 2
    assert all(p["inputs"]["rules"][0]["filters"]["prefixMatch"] == ["thanos-replication-paused/"] for p in policies)
    compactor = next(r for r in objects(plan, "StatefulSet", "thanos-compactor") if "k8s-amsterdam" in r["provider"])
    assert {p["urn"] for p in policies} <= set(compactor["dependsOn"])
    secret = next(r for r in objects(plan, "Secret", "thanos-objstore") if "k8s-amsterdam" in r["provider"])
    assert yaml.safe_load(secret["inputs"]["stringData"]["objstore.yml"])["config"]["storage_account"] == \
        "acmethanosweudr"
    scopes = {r["inputs"]["scope"].split("/storageAccounts/")[1].split("/")[0] for r in plan["resources"]
              if r["type"] == "azure-native:authorization:RoleAssignment" and r["name"].startswith("westeurope-")
              and "store-dr" not in r["name"]}
    assert scopes == {"acmethanosweudr"}
    assert plan["violations"] == []
    from .test_policies import check_stack

    for policy in policies:  # replication left running into the account the compactor now owns
        policy["inputs"]["rules"][0]["filters"]["prefixMatch"] = []
    assert check_stack("thanos-compactor-one-per-bucket", plan["resources"]) == [
        "a compactor writes to acmethanosweudr/thanos, a replication destination: it would compact the replicated "
        "streams a second time (overlaps); DR copies are read-only."]


def test_azure_dr_copies_get_a_reader_identity_for_their_store_gateway(planned):
    plan = planned["azure"].plan
    assignments = [r for r in plan["resources"] if r["type"] == "azure-native:authorization:RoleAssignment"
                   and "store-dr" in r["name"]]
    assert len(assignments) == 2
    for assignment in assignments:
        assert assignment["inputs"]["roleDefinitionId"].endswith("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1")  # Blob Data Reader
        assert "dr" in assignment["inputs"]["scope"].split("/storageAccounts/")[1].split("/")[0]


def test_dev_copies_chicago_with_replicate_and_keeps_the_copy_with_retention_and_cleanup(planned):
    from .test_workloads import pod, reachable

    dev = planned["dev"]
    replicate = next(o for o in dev.objects("CronJob", cluster="chicago") if o["metadata"]["name"] == "thanos-bucket-replicate")
    job_pod = replicate["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert job_pod["containers"][0]["args"][:3] == ["tools", "bucket", "replicate"]
    assert "--single-run" in job_pod["containers"][0]["args"]
    # It reads the source as a user that may only read it, and writes the copy as one that may not delete.
    assert job_pod["volumes"][0]["secret"]["secretName"] == "thanos-objstore-replicate-source"
    assert job_pod["volumes"][1]["secret"]["secretName"] == "thanos-objstore-replica"
    users = {o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]["args"][0]
             for o in dev.objects("Job") if o["metadata"]["name"].startswith("thanos-minio-user-")}
    read = json.loads(users["thanos-minio-user-thanos-replicate-read"].split("printf '%s' '")[1].split("'")[0])
    write = json.loads(users["thanos-minio-user-thanos-replicate-write"].split("printf '%s' '")[1].split("'")[0])
    assert read["Statement"][0]["Action"] == ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"]
    assert read["Statement"][0]["Resource"] == ["arn:aws:s3:::thanos-chicago", "arn:aws:s3:::thanos-chicago/*"]
    assert write["Statement"][0]["Resource"] == ["arn:aws:s3:::thanos-chicago-dr", "arn:aws:s3:::thanos-chicago-dr/*"]
    assert not any("Delete" in a for a in write["Statement"][0]["Action"])
    # seattle's own identity (every Thanos component of the namespace) reaches its bucket only; the copy's store
    # gateway, retention and cleanup run as a user of the copy's own (tests/test_real_bucket_iam.py runs them).
    blocks = {c: json.loads(o["spec"]["template"]["spec"]["containers"][0]["args"][0].split("printf '%s' '")[1]
                            .split("'")[0]) for c in ("chicago", "seattle") for o in dev.objects("Job", cluster=c)
              if o["metadata"]["name"] == "thanos-minio-user-thanos-blocks"}
    assert {c: p["Statement"][0]["Resource"] for c, p in blocks.items()} == {
        c: [f"arn:aws:s3:::thanos-{c}", f"arn:aws:s3:::thanos-{c}/*"] for c in ("chicago", "seattle")}
    copy = json.loads(users["thanos-minio-user-thanos-copy-us-central"].split("printf '%s' '")[1].split("'")[0])
    assert copy["Statement"][0]["Resource"] == ["arn:aws:s3:::thanos-chicago-dr", "arn:aws:s3:::thanos-chicago-dr/*"]
    seattle = {o["metadata"]["name"]: o for o in dev.objects("CronJob", cluster="seattle")}
    compactor_args = next(o for o in dev.objects("StatefulSet", cluster="seattle")
                          if o["metadata"]["name"] == "thanos-compactor")["spec"]["template"]["spec"]["containers"][0]["args"]
    retention = seattle["thanos-bucket-retention-us-central"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert retention["volumes"][0]["secret"]["secretName"] == "thanos-objstore-dr-us-central"
    assert [a for a in retention["containers"][0]["args"] if a.startswith("--retention.")] == \
        [a for a in compactor_args if a.startswith("--retention.")]  # identical retention on both sides
    assert "thanos-bucket-cleanup-us-central" in seattle
    make_bucket = next(o for o in dev.objects("Job", cluster="seattle") if o["metadata"]["name"] == "thanos-minio-make-bucket")
    assert "local/thanos-chicago-dr" in make_bucket["spec"]["template"]["spec"]["containers"][0]["args"][0]
    policies = dev.objects("NetworkPolicy")
    job = {"ns": "thanos-chicago", "labels": {"app.kubernetes.io/name": "thanos-bucket-replicate",
                                              "app.kubernetes.io/instance": "chicago", "app.kubernetes.io/part-of": "thanos"}}
    minio = pod("thanos-seattle", "thanos-minio", "seattle")
    assert reachable(policies, job, minio, 9000)
    assert not reachable(policies, pod("thanos-chicago", "thanos-query", "chicago"), minio, 9000)
    assert not reachable(policies, job, pod("thanos-seattle", "thanos-query", "seattle"), 10902)


def test_the_pack_refuses_replicating_a_compacted_bucket_into_another_compacted_bucket(planned):
    from .test_policies import check_stack

    resources = [dict(r) for r in planned["dev"].plan["resources"]]
    assert check_stack("thanos-compactor-one-per-bucket", resources) == []
    # Point the replicate job's target at seattle's own bucket, which its compactor owns.
    resources = json.loads(json.dumps(resources))
    secret = next(r for r in resources if r["type"] == "kubernetes:core/v1:Secret"
                  and r["inputs"]["metadata"]["name"] == "thanos-objstore-replica")
    secret["inputs"]["stringData"] = {"objstore.yml": "type: S3\nconfig: {bucket: thanos-seattle, endpoint: x}\n"}
    for name in ("thanos-objstore", "thanos-objstore-replicate-source"):  # the compactor's and the job's source
        source = next(r for r in resources if r["type"] == "kubernetes:core/v1:Secret"
                      and r["inputs"]["metadata"]["name"] == name and "chicago" in r["provider"])
        source["inputs"]["stringData"] = {"objstore.yml": "type: S3\nconfig: {bucket: thanos-chicago, endpoint: x}\n"}
    seattle = next(r for r in resources if r["type"] == "kubernetes:core/v1:Secret"
                   and r["inputs"]["metadata"]["name"] == "thanos-objstore" and "seattle" in r["provider"])
    seattle["inputs"]["stringData"] = {"objstore.yml": "type: S3\nconfig: {bucket: thanos-seattle, endpoint: y}\n"}
    assert check_stack("thanos-compactor-one-per-bucket", resources) == [
        "a compactor writes to thanos-seattle, a replication destination: it would compact the replicated streams a "
        "second time (overlaps); DR copies are read-only."]


def switch_without_replication(config):
    storage = config["regions"][0]["storage"]
    del storage["replication"], storage["replica-kms-key-arn"]
    storage["active"] = "dr"


@pytest.mark.parametrize(("stack", "edit", "key", "message"), [
    ("prod", switch_without_replication, "regions[0].storage", "active: dr needs replication"),
    ("prod", lambda c: c["regions"][0]["storage"]["replication"].update({"dr-cluster": "chicago"}),
     "regions[0].storage.replication.dr-cluster", "'chicago' is not a cluster of region 'us-west-2' (seattle)"),
    ("azure", lambda c: c["regions"][0]["storage"].pop("replication") and c["regions"][0]["storage"].update(active="dr"),
     "regions[0].storage", "active: dr needs replication (the DR account to switch to)"),
    ("dev", lambda c: c["regions"][0]["storage"]["replication"].update({"replicate-deletes": False}),
     "regions[0].storage", "tools bucket replicate never deletes"),
    ("dev", lambda c: c["regions"][0]["storage"]["replication"].update({"bucket": "elsewhere"}),
     "regions[0].storage.replication.bucket", "always <bucket>-dr"),
])
def test_bad_dr_config_names_the_key(stack, edit, key, message):
    import config

    from tests.support.stacks import stack_config

    raw = stack_config(stack)
    edit(raw)
    with pytest.raises(config.ConfigError) as err:
        config.load(raw)
    assert any(path == key and message in text for path, text in err.value.problems), err.value.problems


def test_a_schedule_that_is_not_cron_names_the_key():
    import config

    from tests.support.stacks import stack_config

    raw = stack_config("prod")
    raw["thanos"]["bucket-verify"] = {"schedule": "daily"}
    with pytest.raises(config.ConfigError) as err:
        config.load(raw)
    assert err.value.problems == [("thanos.bucket-verify.schedule", "'daily' is not a cron schedule: five fields "
                                   "(minute hour day month weekday), e.g. 23 3 * * *")]
