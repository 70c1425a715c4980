"""The recorded prod plan, mutated the way real incidents happened, run through the pack as preflight runs it;
and the pack driven through the real analyzer gRPC protocol, as the Pulumi CLI drives it."""

import copy
import json
import subprocess
import sys

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from components.storage import aws as cloud_aws
from config.storage import AwsStorage
from preflight.engine import Plan, Resource
from preflight.policy import run_policies

from tests.support.stacks import ROOT, run_preflight

pytestmark = pytest.mark.usefixtures("record_policy_lines")
STS = "kubernetes:apps/v1:StatefulSet"


def plan_from(planned_stack) -> Plan:
    """A Plan rebuilt from the preflight JSON, the redacted objstore Secrets refilled with what the program writes."""
    plan = Plan(project="thanos", stack="prod")
    buckets = {"chicago": "acme-thanos-prod-us-east-1", "seattle": "acme-thanos-prod-us-west-2"}
    for r in planned_stack.plan["resources"]:
        inputs = copy.deepcopy(r["inputs"])
        if r["type"] == "kubernetes:core/v1:Secret" and inputs["metadata"]["name"] == "thanos-objstore":
            cluster = r["provider"].rsplit("k8s-", 1)[-1]
            inputs["stringData"] = {"objstore.yml": cloud_aws.objstore_config(
                AwsStorage(provider="aws", bucket=buckets[cluster]), "us-east-1")}
        plan.resources.append(Resource(urn=r["urn"], type=r["type"], name=r["name"], custom=r["custom"],
                                       parent=r["parent"], provider=r["provider"], protect=r["protect"],
                                       retain_on_delete=r["retainOnDelete"], depends_on=r["dependsOn"],
                                       raw_inputs=inputs, outputs=copy.deepcopy(inputs)))
    return plan


def find(plan, type_token, name, cluster="chicago", namespace="thanos"):
    """The leaf's object (the global tier's namesakes live in thanos-global on the same cluster)."""
    return next(r for r in plan.resources if r.type == type_token and r.raw_inputs["metadata"]["name"] == name
                and cluster in (r.provider or "") and r.raw_inputs["metadata"].get("namespace", namespace) == namespace)


def args_of(resource, container_name):
    for c in resource.raw_inputs["spec"]["template"]["spec"]["containers"]:
        if c["name"] == container_name:
            return c["args"]
    raise KeyError(container_name)


def mutate(resource, fn):
    fn(resource.raw_inputs)
    resource.__dict__.pop("inputs", None)  # drop the cached unwrapped copy
    resource.outputs = copy.deepcopy(resource.raw_inputs)


@pytest.fixture
def plan(planned):
    return plan_from(planned["prod"])


def findings(plan) -> list[tuple[str, str, str, str]]:
    """Every finding on the plan: (policy, level, resource name or "" for the stack, message), sorted."""
    return sorted((v.policy, v.level, v.urn.rsplit("::", 1)[-1], v.message) for v in run_policies(plan, {}))


def test_recorded_prod_plan_is_clean(plan):
    assert findings(plan) == []


def test_a_second_compactor_pointed_at_the_primary_bucket(plan):
    secret = find(plan, "kubernetes:core/v1:Secret", "thanos-objstore", "seattle")
    mutate(secret, lambda p: p["stringData"].update({"objstore.yml": cloud_aws.objstore_config(
        AwsStorage(provider="aws", bucket="acme-thanos-prod-us-east-1"), "us-east-1")}))
    # Both of seattle's compactor shards now share chicago's bucket with the shard of the same streams there.
    assert findings(plan) == [("thanos-compactor-one-per-bucket", "mandatory", f"seattle-compactor-statefulset-{name}",
                               "2 compactors write to bucket S3:acme-thanos-prod-us-east-1/: exactly one compactor may "
                               "own a bucket (config: regions[].compactor-cluster).")
                              for name in ("thanos-compactor", "thanos-compactor-receive")]


def test_compactor_scaled_to_two(plan):
    mutate(find(plan, STS, "thanos-compactor"), lambda p: p["spec"].update(replicas=2))
    assert findings(plan) == [("thanos-compactor-singleton", "mandatory", "chicago-compactor-statefulset-thanos-compactor",
                               "the compactor runs 2 replicas: more than one compactor per bucket produces overlapping "
                               "blocks and halts compaction.")]


def test_anti_affinity_removed(plan):
    mutate(find(plan, STS, "thanos-store"), lambda p: p["spec"]["template"]["spec"].pop("affinity"))
    assert findings(plan) == [("thanos-ha-anti-affinity", "mandatory", "chicago-store-statefulset-thanos-store",
                               "store runs 2 replicas without hard pod anti-affinity (or a DoNotSchedule spread) on "
                               "kubernetes.io/hostname: one node failure can take every replica down (config: thanos.node-spread).")]


def test_raw_retention_of_one_day(plan):
    compactor = find(plan, STS, "thanos-compactor")
    mutate(compactor, lambda p: args_of(compactor, "thanos-compactor").__setitem__(
        args_of(compactor, "thanos-compactor").index("--retention.resolution-raw=30d"), "--retention.resolution-raw=1d"))
    compactor_name = "chicago-compactor-statefulset-thanos-compactor"
    assert findings(plan) == [
        ("thanos-retention-minimums", "mandatory", compactor_name, "compactor raw retention is below 40h with "
         "downsampling on: Thanos refuses to start (config: thanos.compactor.retention.raw)."),
        ("thanos-retention-minimums", "mandatory", compactor_name,
         "compactor raw retention is below the floor of 30d (config: thanos.compactor.retention.raw).")]


def test_24h_prometheus_blocks(plan):
    prometheus = find(plan, STS, "thanos-prometheus")
    a = args_of(prometheus, "prometheus")
    mutate(prometheus, lambda p: a.__setitem__(a.index("--storage.tsdb.max-block-duration=2h"),
                                               "--storage.tsdb.max-block-duration=24h"))
    assert findings(plan) == [("thanos-producers-blocks-and-labels", "mandatory",
                               "chicago-prometheus-statefulset-thanos-prometheus",
                               "Prometheus with an uploading sidecar needs --storage.tsdb.min-block-duration = "
                               "--storage.tsdb.max-block-duration = 2h (local compaction would lose or overlap blocks).")]


def test_configmap_holding_bucket_keys(plan):
    leaked = yaml.safe_dump({"type": "S3", "config": {"bucket": "acme-thanos-prod-us-east-1", "endpoint":
                             "s3.us-east-1.amazonaws.com", "access_key": "AKIAEXAMPLE", "secret_key": "x"}})
    cm = find(plan, "kubernetes:core/v1:ConfigMap", "thanos-ruler-rules")
    mutate(cm, lambda p: p["data"].update({"objstore.yml": leaked}))
    assert findings(plan) == [("thanos-identity-objstore-secret", "mandatory", "chicago-ruler-configmap-thanos-ruler-rules",
                               "ConfigMap key objstore.yml holds an objstore config: keep it in a Secret.")]


def test_query_missing_a_replica_label(plan):
    query = find(plan, "kubernetes:apps/v1:Deployment", "thanos-query-pods")
    mutate(query, lambda p: args_of(query, "thanos-query").remove("--query.replica-label=rule_replica"))
    assert findings(plan) == [("thanos-producers-replica-labels", "mandatory",
                               "chicago-query-deployment-thanos-query-pods",
                               "query does not deduplicate on rule_replica: add --query.replica-label for each, or every "
                               "replica's series shows up twice.")]


def test_dev_config_relaxes_only_what_dev_needs(planned):
    config = json.loads((ROOT / "policies" / "dev.json").read_text())
    assert {k for k, v in config.items() if v.get("enforcementLevel") == "disabled"} == {
        "thanos-ha-min-replicas", "thanos-storage-replicated", "thanos-storage-protected"}


def test_preflight_exits_1_on_a_mandatory_violation_and_reports_each_in_the_contract(tmp_path):
    """dev under the strict defaults (no dev relaxations): in each simulated cluster its single replicas, its one
    ingestor, its 5Gi compactor volume and its 7d raw retention are refused, each finding in the JSON contract, and
    nothing else is."""
    strict = tmp_path / "strict.json"
    strict.write_text("{}")
    proc = run_preflight("dev", "--policy-config", str(strict), "--json", str(tmp_path / "p.json"), "--verbose")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    plan = json.loads((tmp_path / "p.json").read_text())
    urns = {r["urn"] for r in plan["resources"]}
    violations = plan["violations"]
    for violation in violations:
        assert set(violation) == {"policy", "level", "urn", "message"}
        assert violation["level"] == "mandatory" and violation["urn"] in urns
        assert f"[mandatory] {violation['policy']}: {violation['urn'].rsplit('::', 1)[-1]}: {violation['message']}" \
            in proc.stdout
    by_policy = {}
    for violation in violations:
        by_policy.setdefault(violation["policy"], []).append(violation["urn"].rsplit("::", 1)[-1])
    assert sorted(by_policy) == ["thanos-compactor-singleton", "thanos-ha-min-replicas", "thanos-producers-receive-ring",
                                 "thanos-retention-minimums"]
    clusters = ("chicago", "seattle")
    assert by_policy["thanos-compactor-singleton"] == [f"{c}-compactor-statefulset-thanos-compactor" for c in clusters]
    # Per cluster: 3 caches, prometheus, query, frontend, router, receive, ruler, store; the global tier: its cache,
    # query, enforcing query (dev has tenants), frontend and ruler (oauth2-proxy is not used in dev: basic auth); the
    # store gateway on chicago's DR copy.
    assert len(by_policy["thanos-ha-min-replicas"]) == 2 * 10 + 5 + 1
    assert by_policy["thanos-producers-receive-ring"] == [f"{c}-receive-deployment-thanos-receive-router"
                                                           for c in clusters]
    assert by_policy["thanos-retention-minimums"] == [f"{c}-compactor-statefulset-thanos-compactor" for c in clusters]
    assert f"Policies: {len(violations)} mandatory, 0 advisory" in proc.stdout


# --- the real analyzer protocol --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def analyzer():
    proc = subprocess.Popen([sys.executable, str(ROOT / "policies" / "__main__.py")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    port = proc.stdout.readline().strip()
    assert port.isdigit(), proc.stderr.read()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=10)
    yield analyzer_pb2_grpc.AnalyzerStub(channel)
    channel.close()
    proc.terminate()
    proc.wait(timeout=10)


def struct(value) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(json.loads(json.dumps(value)))
    return s


def configure(analyzer, config: dict):
    policy_config = {}
    for name, entry in config.items():
        level = {"advisory": analyzer_pb2.ADVISORY, "mandatory": analyzer_pb2.MANDATORY,
                 "disabled": analyzer_pb2.DISABLED}[entry["enforcementLevel"]]
        properties = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        policy_config[name] = analyzer_pb2.PolicyConfig(enforcementLevel=level, properties=struct(properties))
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=policy_config))


def test_analyzer_info_lists_every_policy(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "thanos-guard"
    from preflight.policy import load_policies

    pack = {p.name: p for p in load_policies()}
    served = {p.name: p for p in info.policies}
    assert sorted(served) == sorted(pack) and len(served) >= 22
    for name, policy in served.items():
        assert policy.description == pack[name].description, name
    # Every rule is mandatory but the one that cannot see the clusters outside the stack it warns about.
    assert {name for name, p in served.items() if p.enforcementLevel != analyzer_pb2.MANDATORY} == {
        "thanos-identity-workload-identity-scope"}
    assert served["thanos-identity-workload-identity-scope"].enforcementLevel == analyzer_pb2.ADVISORY
    # Every rule takes unknownValues (what a value computed at apply is: a finding or the engine's note).
    assert all("unknownValues" in p.configSchema.properties for p in served.values())
    configurable = {name for name, p in served.items() if set(p.configSchema.properties) - {"unknownValues"}}
    assert configurable == {"thanos-ha-min-replicas", "thanos-retention-minimums", "thanos-compactor-singleton",
                            "thanos-producers-receive-ring", "thanos-hardening-pods"}


def test_analyze_and_analyze_stack_with_the_dev_config(analyzer, planned):
    configure(analyzer, json.loads((ROOT / "policies" / "dev.json").read_text()))
    store = next(r for r in planned["prod"].plan["resources"]
                 if r["type"] == STS and r["inputs"]["metadata"]["name"] == "thanos-store")
    props = copy.deepcopy(store["inputs"])
    props["spec"]["replicas"] = 1
    response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(type=STS, name="store", urn=store["urn"],
                                                            properties=struct(props)))
    assert [d.policyName for d in response.diagnostics] == []  # one replica is fine in dev
    props["spec"]["template"]["spec"]["containers"][0]["args"].append("--store=x")
    response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(type=STS, name="store", urn=store["urn"],
                                                            properties=struct(props)))
    flagged = [d for d in response.diagnostics if d.policyName == "thanos-flags-known"]
    assert len(flagged) == 1 and flagged[0].enforcementLevel == analyzer_pb2.MANDATORY
    assert "thanos store has no flag --store in v0.42.4." in flagged[0].message

    compactor = next(r for r in planned["prod"].plan["resources"]
                     if r["type"] == STS and r["inputs"]["metadata"]["name"] == "thanos-compactor")
    hpa = {"spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "thanos-compactor"}, "maxReplicas": 3}}
    resources = [analyzer_pb2.AnalyzerResource(type=STS, urn=compactor["urn"], name="c",
                                               properties=struct(compactor["inputs"])),
                 analyzer_pb2.AnalyzerResource(type="aws:s3/bucket:Bucket", urn="urn:b", name="b",
                                               properties=struct({"bucket": "lonely"}))]
    stack = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))
    policies = {d.policyName for d in stack.diagnostics}
    assert "thanos-storage-bucket-safety" in policies and "thanos-storage-replicated" not in policies
    response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(
        type="kubernetes:autoscaling/v2:HorizontalPodAutoscaler", name="hpa", urn="urn:h", properties=struct(hpa)))
    assert ["thanos-compactor-singleton"] == [d.policyName for d in response.diagnostics]


def test_a_rule_that_cannot_judge_a_value_computed_at_apply_is_a_finding_at_its_level(analyzer, planned):
    """Through the real analyzer protocol: a mandatory rule that meets a value unknown during a preview fails the
    preview, naming the value; configured `unknownValues: note`, it is the engine's advisory note again."""
    store = next(r for r in planned["prod"].plan["resources"]
                 if r["type"] == STS and r["inputs"]["metadata"]["name"] == "thanos-store")
    props = copy.deepcopy(store["inputs"])
    props["spec"]["template"]["spec"]["containers"][0]["image"] = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    request = analyzer_pb2.AnalyzeRequest(type=STS, name="store", urn=store["urn"], properties=struct(props))
    configure(analyzer, {})
    findings = [d for d in analyzer.Analyze(request).diagnostics if d.policyName == "thanos-hardening-pods"]
    assert [(d.enforcementLevel, d.message) for d in findings] == [(analyzer_pb2.MANDATORY, (
        "Pinned images, non-root, read-only root, no escalation, resources, probes.\n"
        "thanos-hardening-pods could not judge this resource during this preview: its value at "
        ".spec.template.spec.containers.0.image is computed at apply, so the rule (which stops at the first such "
        "value) would first run at `pulumi up`, after the step. Build that value from what is known before the "
        "resource exists, or accept it for this rule (unknownValues: note)."))]
    configure(analyzer, {"thanos-hardening-pods": {"enforcementLevel": "mandatory", "unknownValues": "note"}})
    notes = [d for d in analyzer.Analyze(request).diagnostics if d.policyName == "thanos-hardening-pods"]
    assert len(notes) == 1 and notes[0].enforcementLevel == analyzer_pb2.ADVISORY
    assert "can't run policy 'thanos-hardening-pods' from policy pack" in notes[0].message
    configure(analyzer, {})
