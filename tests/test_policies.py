"""The policy pack, rule by rule: a passing case from the real prod plan and a failing case (one change, one exact
message); then the recorded prod plan mutated the way real incidents happened."""

import copy
import json

import pytest
import yaml
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

from components.storage import aws as cloud_aws
from config.storage import AwsStorage
from preflight.policy import load_policies

from .conftest import ROOT, STACKS, run_probe

POLICIES = {p.name: p for p in load_policies()}
pytestmark = pytest.mark.usefixtures("record_policy_lines")
STS = "kubernetes:apps/v1:StatefulSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def options(protect=False):
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def check(policy: str, type_token: str, props: dict, config: dict | None = None, protect=False) -> list[str]:
    """Messages one resource policy reports."""
    found: list[str] = []
    args = ResourceValidationArgs(type_token, unknown_checking_proxy(copy.deepcopy(props)), f"urn:x::{type_token}::r",
                                  "r", options(protect), None, config or {})
    POLICIES[policy].validate(args, lambda message, urn=None: found.append(message))
    return found


def check_stack(policy: str, resources: list[dict], config: dict | None = None) -> list[str]:
    """Messages one stack policy reports over plan-shaped resources (type, inputs, provider)."""
    found: list[str] = []
    built = []
    for i, r in enumerate(resources):
        provider = PolicyProviderResource("pulumi:providers:kubernetes", {}, r["provider"], "p") \
            if r.get("provider") else None
        built.append(PolicyResource(r["type"], unknown_checking_proxy(copy.deepcopy(r["inputs"])), r.get("urn", f"u{i}"),
                                    r.get("name", f"r{i}"), options(r.get("protect", False)), provider, None, [], {}))
    POLICIES[policy].validate(StackValidationArgs(built, config or {}), lambda message, urn=None: found.append(message))
    return found


@pytest.fixture(scope="module")
def prod(planned):
    return planned["prod"].plan["resources"]


def workload(resources, name, cluster="chicago", namespace="thanos"):
    return copy.deepcopy(next(r for r in resources if r["type"] in (STS, DEPLOYMENT)
                              and r["inputs"]["metadata"]["name"] == name and cluster in r["provider"]
                              and r["inputs"]["metadata"].get("namespace", namespace) == namespace))


def container(props, name):
    return next(c for c in props["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def test_pack_metadata():
    assert len(POLICIES) >= 20
    for policy in POLICIES.values():
        assert policy.name.startswith("thanos-") and policy.description.endswith(".")
        assert policy.enforcement_level is not None


def test_pack_config_files_name_real_policies():
    for path in (ROOT / "policies").glob("*.json"):
        assert set(json.loads(path.read_text())) <= set(POLICIES) | {"all"}, path


def test_policy_flag_table_matches_the_reference():
    reference = json.loads((ROOT / "reference" / "thanos-v0.42.4-flags.json").read_text())["commands"]
    derived = json.loads((ROOT / "policies" / "thanos_policies" / "thanos_flags.json").read_text())["commands"]
    from thanos_policies._workloads import COMMANDS

    assert sorted(derived) == sorted(COMMANDS), "the pack's table has exactly the commands the pack recognises"
    for command, table in derived.items():
        flags = {**reference[command].get("flags", {}), **reference[command].get("hidden_flags", {})}
        assert table["flags"] == sorted(flags)
        assert table["deprecated"] == sorted(k for k, v in flags.items() if v.get("deprecated"))
        assert table["negatable"] == sorted(k for k, v in flags.items() if v.get("negatable"))
        assert table["negatable"], command


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stacks_have_no_findings(planned, stack):
    assert planned[stack].plan["violations"] == []


# --- HA -----------------------------------------------------------------------------------------------------------

def test_anti_affinity(prod):
    query = workload(prod, "thanos-query-pods")["inputs"]
    assert check("thanos-ha-anti-affinity", DEPLOYMENT, query) == []
    del query["spec"]["template"]["spec"]["affinity"]
    assert check("thanos-ha-anti-affinity", DEPLOYMENT, query) == [
        "query runs 2 replicas without hard pod anti-affinity (or a DoNotSchedule spread) on kubernetes.io/hostname: "
        "one node failure can take every replica down."]
    del query["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert "without a spread over topology.kubernetes.io/zone" in check("thanos-ha-anti-affinity", DEPLOYMENT, query)[1]


def test_min_replicas(prod):
    store = workload(prod, "thanos-store")["inputs"]
    assert check("thanos-ha-min-replicas", STS, store) == []
    store["spec"]["replicas"] = 1
    assert check("thanos-ha-min-replicas", STS, store) == [
        "store has 1 replica(s); at least 2 are required (config: thanos.store.replicas)."]
    assert check("thanos-ha-min-replicas", STS, store, {"minReplicas": 1}) == []


def test_pdb(prod):
    cluster = [r for r in prod if "chicago" in (r["provider"] or "")
               and (r["inputs"].get("metadata") or {}).get("namespace") == "thanos"]
    assert check_stack("thanos-ha-pdb", cluster) == []
    without = [r for r in cluster if not (r["type"].endswith("PodDisruptionBudget")
                                          and r["inputs"]["metadata"]["name"] == "thanos-ruler")]
    assert check_stack("thanos-ha-pdb", without) == [
        "thanos-ruler has 2 replicas and no PodDisruptionBudget selecting its pods."]
    blocking = copy.deepcopy(cluster)
    next(r for r in blocking if r["type"].endswith("PodDisruptionBudget")
         and r["inputs"]["metadata"]["name"] == "thanos-ruler")["inputs"]["spec"]["maxUnavailable"] = 0
    assert check_stack("thanos-ha-pdb", blocking) == [
        "the PodDisruptionBudget of thanos-ruler allows no disruption: it blocks every node drain."]


# --- Thanos semantics -----------------------------------------------------------------------------------------------

def set_flag(props, container_name, name, value):
    c = container(props, container_name)
    c["args"] = [a for a in c["args"] if not a.startswith(f"--{name}=")] + ([f"--{name}={value}"] if value else [])


def test_retention(prod):
    compactor = workload(prod, "thanos-compactor")["inputs"]
    assert check("thanos-retention-minimums", STS, compactor) == []
    set_flag(compactor, "thanos-compactor", "retention.resolution-raw", "1d")
    assert check("thanos-retention-minimums", STS, compactor) == [
        "compactor raw retention is below 40h with downsampling on: Thanos refuses to start "
        "(config: thanos.compactor.retention.raw).",
        "compactor raw retention is below the floor of 30d (config: thanos.compactor.retention.raw)."]
    set_flag(compactor, "thanos-compactor", "retention.resolution-raw", "7d")
    assert check("thanos-retention-minimums", STS, compactor, {"rawFloor": "2d"}) == []
    set_flag(compactor, "thanos-compactor", "retention.resolution-1h", "90d")
    assert check("thanos-retention-minimums", STS, compactor, {"rawFloor": "2d"}) == [
        "compactor retention must satisfy 1h >= 5m >= raw (0d = forever) (config: thanos.compactor.retention)."]


def test_compactor_singleton(prod):
    compactor = workload(prod, "thanos-compactor")["inputs"]
    assert check("thanos-compactor-singleton", STS, compactor) == []
    compactor["spec"]["replicas"] = 2
    assert check("thanos-compactor-singleton", STS, compactor) == [
        "the compactor runs 2 replicas: more than one compactor per bucket produces overlapping blocks and halts "
        "compaction."]
    compactor["spec"]["replicas"] = 1
    del compactor["spec"]["volumeClaimTemplates"]
    assert check("thanos-compactor-singleton", STS, compactor) == [
        "the compactor's data directory is not on a persistent volume."]
    hpa = {"spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "thanos-compactor"}}}
    assert check("thanos-compactor-singleton", "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", hpa) == [
        "the compactor thanos-compactor is autoscaled: it must be a singleton."]


def test_block_durations(prod):
    prometheus = workload(prod, "thanos-prometheus")["inputs"]
    assert check("thanos-producers-blocks-and-labels", STS, prometheus) == []
    set_flag(prometheus, "prometheus", "storage.tsdb.max-block-duration", "24h")
    assert check("thanos-producers-blocks-and-labels", STS, prometheus) == [
        "Prometheus with an uploading sidecar needs --storage.tsdb.min-block-duration = "
        "--storage.tsdb.max-block-duration = 2h (local compaction would lose or overlap blocks)."]


def test_ruler_label_drop_and_its_remediation(prod):
    ruler = workload(prod, "thanos-ruler")["inputs"]
    assert check("thanos-producers-blocks-and-labels", STS, ruler) == []
    set_flag(ruler, "thanos-ruler", "alert.label-drop", None)
    assert check("thanos-producers-blocks-and-labels", STS, ruler) == [
        "ruler HA must drop its replica label from alerts: add --alert.label-drop=rule_replica."]
    args = ResourceValidationArgs(STS, unknown_checking_proxy(ruler), "urn", "r", options(), None, {})
    fixed = POLICIES["thanos-producers-blocks-and-labels"].remediate(args)
    assert "--alert.label-drop=rule_replica" in container(fixed, "thanos-ruler")["args"]
    assert check("thanos-producers-blocks-and-labels", STS, fixed) == []


def test_store_limits(prod):
    store = workload(prod, "thanos-store")["inputs"]
    assert check("thanos-store-limits", STS, store) == []
    set_flag(store, "thanos-store", "store.limits.request-series", None)
    del container(store, "thanos-store")["resources"]["limits"]["memory"]
    assert check("thanos-store-limits", STS, store) == [
        "the store gateway has no memory limit (config: thanos.store.resources).",
        "the store gateway sets no --store.limits.request-series: one wide query can OOM every replica "
        "(config: thanos.store.series-limit)."]


def test_flags_known(prod):
    query = workload(prod, "thanos-query-pods")["inputs"]
    assert check("thanos-flags-known", DEPLOYMENT, query) == []
    container(query, "thanos-query")["args"] += ["--store=dnssrv+_grpc._tcp.x", "--endpoint=x"]
    assert check("thanos-flags-known", DEPLOYMENT, query) == [
        "thanos query has no flag --store in v0.42.4.", "thanos query --endpoint is deprecated in v0.42.4."]


def test_one_compactor_per_bucket(prod):
    receive_shard = workload(prod, "thanos-compactor-receive")
    compactor = copy.deepcopy(workload(prod, "thanos-compactor"))
    secret = aws_secret("acme-thanos-prod-us-east-1", compactor["provider"])
    # The planned shards (receive's streams, every other stream) share the bucket by their selectors.
    assert check_stack("thanos-compactor-one-per-bucket", [secret, compactor, receive_shard]) == []
    twin = {**copy.deepcopy(receive_shard), "urn": "urn:twin"}  # a second owner of receive's streams
    assert check_stack("thanos-compactor-one-per-bucket", [secret, compactor, receive_shard, twin]) == [
        "2 compactors write to bucket S3:acme-thanos-prod-us-east-1/: exactly one compactor may own a bucket "
        "(config: regions[].compactor-cluster)."]
    args = container(compactor["inputs"], "thanos-compactor")["args"]
    args[:] = [a for a in args if not a.startswith("--selector.relabel-config")]
    second = copy.deepcopy(compactor)
    second["urn"] = "urn:second"
    assert check_stack("thanos-compactor-one-per-bucket", [secret, compactor]) == []
    assert check_stack("thanos-compactor-one-per-bucket", [secret, compactor, second]) == [
        "2 compactors write to bucket S3:acme-thanos-prod-us-east-1/: exactly one compactor may own a bucket "
        "(config: regions[].compactor-cluster)."]


def aws_secret(bucket, provider="urn:pulumi:prod::thanos::pulumi:providers:kubernetes::k8s-chicago"):
    return {"type": "kubernetes:core/v1:Secret", "provider": provider,
            "inputs": {"metadata": {"name": "thanos-objstore", "namespace": "thanos"},
                       "stringData": {"objstore.yml": cloud_aws.objstore_config(
                           AwsStorage(provider="aws", bucket=bucket), "us-east-1")}}}


def test_replica_labels(prod):
    cluster = [r for r in prod if "chicago" in (r["provider"] or "")]
    assert check_stack("thanos-producers-replica-labels", cluster) == []
    broken = copy.deepcopy(cluster)
    query = next(r for r in broken if r["type"] == DEPLOYMENT and r["inputs"]["metadata"]["name"] == "thanos-query-pods")
    c = container(query["inputs"], "thanos-query")
    c["args"] = [a for a in c["args"] if a != "--query.replica-label=receive_replica"]
    assert check_stack("thanos-producers-replica-labels", broken) == [
        "query does not deduplicate on receive_replica: add --query.replica-label for each, or every replica's "
        "series shows up twice."]


def test_receive_ring(prod):
    cluster = [r for r in prod if "chicago" in (r["provider"] or "")]
    assert check_stack("thanos-producers-receive-ring", cluster) == []
    broken = copy.deepcopy(cluster)
    ring = next(r for r in broken if r["type"] == "kubernetes:core/v1:ConfigMap"
                and r["inputs"]["metadata"]["name"] == "thanos-receive-hashring")
    document = json.loads(ring["inputs"]["data"]["hashrings.json"])
    document[0]["endpoints"] = document[0]["endpoints"][:2]
    ring["inputs"]["data"]["hashrings.json"] = json.dumps(document)
    assert check_stack("thanos-producers-receive-ring", broken) == [
        "receive replication factor 3 exceeds the 2 hashring endpoints: every write fails "
        "(config: thanos.receive.replication-factor)."]


# --- storage, identity, hardening -------------------------------------------------------------------------------

def test_bucket_safety(prod):
    assert check_stack("thanos-storage-bucket-safety", prod) == []
    without = [r for r in prod if not (r["type"] == "aws:s3/bucketVersioning:BucketVersioning"
                                       and r["name"] == "us-east-1-objectstore-bucket-versioning")]
    assert check_stack("thanos-storage-bucket-safety", without) == [
        "S3 bucket acme-thanos-prod-us-east-1 has no versioning enabled."]


def test_lifecycle(prod):
    lifecycle = next(r for r in prod if r["type"] == "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert check_stack("thanos-retention-lifecycle", [{"type": lifecycle["type"], "inputs": lifecycle["inputs"]}]) == []
    props = copy.deepcopy(lifecycle["inputs"])
    props["rules"].append({"id": "cheap", "status": "Enabled", "transitions": [{"days": 30, "storageClass": "GLACIER"}],
                           "expiration": {"days": 90}})
    assert check_stack("thanos-retention-lifecycle", [{"type": lifecycle["type"], "inputs": props}]) == [
        "lifecycle rule cheap expires current objects: retention is the compactor's job; an expiration deletes parts "
        "of blocks Thanos still reads.",
        "lifecycle rule cheap moves objects to GLACIER, which Thanos cannot read without a restore."]


def test_replicated(prod):
    assert check_stack("thanos-storage-replicated", prod) == []
    without = copy.deepcopy(prod)
    config = next(r for r in without if r["type"] == "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
                  and r["name"].startswith("us-west-2"))
    config["inputs"]["rules"][0]["status"] = "Disabled"
    # Disabled by this program for a DR switch or a failback step (its rule id): still a replicated bucket.
    assert check_stack("thanos-storage-replicated", without) == []
    config["inputs"]["rules"][0]["id"] = "someone-elses-rule"
    assert check_stack("thanos-storage-replicated", without) == [
        "S3 bucket acme-thanos-prod-us-west-2 is not replicated to another region "
        "(config: regions[].storage.replication)."]


def test_protected(prod):
    bucket = next(r for r in prod if r["type"] == "aws:s3/bucket:Bucket")
    assert check("thanos-storage-protected", bucket["type"], bucket["inputs"], protect=True) == []
    assert check("thanos-storage-protected", bucket["type"], bucket["inputs"], protect=False) == [
        "this bucket holds every block Thanos ever wrote: set protect (and retainOnDelete) (config: protect-data)."]


def test_no_wildcards(prod):
    policy = next(r for r in prod if r["type"] == "aws:iam/rolePolicy:RolePolicy")
    assert check("thanos-identity-no-wildcards", policy["type"], policy["inputs"]) == []
    document = json.loads(policy["inputs"]["policy"])
    document["Statement"][1]["Action"] = ["s3:*"]
    assert check("thanos-identity-no-wildcards", policy["type"], {"policy": json.dumps(document)}) == [
        "IAM action s3:* is a wildcard: grant the exact actions."]


def test_only_compactor_deletes(prod):
    assert check_stack("thanos-identity-only-compactor-deletes", prod) == []
    broken = copy.deepcopy(prod)
    store_policy = next(r for r in broken if r["type"] == "aws:iam/rolePolicy:RolePolicy"
                        and r["name"] == "us-east-1-objectstore-chicago-store")
    document = json.loads(store_policy["inputs"]["policy"])
    document["Statement"][1]["Action"].append("s3:DeleteObject")
    store_policy["inputs"]["policy"] = json.dumps(document)
    store_policy["inputs"]["role"] = "thanos-prod-chicago-store"
    for r in broken:
        if r["type"] == "aws:iam/role:Role":
            r["inputs"]["id"] = r["inputs"]["name"]
    assert check_stack("thanos-identity-only-compactor-deletes", broken) == [
        "the store role may delete objects: only the compactor deletes."]


def test_only_the_compactor_writes_block_markers_on_every_cloud(planned, prod):
    """A writer that can put deletion-mark.json has the compactor delete any block: the plan denies it on each cloud
    (S3 Deny, a GCS IAM condition, an Azure ABAC condition) and the pack refuses a writer without that."""
    broken = copy.deepcopy(prod)
    for r in broken:
        if r["type"] == "aws:iam/role:Role":
            r["inputs"]["id"] = r["inputs"]["name"]
    policy = next(r for r in broken if r["type"] == "aws:iam/rolePolicy:RolePolicy"
                  and r["name"] == "us-east-1-objectstore-chicago-receive")
    document = json.loads(policy["inputs"]["policy"])
    deny = next(st for st in document["Statement"] if st["Effect"] == "Deny")
    assert deny["Action"] == ["s3:PutObject"] and deny["Resource"][0].endswith("/*-mark.json")
    policy["inputs"]["role"] = "thanos-prod-chicago-receive"
    assert check_stack("thanos-identity-only-compactor-deletes", broken) == []
    document["Statement"].remove(deny)
    policy["inputs"]["policy"] = json.dumps(document)
    assert check_stack("thanos-identity-only-compactor-deletes", broken) == [
        "the receive role may write block markers: a deletion-mark.json it writes makes the compactor delete the block "
        "(and the delete replicates to the DR copy); deny s3:PutObject on <bucket>/*-mark.json."]

    gcp = copy.deepcopy(planned["gcp"].plan["resources"])
    writer = next(r for r in gcp if r["type"] == "gcp:storage/bucketIAMMember:BucketIAMMember"
                  and r["name"].endswith("iowa-ruler-writer"))
    assert writer["inputs"]["condition"]["expression"] == '!resource.name.endsWith("-mark.json")'
    compactor = next(r for r in gcp if r["type"] == "gcp:storage/bucketIAMMember:BucketIAMMember"
                     and r["name"].endswith("iowa-compactor-objectUser"))
    assert "condition" not in compactor["inputs"]  # the compactor writes marks
    del writer["inputs"]["condition"]
    assert check_stack("thanos-identity-only-compactor-deletes", gcp) == [
        "serviceAccount:thanos-prod-iowa-ruler@acme-observability.iam.gserviceaccount.com may create block markers: a "
        "deletion-mark.json it writes makes the compactor delete the block; add the condition "
        '!resource.name.endsWith("-mark.json") to the binding.']

    azure = copy.deepcopy(planned["azure"].plan["resources"])
    assignment = next(r for r in azure if r["type"] == "azure-native:authorization:RoleAssignment"
                      and r["name"].endswith("amsterdam-receive"))
    assert "blobs:path] StringNotLike '*-mark.json'" in assignment["inputs"]["condition"]
    assert assignment["inputs"]["conditionVersion"] == "2.0"
    del assignment["inputs"]["condition"]
    assert check_stack("thanos-identity-only-compactor-deletes", azure) == [
        "westeurope-objectstore-amsterdam-receive may write block markers: a deletion-mark.json it writes makes the "
        "compactor delete the block; add a condition refusing writes to blobs:path '*-mark.json'."]


def test_a_dr_copy_that_mirrors_deletes_is_object_locked(prod):
    locks = [r for r in prod if r["type"] == "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"]
    assert [(r["inputs"]["rule"]["defaultRetention"], r["protect"]) for r in locks] == \
        [({"mode": "GOVERNANCE", "days": 30}, True)] * 2  # each region's DR copy, never its source
    assert check_stack("thanos-storage-dr-immutable", prod) == []
    unlocked = [r for r in prod if r not in locks[:1]]
    found = check_stack("thanos-storage-dr-immutable", unlocked)
    assert len(found) == 1 and found[0].startswith("the DR copy ") and "without Object Lock" in found[0], found
    assert found[0].endswith("(config: regions[].storage.dr-immutable-for).")
    # Without delete-marker replication the copy keeps what the source deletes: nothing to lock against.
    kept = copy.deepcopy(unlocked)
    for r in kept:
        if r["type"] == "aws:s3/bucketReplicationConfig:BucketReplicationConfig":
            for rule in r["inputs"]["rules"]:
                rule["deleteMarkerReplication"]["status"] = "Disabled"
    assert check_stack("thanos-storage-dr-immutable", kept) == []


def test_a_dr_copy_keeps_deleted_versions_longer_than_its_source(prod):
    """Object Lock covers only young versions: an older block deleted in the source (and the delete replicated) is
    recoverable from the copy only while the copy keeps noncurrent versions, so it must keep them longer."""
    lifecycles = {r["inputs"]["bucket"]: r for r in prod
                  if r["type"] == "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"}
    days = {bucket: next(rule["noncurrentVersionExpiration"]["noncurrentDays"] for rule in r["inputs"]["rules"]
                         if rule.get("noncurrentVersionExpiration")) for bucket, r in lifecycles.items()}
    replicated = [(r["inputs"]["bucket"], rule["destination"]["bucket"].rsplit(":", 1)[-1]) for r in prod
                  if r["type"] == "aws:s3/bucketReplicationConfig:BucketReplicationConfig" for rule in r["inputs"]["rules"]]
    assert replicated and all(days[copy_] == 90 > days[source] == 30 for source, copy_ in replicated), days
    short = copy.deepcopy(prod)
    source, destination = replicated[0]
    for r in short:
        if r["type"] == "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration" and \
                r["inputs"]["bucket"] == destination:
            for rule in r["inputs"]["rules"]:
                if rule.get("noncurrentVersionExpiration"):
                    rule["noncurrentVersionExpiration"]["noncurrentDays"] = 30
    assert check_stack("thanos-storage-dr-immutable", short) == [
        f"the DR copy {destination} keeps deleted versions 30 days, no longer than {source} (30): a replicated delete "
        "of a block older than the Object Lock is gone from both at once; keep the copy's noncurrent versions longer "
        "(config: regions[].storage.dr-noncurrent-version-expiration)."]


DIGEST = "sha256:" + "ab" * 32


def test_the_pack_can_require_images_pinned_by_digest(prod):
    store = workload(prod, "thanos-store")["inputs"]
    assert check("thanos-hardening-pods", STS, store) == []  # tags are enough unless required
    found = check("thanos-hardening-pods", STS, store, {"requireDigests": True})
    assert found and all("is pinned by tag only: a tag can be moved; pin it by digest (config: image-digests)." in m
                         for m in found), found
    for c in store["spec"]["template"]["spec"]["containers"]:
        c["image"] = f"{c['image']}@{DIGEST}"
    assert check("thanos-hardening-pods", STS, store, {"requireDigests": True}) == []
    # The operator's Prometheus runs the Thanos sidecar from spec.thanos.image.
    prometheus = {"spec": {"thanos": {"image": "quay.io/thanos/thanos:v0.42.4"}}}
    assert check("thanos-hardening-pods", "kubernetes:monitoring.coreos.com/v1:Prometheus", prometheus,
                 {"requireDigests": True}) == [
        "the Thanos image quay.io/thanos/thanos:v0.42.4 is pinned by tag only: a tag can be moved; pin it by digest "
        "(config: image-digests)."]
    prometheus["spec"]["thanos"]["image"] += f"@{DIGEST}"
    assert check("thanos-hardening-pods", "kubernetes:monitoring.coreos.com/v1:Prometheus", prometheus,
                 {"requireDigests": True}) == []


def test_image_digests_pin_every_container_of_a_repository_and_keep_the_tag(tmp_path):
    probe = f"""
plan = plan_stack("dev", edit=lambda c: c.update({{"image-digests": {{"quay.io/thanos/thanos": "{DIGEST}"}}}}))
images = set()
for r in plan.resources:
    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                images.add(x) if k == "image" and isinstance(x, str) else walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(r.inputs)
versions = {{r.inputs["metadata"]["labels"].get("app.kubernetes.io/version") for r in plan.resources
            if r.type == "kubernetes:apps/v1:StatefulSet" and r.inputs["metadata"]["name"] == "thanos-store"}}
print(json.dumps({{"images": sorted(images), "versions": sorted(versions)}}))
"""
    proc = run_probe(tmp_path, probe)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    thanos = [i for i in result["images"] if i.startswith("quay.io/thanos/thanos")]
    assert thanos == [f"quay.io/thanos/thanos:v0.42.4@{DIGEST}"]  # every one, the tag kept
    assert any(i.startswith("quay.io/prometheus/prometheus:") and "@" not in i for i in result["images"])  # others not
    assert result["versions"] == ["v0.42.4"]


def test_objstore_secrecy():
    config = yaml.safe_dump({"type": "S3", "config": {"bucket": "b", "endpoint": "s3.us-east-1.amazonaws.com",
                                                      "access_key": "AKIA", "secret_key": "s"}})
    assert check("thanos-identity-objstore-secret", "kubernetes:core/v1:ConfigMap", {"data": {"objstore.yml": config}}) == [
        "ConfigMap key objstore.yml holds an objstore config: keep it in a Secret."]
    assert check("thanos-identity-objstore-secret", "kubernetes:core/v1:Secret", {"stringData": {"objstore.yml": config}}) == [
        "Secret key objstore.yml holds static cloud credentials: use workload identity."]
    safe = aws_secret("acme-thanos")["inputs"]
    assert check("thanos-identity-objstore-secret", "kubernetes:core/v1:Secret", safe) == []


def test_hardening(prod):
    store = workload(prod, "thanos-store")["inputs"]
    assert check("thanos-hardening-pods", STS, store) == []
    c = container(store, "thanos-store")
    c["image"] = "quay.io/thanos/thanos:latest"
    c["securityContext"]["readOnlyRootFilesystem"] = False
    del c["readinessProbe"]
    assert check("thanos-hardening-pods", STS, store) == [
        "container thanos-store image quay.io/thanos/thanos:latest is not pinned to a version (config: thanos.image).",
        "container thanos-store needs readOnlyRootFilesystem and allowPrivilegeEscalation false.",
        "container thanos-store needs liveness and readiness probes."]


def test_one_version(prod):
    assert check_stack("thanos-hardening-one-version", prod) == []
    broken = copy.deepcopy(prod)
    container(workload_in(broken, "thanos-store"), "thanos-store")["image"] = "quay.io/thanos/thanos:v0.41.0"
    assert check_stack("thanos-hardening-one-version", broken) == [
        "the stack runs more than one Thanos version: v0.41.0, v0.42.4 (config: thanos.image)."]


def workload_in(resources, name):
    return next(r for r in resources if r["type"] in (STS, DEPLOYMENT) and r["inputs"]["metadata"]["name"] == name)["inputs"]


def test_external_labels(prod):
    cluster = [r for r in prod if "chicago" in (r["provider"] or "")]
    assert check_stack("thanos-producers-external-labels", cluster) == []
    broken = copy.deepcopy(cluster)
    config_map = next(r for r in broken if r["type"] == "kubernetes:core/v1:ConfigMap"
                      and r["inputs"]["metadata"]["name"] == "thanos-prometheus")
    document = yaml.safe_load(config_map["inputs"]["data"]["prometheus.yml"])
    del document["global"]["external_labels"]["prometheus_replica"]
    config_map["inputs"]["data"]["prometheus.yml"] = yaml.safe_dump(document)
    receive = next(r for r in broken if r["type"] == STS and r["inputs"]["metadata"]["name"] == "thanos-receive-us-east-1a")
    c = container(receive["inputs"], "thanos-receive")
    c["args"] = [a for a in c["args"] if "receive_replica" not in a]
    assert check_stack("thanos-producers-external-labels", broken) == [
        "thanos-prometheus: 2 Prometheus replicas share one external label set (add a per-pod replica label such as "
        "prometheus_replica: ${POD_NAME}).",
        "thanos-receive-us-east-1a: 2 receive replicas upload blocks with identical labels (add a per-pod replica "
        "label)."]


def test_azure_dr_copies_may_expire_blocks_only_past_every_retention(planned):
    """Object replication copies no deletes: a DR account may expire current blobs, but only after the longest
    retention of every compactor plus its deletion delay, and never when a resolution is kept forever."""
    resources = copy.deepcopy(planned["azure"].plan["resources"])
    assert check_stack("thanos-retention-lifecycle", resources) == []
    copy_rules = [rule for r in resources if r["type"] == "azure-native:storage:ManagementPolicy"
                  for rule in r["inputs"]["policy"]["rules"] if rule["name"] == "expire-copied-blocks"]
    assert len(copy_rules) == 2
    copy_rules[0]["definition"]["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] = 365
    assert check_stack("thanos-retention-lifecycle", resources) == [
        "management policy rule expire-copied-blocks deletes current blobs: a DR copy may expire blocks only after "
        "every retention and the deletion delay (732 days)."]
    for r in resources:
        for c in (r["inputs"].get("spec") or {}).get("template", {}).get("spec", {}).get("containers", []):
            c["args"] = [a.replace("--retention.resolution-1h=2y", "--retention.resolution-1h=0d") for a in c.get("args", [])]
    assert "a DR copy may expire blocks only when no compactor keeps a resolution forever" in \
        " ".join(check_stack("thanos-retention-lifecycle", resources))
    not_copies = [r for r in planned["azure"].plan["resources"]
                  if r["type"] != "azure-native:storage:ObjectReplicationPolicy"]
    assert check_stack("thanos-retention-lifecycle", not_copies) == [
        "management policy rule expire-copied-blocks deletes current blobs: retention is the compactor's job."] * 2


def test_azure_and_gcs_lifecycle(planned):
    policy = next(r for r in planned["azure"].plan["resources"]
                  if r["type"] == "azure-native:storage:ManagementPolicy"
                  and not r["inputs"]["accountName"].endswith("dr"))
    assert check_stack("thanos-retention-lifecycle", [{"type": policy["type"], "inputs": policy["inputs"]}]) == []
    props = copy.deepcopy(policy["inputs"])
    props["policy"]["rules"].append({"name": "cheap", "definition": {"actions": {"baseBlob": {
        "tierToArchive": {"daysAfterModificationGreaterThan": 30}, "delete": {"daysAfterModificationGreaterThan": 90}}}}})
    assert check_stack("thanos-retention-lifecycle", [{"type": policy["type"], "inputs": props}]) == [
        "management policy rule cheap deletes current blobs: retention is the compactor's job.",
        "management policy rule cheap moves blobs to the Archive tier, which Thanos cannot read."]
    bucket = next(r for r in planned["gcp"].plan["resources"] if r["type"] == "gcp:storage/bucket:Bucket")
    assert check_stack("thanos-retention-lifecycle", [{"type": bucket["type"], "inputs": bucket["inputs"]}]) == []
    props = copy.deepcopy(bucket["inputs"])
    props["lifecycleRules"].append({"action": {"type": "Delete"}, "condition": {"age": 90}})
    assert check_stack("thanos-retention-lifecycle", [{"type": bucket["type"], "inputs": props}]) == [
        "a GCS lifecycle rule deletes live objects: retention is the compactor's job."]


def test_unknown_values_are_a_finding_or_with_note_the_engines_preview_signal(prod):
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

    store = workload(prod, "thanos-store")["inputs"]
    container(store, "thanos-store")["image"] = UNKNOWN_STRING_VALUE
    [finding] = check("thanos-hardening-pods", STS, store)
    assert finding.startswith("thanos-hardening-pods could not judge this resource during this preview: its value at "
                              ".spec.template.spec.containers.0.image is computed at apply")
    with pytest.raises(UnknownValueError):
        check("thanos-hardening-pods", STS, store, {"unknownValues": "note"})


def test_a_stack_rule_that_meets_an_unknown_outside_the_resources_props_still_reports_it():
    """A value read from elsewhere (a provider's or a parent's props) names no resource: the finding is the stack's."""
    from pulumi_policy import EnforcementLevel, StackValidationPolicy, StackValidationArgs
    from pulumi_policy.proxy import UnknownValueError

    from thanos_policies._unknowns import judge_unknowns

    def reads_a_provider(args, report):
        raise UnknownValueError(UNKNOWN_STRING, ["kubeconfig"])

    policy = judge_unknowns(StackValidationPolicy(name="t", description="d", validate=reads_a_provider,
                                                  enforcement_level=EnforcementLevel.MANDATORY))
    found = []
    policy.validate(StackValidationArgs([], {}), lambda message, urn=None: found.append((message, urn)))
    assert found == [("t could not judge the stack during this preview: its value at .kubeconfig is computed at "
                      "apply, so the rule (which stops at the first such value) would first run at `pulumi up`, after "
                      "the step. Build that value from what is known before the resource exists, or accept it for "
                      "this rule (unknownValues: note).", None)]


def test_a_stack_rule_names_each_resource_it_could_not_judge(prod):
    """A stack rule meeting a value computed at apply names the resources that hold it (another stack's bucket
    settings, say, that name the bucket by its id)."""
    buckets = [copy.deepcopy(r) for r in prod if r["type"].startswith("aws:s3/")]
    assert check_stack("thanos-storage-bucket-safety", buckets) == []
    versioning = [r for r in buckets if r["type"] == "aws:s3/bucketVersioning:BucketVersioning"]
    for r in versioning:
        r["inputs"]["bucket"] = UNKNOWN_STRING
    found = check_stack("thanos-storage-bucket-safety", buckets)
    assert len(found) == len(versioning) == 4
    assert all(m.startswith("thanos-storage-bucket-safety could not judge aws:s3/bucketVersioning:BucketVersioning ")
               and "its value at .bucket is computed at apply" in m for m in found)
    # Past five, the rest are counted.
    found = check_stack("thanos-storage-bucket-safety", [*buckets, *copy.deepcopy(versioning)])
    assert len(found) == 6 and found[-1] == ("thanos-storage-bucket-safety could not judge 3 more resources during "
                                             "this preview (value at .bucket computed at apply).")


def store_stack(spec_raw):
    from components.platform.kube import ClusterContext
    from components.thanos import store as store_module
    from config.thanos import CachesSpec, StoreSpec

    ctx = ClusterContext(cluster="c", region="r", namespace="thanos", image="quay.io/thanos/thanos:v0.42.4")
    objects = store_module.build_store(ctx, StoreSpec.model_validate(spec_raw), CachesSpec())
    return [{"type": STS, "provider": "urn:k8s-c", "inputs": o} for o in objects if o["kind"] == "StatefulSet"]


def test_store_shards_cover():
    sharded = store_stack({"shards": 3, "time-partitions": [{"max-time": "2w"}, {"min-time": "3w"}]})
    assert check_stack("thanos-store-shards-cover", sharded) == []
    assert check_stack("thanos-store-shards-cover", sharded[1:]) == [
        "no store serves hash shard(s) [0] of 3: those blocks are invisible (config: thanos.store.shards)."]
    gap = copy.deepcopy(sharded)
    for s in gap[3:]:
        c = s["inputs"]["spec"]["template"]["spec"]["containers"][0]
        c["args"] = [a.replace("--min-time=-3w", "--min-time=-1w") for a in c["args"]]
    assert check_stack("thanos-store-shards-cover", gap) == [
        "store time partitions leave a gap between them: blocks in it are served by no store "
        "(config: thanos.store.time-partitions)."]


def test_compactor_delete_delay(prod):
    compactor = workload(prod, "thanos-compactor")["inputs"]
    set_flag(compactor, "thanos-compactor", "delete-delay", "0s")
    assert check("thanos-compactor-singleton", STS, compactor) == [
        "the compactor's --delete-delay is 0: blocks vanish while store gateways still serve them "
        "(config: thanos.compactor.delete-delay)."]


def test_receive_replication_factor_must_be_odd(prod):
    router = workload(prod, "thanos-receive-router")["inputs"]
    assert check("thanos-producers-blocks-and-labels", DEPLOYMENT, router) == []
    set_flag(router, "thanos-receive-router", "receive.replication-factor", "2")
    assert check("thanos-producers-blocks-and-labels", DEPLOYMENT, router) == [
        "receive replication factor 2 is even: use an odd factor (config: thanos.receive.replication-factor)."]


def test_bucket_safety_on_gcs_and_azure(planned):
    gcp = planned["gcp"].plan["resources"]
    assert check_stack("thanos-storage-bucket-safety", gcp) == []
    broken = copy.deepcopy(gcp)
    next(r for r in broken if r["type"] == "gcp:storage/bucket:Bucket")["inputs"]["publicAccessPrevention"] = "inherited"
    assert check_stack("thanos-storage-bucket-safety", broken) == [
        "GCS bucket acme-thanos-prod-eu must enforce public access prevention and uniform access."]
    azure = planned["azure"].plan["resources"]
    assert check_stack("thanos-storage-bucket-safety", azure) == []
    broken = copy.deepcopy(azure)
    next(r for r in broken if r["type"] == "azure-native:storage:StorageAccount")["inputs"]["allowSharedKeyAccess"] = True
    assert check_stack("thanos-storage-bucket-safety", broken) == [
        "storage account acmethanosneu must disable public blob and shared-key access."]


def test_only_compactor_deletes_on_gcs_and_azure(planned):
    gcp = copy.deepcopy(planned["gcp"].plan["resources"])
    assert check_stack("thanos-identity-only-compactor-deletes", gcp) == []
    member = next(r for r in gcp if r["type"] == "gcp:storage/bucketIAMMember:BucketIAMMember"
                  and r["name"].endswith("iowa-store-objectViewer"))
    member["inputs"]["role"] = "roles/storage.objectAdmin"
    member["inputs"]["member"] = "serviceAccount:thanos-prod-iowa-store@acme-observability.iam.gserviceaccount.com"
    gcs_message = ("which deletes objects: only the compactor deletes (on GCS, block writers too, through a role of "
                   "exactly object get, list, create and delete).")
    markers = ("may create block markers: a deletion-mark.json it writes makes the compactor delete the block; add "
               'the condition !resource.name.endsWith("-mark.json") to the binding.')
    assert check_stack("thanos-identity-only-compactor-deletes", gcp) == [
        "serviceAccount:thanos-prod-iowa-store@acme-observability.iam.gserviceaccount.com " + markers,
        "serviceAccount:thanos-prod-iowa-store@acme-observability.iam.gserviceaccount.com gets roles/storage.objectAdmin, "
        + gcs_message]
    # The writers' custom role deletes: a reader bound to it is refused, a writer with a broader role too.
    gcp = copy.deepcopy(planned["gcp"].plan["resources"])
    writer = next(r for r in gcp if r["type"] == "gcp:storage/bucketIAMMember:BucketIAMMember"
                  and r["name"].endswith("iowa-ruler-writer"))
    store = next(r for r in gcp if r["type"] == "gcp:storage/bucketIAMMember:BucketIAMMember"
                 and r["name"].endswith("iowa-store-objectViewer"))
    writer_role = writer["inputs"]["role"]
    store["inputs"]["role"] = writer_role
    writer["inputs"]["role"] = "roles/storage.objectUser"
    assert check_stack("thanos-identity-only-compactor-deletes", gcp) == [
        "serviceAccount:thanos-prod-iowa-ruler@acme-observability.iam.gserviceaccount.com gets roles/storage.objectUser, "
        + gcs_message,
        "serviceAccount:thanos-prod-iowa-store@acme-observability.iam.gserviceaccount.com " + markers,
        f"serviceAccount:thanos-prod-iowa-store@acme-observability.iam.gserviceaccount.com gets {writer_role}"
        ", " + gcs_message]
    azure = copy.deepcopy(planned["azure"].plan["resources"])
    assert check_stack("thanos-identity-only-compactor-deletes", azure) == []
    assignment = next(r for r in azure if r["type"] == "azure-native:authorization:RoleAssignment"
                      and r["name"].endswith("amsterdam-ruler"))
    assignment["inputs"]["roleDefinitionId"] = ("/subscriptions/0/providers/Microsoft.Authorization/roleDefinitions/"
                                                "ba92f5b4-2d11-453d-a403-e96b0029c9fe")
    assert check_stack("thanos-identity-only-compactor-deletes", azure) == [
        "westeurope-objectstore-amsterdam-ruler gets a blob role that deletes: only the compactor deletes."]


def test_objstore_inline_flag(prod):
    store = workload(prod, "thanos-store")["inputs"]
    set_flag(store, "thanos-store", "objstore.config", "type: S3")
    assert check("thanos-identity-objstore-secret", STS, store) == [
        "the objstore config is passed inline as a flag: mount it from a Secret (--objstore.config-file)."]


def test_every_policy_has_tests():
    text = "".join(p.read_text() for p in (ROOT / "tests").glob("test_polic*.py"))
    assert [name for name in POLICIES if f'"{name}"' not in text] == []


def test_no_compactor_on_a_replication_destination(prod):
    compactor = workload(prod, "thanos-compactor")
    secret = aws_secret("acme-thanos-prod-us-east-1-dr", compactor["provider"])
    replication = [r for r in prod if r["type"] == "aws:s3/bucketReplicationConfig:BucketReplicationConfig"]
    assert check_stack("thanos-compactor-one-per-bucket", [aws_secret("acme-thanos-prod-us-east-1",
                                                                       compactor["provider"]), compactor,
                                                            *replication]) == []
    assert check_stack("thanos-compactor-one-per-bucket", [secret, compactor, *replication]) == [
        "a compactor writes to acme-thanos-prod-us-east-1-dr, a replication destination: it would compact the "
        "replicated streams a second time (overlaps); DR copies are read-only."]


def test_compactor_volume_floor(prod):
    compactor = workload(prod, "thanos-compactor")["inputs"]
    compactor["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "20Gi"
    assert check("thanos-compactor-singleton", STS, compactor) == [
        "the compactor's volume is 20Gi, below 100Gi: compaction halts when it runs out of disk "
        "(config: thanos.compactor.storage-size)."]
    assert check("thanos-compactor-singleton", STS, compactor, {"minDataVolume": "10Gi"}) == []


def test_prometheus_local_retention(prod):
    prometheus = workload(prod, "thanos-prometheus")["inputs"]
    set_flag(prometheus, "prometheus", "storage.tsdb.retention.time", "2h")
    assert check("thanos-producers-blocks-and-labels", STS, prometheus) == [
        "Prometheus keeps 2h locally: below 6h (three blocks) an object storage outage loses data "
        "(config: thanos.prometheus.retention)."]


def test_receive_needs_a_spare_ingestor(prod):
    cluster = copy.deepcopy([r for r in prod if "chicago" in (r["provider"] or "")])
    ring = next(r for r in cluster if r["type"] == "kubernetes:core/v1:ConfigMap"
                and r["inputs"]["metadata"]["name"] == "thanos-receive-hashring")
    document = json.loads(ring["inputs"]["data"]["hashrings.json"])
    document[0]["endpoints"] = document[0]["endpoints"][:3]
    ring["inputs"]["data"]["hashrings.json"] = json.dumps(document)
    assert check_stack("thanos-producers-receive-ring", cluster) == [
        "receive runs 3 ingestor(s) for replication factor 3: below 4 every ingestor holds every series, so a rollout "
        "leaves no room for one more failure before writes lose their quorum (config: thanos.receive.ingestors)."]
    assert check_stack("thanos-producers-receive-ring", cluster, {"minSpareIngestors": 0}) == []


# --- every remaining message made to fire, exactly -----------------------------------------------------------------

def test_s3_encryption_and_public_access_block(prod):
    bucket = "acme-thanos-prod-us-east-1"
    without = [r for r in prod if not (r["type"] in ("aws:s3/bucketServerSideEncryptionConfiguration:"
                                                     "BucketServerSideEncryptionConfiguration",
                                                     "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
                                       and r["name"].startswith("us-east-1-objectstore-bucket-"))]
    assert len(prod) - len(without) == 2
    assert check_stack("thanos-storage-bucket-safety", without) == [
        f"S3 bucket {bucket} has no server-side encryption configuration.",
        f"S3 bucket {bucket} does not block all four kinds of public access."]
    partial = copy.deepcopy(prod)
    block = next(r for r in partial if r["type"] == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
                 and r["name"].startswith("us-east-1-objectstore-bucket-"))
    block["inputs"]["restrictPublicBuckets"] = False
    assert check_stack("thanos-storage-bucket-safety", partial) == [
        f"S3 bucket {bucket} does not block all four kinds of public access."]


def test_gcs_versioning_archive_classes_and_turbo_replication(planned):
    gcp = copy.deepcopy(planned["gcp"].plan["resources"])
    bucket = next(r for r in gcp if r["type"] == "gcp:storage/bucket:Bucket")
    name = bucket["inputs"]["name"]
    bucket["inputs"]["versioning"] = {"enabled": False}
    bucket["inputs"].pop("rpo")
    assert check_stack("thanos-storage-bucket-safety", gcp) == [f"GCS bucket {name} has no versioning."]
    assert check_stack("thanos-storage-replicated", gcp) == [
        f"GCS bucket {name} is not dual-region with turbo replication (config: regions[].storage.dual-region)."]
    props = copy.deepcopy(bucket["inputs"])
    props["lifecycleRules"].append({"action": {"type": "SetStorageClass", "storageClass": "COLDLINE"},
                                    "condition": {"age": 365}})
    assert check_stack("thanos-retention-lifecycle", [{"type": bucket["type"], "inputs": props}]) == [
        "a GCS lifecycle rule moves objects to COLDLINE: every read of an old block then pays retrieval fees and a "
        "minimum storage duration."]


def test_azure_account_must_be_geo_redundant(planned):
    azure = copy.deepcopy(planned["azure"].plan["resources"])
    assert check_stack("thanos-storage-replicated", azure) == []
    account = next(r for r in azure if r["type"] == "azure-native:storage:StorageAccount")
    account["inputs"]["sku"] = {"name": "Standard_ZRS"}
    assert check_stack("thanos-storage-replicated", azure) == [
        f"storage account {account['inputs']['accountName']} is not geo-redundant (config: regions[].storage.sku)."]


def test_hardening_of_the_pod_and_every_container(prod):
    store = workload(prod, "thanos-store")["inputs"]
    pod = store["spec"]["template"]["spec"]
    del pod["securityContext"]["runAsNonRoot"]
    assert check("thanos-hardening-pods", STS, store) == []  # runAsUser 65534 and each container's runAsNonRoot
    del pod["securityContext"]["runAsUser"]
    c = container(store, "thanos-store")
    del c["securityContext"]["runAsNonRoot"]
    c["securityContext"]["capabilities"] = {"drop": ["NET_RAW"]}
    del c["resources"]["requests"]
    assert check("thanos-hardening-pods", STS, store) == [
        "the pod does not set runAsNonRoot.",
        "container thanos-store does not drop ALL capabilities.",
        "container thanos-store needs resource requests and a memory limit."]


def test_5m_retention_below_ten_days(prod):
    compactor = workload(prod, "thanos-compactor")["inputs"]
    set_flag(compactor, "thanos-compactor", "retention.resolution-5m", "7d")
    set_flag(compactor, "thanos-compactor", "retention.resolution-1h", "7d")
    assert check("thanos-retention-minimums", STS, compactor) == [
        "compactor 5m retention is below 10d with downsampling on: Thanos refuses to start "
        "(config: thanos.compactor.retention.5m).",
        "compactor retention must satisfy 1h >= 5m >= raw (0d = forever) (config: thanos.compactor.retention)."]
    set_flag(compactor, "thanos-compactor", "downsampling.disable", None)
    compactor_c = container(compactor, "thanos-compactor")
    compactor_c["args"].append("--downsampling.disable")
    # Without downsampling no 5m or 1h block is made: a short retention only purges old ones (Observatorium sets 1s).
    assert check("thanos-retention-minimums", STS, compactor) == []


def test_a_compactor_deployment_must_recreate(prod):
    compactor = workload(prod, "thanos-compactor")["inputs"]
    spec = compactor["spec"]
    claim = spec.pop("volumeClaimTemplates")[0]
    spec["template"]["spec"]["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": "c"}})
    spec["strategy"] = {"type": "RollingUpdate"}
    assert claim and check("thanos-compactor-singleton", DEPLOYMENT, compactor) == [
        "a compactor Deployment must use strategy Recreate so two never run at once."]
    spec["strategy"] = {"type": "Recreate"}
    assert check("thanos-compactor-singleton", DEPLOYMENT, compactor) == []


def test_ruler_replicas_need_a_per_pod_label(prod):
    ruler = workload(prod, "thanos-ruler")["inputs"]
    c = container(ruler, "thanos-ruler")
    c["args"] = [a for a in c["args"] if not a.startswith("--label=rule_replica=")]
    assert check("thanos-producers-blocks-and-labels", STS, ruler) == [
        "ruler replicas have no per-pod replica label (--label=<name>=\"$(POD_NAME)\"): their blocks overlap."]
    ruler["spec"]["replicas"] = 1
    assert check("thanos-producers-blocks-and-labels", STS, ruler) == []


def test_uploaders_need_external_labels(prod):
    cluster = copy.deepcopy([r for r in prod if "chicago" in (r["provider"] or "")])
    ruler = next(r for r in cluster if r["type"] == STS and r["inputs"]["metadata"]["name"] == "thanos-ruler"
                 and r["inputs"]["metadata"]["namespace"] == "thanos")
    c = container(ruler["inputs"], "thanos-ruler")
    c["args"] = [a for a in c["args"] if not a.startswith("--label=")]
    config_map = next(r for r in cluster if r["type"] == "kubernetes:core/v1:ConfigMap"
                      and r["inputs"]["metadata"]["name"] == "thanos-prometheus")
    document = yaml.safe_load(config_map["inputs"]["data"]["prometheus.yml"])
    del document["global"]["external_labels"]
    config_map["inputs"]["data"]["prometheus.yml"] = yaml.safe_dump(document)
    assert check_stack("thanos-producers-external-labels", cluster) == [
        "thanos-prometheus: Prometheus uploads blocks without external labels.",
        "thanos-ruler: thanos rule uploads blocks without --label external labels."]


def test_store_shards_need_one_modulus_and_time_partitions_cover_both_ends():
    sharded = store_stack({"shards": 2})
    assert check_stack("thanos-store-shards-cover", sharded) == []
    odd = copy.deepcopy(sharded)
    c = odd[1]["inputs"]["spec"]["template"]["spec"]["containers"][0]
    c["args"] = [a.replace('"modulus":2', '"modulus":3') for a in c["args"]]
    assert any('"modulus":3' in a for a in c["args"])
    assert check_stack("thanos-store-shards-cover", odd) == [
        "store shards of one time range use different hashmod moduli [2, 3]."]
    parts = store_stack({"time-partitions": [{"max-time": "2w"}, {"min-time": "3w"}]})
    assert check_stack("thanos-store-shards-cover", parts) == []
    assert check_stack("thanos-store-shards-cover", parts[1:]) == [
        "no store serves blocks older than the oldest --min-time (config: thanos.store.time-partitions)."]
    assert check_stack("thanos-store-shards-cover", parts[:1]) == [
        "no store serves the newest blocks (every store has a --max-time) (config: thanos.store.time-partitions)."]


# --- reading anyone's Thanos --------------------------------------------------------------------------------------

def test_thanos_is_read_from_any_image_command_and_flag_form():
    from thanos_policies._workloads import image_version, thanos_containers

    env = [{"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "CONFIG", "valueFrom": {"secretKeyRef": {"name": "objstore", "key": "thanos.yaml"}}},
           {"name": "ZONE", "value": "eu-1a"}]
    pods = [
        {"image": "quay.io/thanos/thanos:v0.42.4", "args": ["rule", "--label", 'rule_replica="$(NAME)"', "--wait"]},
        {"image": "mirror.example.com/thanosio/thanos:v0.42.4", "command": ["/bin/thanos", "rule"],
         "args": ['--label=rule_replica="$(NAME)"', "--wait"]},
        {"image": "docker.io/bitnami/thanos:0.34.1-debian-12-r0", "args": ["rule", '--label=rule_replica="$(NAME)"',
                                                                             "--wait"]},
        {"image": "registry.local/observability/my-build:1.0", "command": ["thanos"],
         "args": ["rule", '--label=rule_replica="$(NAME)"', "--wait"]},
    ]
    for c in pods:
        props = {"spec": {"template": {"spec": {"containers": [{**c, "env": env}]}}}}
        [(_, command, flags)] = list(thanos_containers(props))
        assert (command, flags) == ("rule", ['--label=rule_replica="$(POD_NAME)"', "--wait"]), c["image"]
    store = {"image": "quay.io/thanos/thanos:v0.42.4", "env": env,
             "args": ["store", "--objstore.config", "$(CONFIG)", "--min-time", "-2w", "--label=zone=$(ZONE)"]}
    [(_, _, flags)] = list(thanos_containers({"spec": {"template": {"spec": {"containers": [store]}}}}))
    assert flags == ["--objstore.config=$(secret:objstore/thanos.yaml)", "--min-time=-2w", "--label=zone=eu-1a"]
    assert not list(thanos_containers({"spec": {"template": {"spec": {"containers": [
        {"image": "quay.io/prometheus/prometheus:v3.5.0", "args": ["--config.file=/etc/p.yml"]}]}}}}))
    assert [image_version(i) for i in ("quay.io/thanos/thanos:v0.42.4", "bitnami/thanos:0.34.1-debian-12-r0",
                                       "thanos/thanos@sha256:abc", "thanos/thanos:latest")] == [
        (0, 42, 4), (0, 34, 1), None, None]


def test_flags_are_judged_by_the_release_the_image_runs():
    def query(image, *args):
        return {"spec": {"template": {"spec": {"containers": [{"image": image, "args": ["query", *args]}]}}}}

    assert check("thanos-flags-known", DEPLOYMENT, query("quay.io/thanos/thanos:v0.30.2", "--endpoint=x",
                                                         "--store=y")) == []
    assert check("thanos-flags-known", DEPLOYMENT, query("quay.io/thanos/thanos:v0.39.1", "--store=y",
                                                         "--endpoint=x", "--store=z")) == [
        "thanos query has no flag --store since v0.38.0 (the image is v0.39.1)."]
    assert check("thanos-flags-known", DEPLOYMENT, query("quay.io/thanos/thanos:v0.42.4", "--endpoint=x")) == [
        "thanos query --endpoint is deprecated in v0.42.4."]


def test_wiring_references_find_placeholders_missing_services_and_self_copies():
    from thanos_policies._addresses import service_of

    assert [service_of(a) for a in ("dnssrv+_grpc._tcp.thanos-store.thanos.svc.cluster.local",
                                     "thanos-receive-0.thanos-receive.obs.svc.cluster.local:10901",
                                     "http://thanos-query.thanos.svc:9090", "memcached:11211")] == [
        ("thanos", "thanos-store"), ("obs", "thanos-receive"), ("thanos", "thanos-query"), None]
    query = {"type": DEPLOYMENT, "provider": "urn:k8s", "inputs": {"metadata": {"name": "q", "namespace": "t"}, "spec": {
        "template": {"spec": {"containers": [{"image": "quay.io/thanos/thanos:v0.42.4", "args": [
            "query", "--endpoint=dnssrv+_grpc._tcp.thanos-store.t.svc", "--endpoint=<STORE_ADDRESS>:10901"]}]}}}}}
    store = {"type": "kubernetes:core/v1:Service", "provider": "urn:k8s",
             "inputs": {"metadata": {"name": "thanos-store", "namespace": "t"}}}
    assert check_stack("thanos-wiring-references", [query, store]) == [
        "q: thanos query dials <STORE_ADDRESS>:10901, an unfilled placeholder."]
    renamed = copy.deepcopy(store)
    renamed["inputs"]["metadata"]["name"] = "thanos-store-0"
    assert check_stack("thanos-wiring-references", [query, renamed])[0] == (
        "q: thanos query dials dnssrv+_grpc._tcp.thanos-store.t.svc, but the stack declares no Service thanos-store "
        "in namespace t.")
    assert len(check_stack("thanos-wiring-references", [query])) == 1  # no Service visible in t: not judged


# --- answers: complete or warned, deduplicated by the function that fits the copies --------------------------------

NOT_STRICT = ("a non-strict endpoint that fails its health check is dropped without a warning, so the query answers "
              "success without that data")
STRICT_FIX = ("List each StoreAPI by its static per-pod address with strict: true (--endpoint.sd-config), so a dead "
              "one stays in the set and the answer warns.")


def _endpoints(query: dict) -> tuple[list[str], int, dict]:
    """The query container's args, the index of its --endpoint.sd-config and that config."""
    args = container(query["inputs"], "thanos-query")["args"]
    i = next(i for i, a in enumerate(args) if a.startswith("--endpoint.sd-config="))
    return args, i, json.loads(args[i].split("=", 1)[1])


def test_a_query_read_by_an_aborting_ruler_or_a_caching_frontend_lists_every_storeapi_strict(prod):
    """A non-strict endpoint that fails is dropped and the answer is a silent success: an aborting group evaluates on
    it, and the query-frontend caches it."""
    policy = "thanos-query-strict-endpoints"
    resources = chicago(prod)
    assert check_stack(policy, resources) == []
    args, i, sd = _endpoints(named(resources, "Deployment", "thanos-query-pods", "thanos"))
    del sd["endpoints"][0]["strict"]
    args[i] = f"--endpoint.sd-config={json.dumps(sd)}"
    loose = sd["endpoints"][0]["address"]
    cached = (f"thanos-query-pods: its StoreAPI endpoint(s) {loose} are not strict, and thanos query-frontend "
              f"thanos-query-frontend-pods caches its answers (--query-range.response-cache-config): {NOT_STRICT}, "
              "and the frontend caches the incomplete answer (it refuses only warned ones) and serves it after the "
              f"store is back, until the entry expires. {STRICT_FIX}")
    assert check_stack(policy, resources) == [cached]
    # The plan's ruler groups warn; one that aborts (Thanos' default when a group names no strategy) is misled too.
    rules = named(resources, "ConfigMap", "thanos-ruler-rules", "thanos")["inputs"]["data"]
    document = yaml.safe_load(rules["thanos.yaml"])
    del document["groups"][0]["partial_response_strategy"]
    rules["thanos.yaml"] = yaml.safe_dump(document)
    assert check_stack(policy, resources) == [
        f"thanos-query-pods: its StoreAPI endpoint(s) {loose} are not strict, and thanos rule thanos-ruler evaluates "
        f"groups with partial_response_strategy abort (thanos-end-to-end) on its answers: {NOT_STRICT} and those "
        f"groups evaluate on it instead of aborting. {STRICT_FIX}", cached]
    sd["endpoints"][0]["strict"] = True
    args[i] = f"--endpoint.sd-config={json.dumps(sd)}"
    assert check_stack(policy, resources) == []


def _service(name: str, app: str, headless: bool = False) -> dict:
    return {"type": "kubernetes:core/v1:Service", "provider": K8S, "inputs": {
        "metadata": {"name": name, "namespace": "mon"},
        "spec": {"selector": {"app": app}, **({"clusterIP": "None"} if headless else {})}}}


def _config_map(name: str, key: str, text: str, labels: dict | None = None) -> dict:
    return {"type": "kubernetes:core/v1:ConfigMap", "provider": K8S,
            "inputs": {"metadata": {"name": name, "namespace": "mon", "labels": labels or {}}, "data": {key: text}}}


def _mounting(workload: dict, volume: str, config_map: str, path: str) -> dict:
    pod = workload["inputs"]["spec"]["template"]["spec"]
    pod["volumes"].append({"name": volume, "configMap": {"name": config_map}})
    pod["containers"][0]["volumeMounts"] = [{"name": volume, "mountPath": path}]
    return workload


def test_rulers_of_any_shape_that_abort_through_a_query_with_discovered_endpoints_are_refused():
    policy = "thanos-query-strict-endpoints"
    query = thanos_workload("Deployment", "query", ["query", "--endpoint=dnssrv+_grpc._tcp.store.mon.svc",
                                                    "--endpoint-strict=store-0.store.mon.svc:10901"], replicas=2)
    services = [_service("query", "query"), _service("store", "store", headless=True)]
    groups = {"groups": [{"name": "slo", "rules": [{"alert": "Burn", "expr": "vector(1)"}]},
                         {"name": "capacity", "partial_response_strategy": "warn", "rules": []}]}
    rules = _config_map("rules", "slo.yaml", yaml.safe_dump(groups))
    ruler = _mounting(thanos_workload("StatefulSet", "ruler", ["rule", "--rule-file=/etc/rules/*.yaml",
                                                               "--query=dnssrv+_http._tcp.query.mon.svc"]),
                      "rules", "rules", "/etc/rules")
    aborting = (f"query: its StoreAPI endpoint(s) dnssrv+_grpc._tcp.store.mon.svc are not strict, and thanos rule "
                f"ruler evaluates groups with partial_response_strategy abort (slo) on its answers: {NOT_STRICT} and "
                f"those groups evaluate on it instead of aborting. {STRICT_FIX}")
    assert check_stack(policy, [*services, query, rules, ruler]) == [aborting]
    by_config = _mounting(thanos_workload("StatefulSet", "ruler", [
        "rule", "--rule-file=/etc/rules/*.yaml",
        '--query.config=[{"static_configs": ["query:9090"], "scheme": "http"}]']), "rules", "rules", "/etc/rules")
    assert check_stack(policy, [*services, query, rules, by_config]) == [aborting]
    warned = _config_map("rules", "slo.yaml", yaml.safe_dump({"groups": groups["groups"][1:]}))
    assert check_stack(policy, [*services, query, warned, ruler]) == []
    # prometheus-operator: a ThanosRuler's queryEndpoints and the PrometheusRules its ruleSelector picks.
    operator = {"type": "kubernetes:monitoring.coreos.com/v1:ThanosRuler", "provider": K8S, "inputs": {
        "metadata": {"name": "tr", "namespace": "mon"},
        "spec": {"queryEndpoints": ["dnssrv+_http._tcp.query.mon.svc"], "ruleSelector": {"matchLabels": {"r": "1"}}}}}
    picked = {"type": "kubernetes:monitoring.coreos.com/v1:PrometheusRule", "provider": K8S, "inputs": {
        "metadata": {"name": "k8s", "namespace": "mon", "labels": {"r": "1"}},
        "spec": {"groups": [{"name": "k8s", "partial_response_strategy": "abort", "rules": []}]}}}
    assert check_stack(policy, [*services, query, operator, picked]) == [
        aborting.replace("thanos rule ruler", "ThanosRuler tr").replace("(slo)", "(k8s)")]
    strict = thanos_workload("Deployment", "query", ["query", "--endpoint-strict=store-0.store.mon.svc:10901"])
    assert check_stack(policy, [*services, strict, rules, ruler, operator, picked]) == []


def test_receive_replicas_are_deduplicated_with_chain_and_prometheus_pairs_with_penalty(prod):
    policy = "thanos-query-dedup-func"
    assert check_stack(policy, prod) == []  # its queries deduplicate Prometheus, ruler and receive replicas: penalty
    receive = thanos_workload("StatefulSet", "receive", ["receive", "--objstore.config=$(OBJSTORE)",
                                                         "--label=replica=$(POD)"], replicas=3, env=OBJSTORE_ENV)
    query = thanos_workload("Deployment", "query", ["query", "--query.replica-label=replica"], replicas=2)
    assert check_stack(policy, [objstore_secret(), receive, query]) == [
        "query: query deduplicates only receive replicas (replica) with the penalty function (the default "
        "--deduplication.func): receive copies carry identical timestamps, and penalty drops about two samples of "
        "every series whenever the copy it follows goes away (an ingestor restart); set --deduplication.func=chain."]
    chain = thanos_workload("Deployment", "query", ["query", "--query.replica-label=replica",
                                                    "--deduplication.func=chain"], replicas=2)
    assert check_stack(policy, [objstore_secret(), receive, chain]) == []
    prometheus = {"type": "kubernetes:monitoring.coreos.com/v1:Prometheus", "provider": K8S, "inputs": {
        "metadata": {"name": "k8s", "namespace": "mon"}, "spec": {"replicas": 2, "thanos": {"image": "x"}}}}
    both = ["query", "--query.replica-label=replica", "--query.replica-label=prometheus_replica"]
    assert check_stack(policy, [objstore_secret(), receive, prometheus,
                                thanos_workload("Deployment", "query", both, replicas=2)]) == []
    assert check_stack(policy, [objstore_secret(), receive, prometheus, thanos_workload(
        "Deployment", "query", [*both, "--deduplication.func=chain"], replicas=2)]) == [
        "query: query deduplicates prometheus_replica with --deduplication.func=chain: Prometheus HA replicas and "
        "rulers scrape and evaluate on their own clocks, so chain interleaves both copies' samples (a counter seems "
        "to reset at every switch); use penalty, and give receive replicas a query of their own if they need chain."]


def test_a_store_gateway_whose_memcached_addresses_resolve_only_to_ready_pods_is_refused(prod):
    """The memcached client exits at start when no address resolves; SRV or A records of a headless Service list only
    ready pods. A ClusterIP Service's name always resolves, and so does a name outside the cluster."""
    policy = "thanos-wiring-store-cache-resolves"
    resources = chicago(prod, "thanos")
    assert check_stack(policy, resources) == []  # one ClusterIP Service per memcached pod
    args = container(named(resources, "StatefulSet", "thanos-store", "thanos")["inputs"], "thanos-store")["args"]
    i = next(i for i, a in enumerate(args) if a.startswith("--index-cache.config="))
    cache = json.loads(args[i].split("=", 1)[1])

    def listing(*addresses: str) -> list[str]:
        args[i] = f"--index-cache.config={json.dumps({**cache, 'config': {**cache['config'], 'addresses': addresses}})}"
        return check_stack(policy, resources)

    srv = "dnssrv+_memcached._tcp.thanos-memcached-index.thanos.svc.cluster.local"
    assert listing(srv) == [
        f"thanos-store: the store gateway's --index-cache.config lists only {srv}: DNS discovery over a headless "
        "Service, which answers nothing while no cache pod is ready (first deploy, a cache rollout or crash), and the "
        "store's memcached client exits at start when no address resolves (`no server address resolved`), so the "
        "store gateway cannot start without a ready cache pod. List addresses that always resolve: one ClusterIP "
        "Service per memcached pod (name-0.namespace.svc:11211)."]
    assert len(listing("dns+thanos-memcached-index-0.thanos-memcached-index.thanos.svc:11211",
                       "dnssrv+_memcached._tcp.memcached.elsewhere.svc")) == 1  # a pod record, an unseen Service
    assert listing(srv, "thanos-memcached-index-0.thanos.svc.cluster.local:11211") == []  # a static name always starts it
    assert listing("dns+thanos-memcached-index-0.thanos.svc.cluster.local:11211") == []  # a ClusterIP Service
    assert listing("dns+acme.cfg.use1.cache.amazonaws.com:11211") == []  # outside the cluster: not judged
    # A caching bucket config from a mounted file, over a Service the stack does not show.
    config = yaml.safe_dump({"type": "MEMCACHED", "config": {"addresses": ["dnssrv+_memcache._tcp.memcached"]}})
    store = _mounting(thanos_workload("StatefulSet", "store", ["store", "--objstore.config=$(OBJSTORE)",
                                                               "--store.caching-bucket.config-file=/etc/cache/bucket.yml"],
                                      env=OBJSTORE_ENV), "cache", "cache", "/etc/cache")
    found = check_stack(policy, [_config_map("cache", "bucket.yml", config), store])
    assert len(found) == 1 and found[0].startswith(
        "store: the store gateway's --store.caching-bucket.config lists only dnssrv+_memcache._tcp.memcached: ")
    assert check_stack(policy, [_config_map("cache", "bucket.yml", config), _service("memcached", "memcached"), store]) == []


# --- exposure: mTLS, authenticated entry points, deduplication across layers ------------------------------------

def chicago(resources, namespace=None):
    return copy.deepcopy([r for r in resources if "chicago" in (r["provider"] or "")
                          and (namespace is None or (r["inputs"].get("metadata") or {}).get("namespace") == namespace)])


def named(resources, kind, name, namespace):
    return next(r for r in resources if r["type"].endswith(f":{kind}") and r["inputs"]["metadata"]["name"] == name
                and r["inputs"]["metadata"]["namespace"] == namespace)


def test_exposed_grpc_requires_server_mtls(prod):
    resources = chicago(prod)
    assert check_stack("thanos-exposure-grpc-mtls", resources) == []
    leaf = named(resources, "Deployment", "thanos-query-pods", "thanos")
    args = container(leaf["inputs"], "thanos-query")["args"]
    args[:] = [a for a in args if not a.startswith("--grpc-server-tls-client-ca=")]
    assert check_stack("thanos-exposure-grpc-mtls", resources) == [
        "Service thanos-query-grpc exposes the gRPC StoreAPI of thanos query outside the cluster without server mTLS: "
        "set --grpc-server-tls-cert, --grpc-server-tls-key and --grpc-server-tls-client-ca (anyone who reaches it "
        "reads every series)."]


def test_exposed_http_and_remote_write_are_refused(prod):
    resources = chicago(prod, "thanos")
    named(resources, "Service", "thanos-query", "thanos")["inputs"]["spec"]["type"] = "LoadBalancer"
    router_service = named(resources, "Service", "thanos-receive-router", "thanos")["inputs"]["spec"]
    router_service["type"] = "NodePort"
    router = named(resources, "Deployment", "thanos-receive-router", "thanos")
    args = container(router["inputs"], "thanos-receive-router")["args"]
    args[:] = [a for a in args if not a.startswith("--remote-write.server-tls-client-ca=")]
    assert check_stack("thanos-exposure-grpc-mtls", resources) == [
        "Service thanos-query exposes the HTTP API of thanos query outside the cluster: Thanos has no authentication; "
        "expose an authenticating proxy behind TLS instead.",
        "Service thanos-receive-router exposes the gRPC StoreAPI of thanos receive outside the cluster without server "
        "mTLS: set --grpc-server-tls-cert, --grpc-server-tls-key and --grpc-server-tls-client-ca (anyone who reaches it "
        "reads every series).",
        "Service thanos-receive-router exposes remote-write outside the cluster without a client CA: set "
        "--remote-write.server-tls-cert, -key and -client-ca, or put an authenticating proxy in front (anyone could "
        "write or overwrite series)."]


def test_ingress_entry_point_needs_tls_and_authentication(planned):
    resources = chicago(planned["dev"].plan["resources"], "thanos-global")
    assert check_stack("thanos-exposure-entry-point-auth", resources) == []
    ingress = named(resources, "Ingress", "thanos", "thanos-global")["inputs"]
    del ingress["metadata"]["annotations"]
    del ingress["spec"]["tls"]
    assert check_stack("thanos-exposure-entry-point-auth", resources) == [
        "Ingress thanos serves Thanos without TLS for every host: add spec.tls with a certificate (credentials and "
        "queries would cross the network in clear text).",
        "Ingress thanos routes to Thanos with no authentication: route to an authenticating proxy (oauth2-proxy) or "
        "set nginx basic auth (auth-type, auth-secret); Thanos has none."]


def test_gateway_entry_point_routes_through_the_proxy_over_https(prod):
    resources = chicago(prod, "thanos-global")
    assert check_stack("thanos-exposure-entry-point-auth", resources) == []
    route = named(resources, "HTTPRoute", "thanos", "thanos-global")["inputs"]
    route["spec"]["rules"][0]["backendRefs"] = [{"name": "thanos-query-frontend", "port": 10902}]
    named(resources, "Gateway", "thanos", "thanos-global")["inputs"]["spec"]["listeners"][0]["protocol"] = "HTTP"
    assert check_stack("thanos-exposure-entry-point-auth", resources) == [
        "HTTPRoute thanos serves Thanos on a Gateway listener without TLS: use an HTTPS listener.",
        "HTTPRoute thanos routes to Thanos (thanos-query-frontend) directly: Gateway API has no portable "
        "authentication; route to an authenticating proxy (oauth2-proxy) instead.",
        "HTTPRoute thanos-ready serves Thanos on a Gateway listener without TLS: use an HTTPS listener."]



def test_an_auth_proxy_that_skips_auth_on_a_client_header_is_refused(prod):
    """GHSA-7x63-xv5r-3p2x: under --reverse-proxy, skip-auth routes match the client's X-Forwarded-Uri, and every
    client is a trusted proxy until --trusted-proxy-ip is set (oauth2-proxy#3506)."""
    resources = chicago(prod, "thanos-global")
    proxy = named(resources, "Deployment", "thanos-oauth2-proxy", "thanos-global")
    args = container(proxy["inputs"], "oauth2-proxy")["args"]
    assert "--reverse-proxy" in args and not any(a.startswith("--skip-auth") for a in args)
    assert container(proxy["inputs"], "oauth2-proxy")["image"].endswith(":v7.15.6")
    route = named(resources, "HTTPRoute", "thanos", "thanos-global")["inputs"]
    assert "X-Forwarded-Uri" in route["spec"]["rules"][0]["filters"][0]["requestHeaderModifier"]["remove"]
    assert check_stack("thanos-exposure-entry-point-auth", resources) == []
    args.append("--skip-auth-route=GET=^/-/ready$")
    assert check_stack("thanos-exposure-entry-point-auth", resources) == [
        "oauth2-proxy thanos-oauth2-proxy skips authentication for routes it matches against the client's own "
        "X-Forwarded-Uri (--reverse-proxy, skip-auth routes, no --trusted-proxy-ip: GHSA-7x63-xv5r-3p2x): any request "
        "can claim a skipped path. Drop the skip-auth routes and probe oauth2-proxy's own /ping, or set "
        "--trusted-proxy-ip to the proxies that strip the header."]
    args.append("--trusted-proxy-ip=10.0.0.0/8")
    assert check_stack("thanos-exposure-entry-point-auth", resources) == []
    args[:] = [a for a in args if not a.startswith("--email-domain=")] + ["--email-domain=*"]
    assert check_stack("thanos-exposure-entry-point-auth", resources) == [
        "oauth2-proxy thanos-oauth2-proxy lets in every account of the identity provider (--email-domain=* and no "
        "--allowed-group): name the e-mail domains or groups that may query Thanos."]
    args.append("--allowed-group=sre")
    assert check_stack("thanos-exposure-entry-point-auth", resources) == []


def test_every_query_dedups_on_every_replica_label_never_on_identity(prod):
    resources = [copy.deepcopy(r) for r in prod]
    assert check_stack("thanos-query-dedup-labels", resources) == []
    global_query = named(resources, "Deployment", "thanos-query-pods", "thanos-global")
    args = container(global_query["inputs"], "thanos-query")["args"]
    args[:] = [a for a in args if a != "--query.replica-label=receive_replica"] + ["--query.replica-label=cluster"]
    leaf = named(resources, "Deployment", "thanos-query-pods", "thanos")
    container(leaf["inputs"], "thanos-query")["args"].append("--query.replica-label=region")
    assert sorted(check_stack("thanos-query-dedup-labels", resources)) == [
        "query deduplicates on cluster, which tells clusters or producers apart: their different series would be "
        "merged into one. Remove it from --query.replica-label.",
        "query deduplicates on region, which tells clusters or producers apart: their different series would be "
        "merged into one. Remove it from --query.replica-label.",
        "query over other clusters does not deduplicate on receive_replica: a stacked query does not deduplicate for "
        "the one above it, so the global view shows every replica. Add --query.replica-label for each."]


def test_a_compactor_store_or_bucket_web_with_admin_operations_on_is_refused(prod):
    """Their HTTP port's mark API has the compactor delete any block; the switch came in v0.33 (compact, bucket web)
    and v0.39 (store), the API itself in v0.24. Without the block viewer there is no API."""
    policy = "thanos-exposure-admin-api-off"
    admin = "--disable-admin-operations"
    served = [("thanos-compactor", STS, "thanos-compactor", "compact"),
              ("thanos-store", STS, "thanos-store", "store"), ("thanos-store-dr-us-west-2", STS, "thanos-store", "store"),
              ("thanos-bucket-web", DEPLOYMENT, "thanos-bucket-web", "tools bucket web")]
    for name, kind, container_name, command in served:
        props = workload(prod, name)["inputs"]
        assert check(policy, kind, props) == [], name
        args = container(props, container_name)["args"]
        for off in ([a for a in args if a != admin], [*args, f"{admin}=false"], [*args, f"--no-{admin[2:]}"]):
            args[:] = off
            assert check(policy, kind, props) == [
                f"{name}: thanos {command} lets anyone who reaches its HTTP port mark every block for deletion (POST "
                "/api/v1/blocks/mark), and the compactor then deletes them: set --disable-admin-operations."], off
    store = thanos_workload("StatefulSet", "store", ["store", "--objstore.config=$(OBJSTORE)"], env=OBJSTORE_ENV)
    store["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] = "docker.io/bitnami/thanos:0.38.0"
    assert check(policy, STS, store["inputs"]) == [
        "store: thanos store lets anyone who reaches its HTTP port mark every block for deletion (POST "
        "/api/v1/blocks/mark), and the compactor then deletes them; v0.38.0 cannot turn that off: upgrade to v0.39.0 "
        "or later and set --disable-admin-operations."]
    store["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] = "quay.io/thanos/thanos:v0.23.2"
    assert check(policy, STS, store["inputs"]) == []  # no mark API yet
    assert check(policy, STS, compactor("compact", "--disable-admin-operations=true")["inputs"]) == []
    assert check(policy, STS, compactor("compact", "--web.disable")["inputs"]) == []
    assert check(policy, STS, thanos_workload("StatefulSet", "compact", ["compact"])["inputs"]) == []  # runs once
    query = thanos_workload("Deployment", "query", ["query"], replicas=2)
    assert check(policy, DEPLOYMENT, query["inputs"]) == []


ALERTING = "thanos-alerting-alertmanager"


def _ruler_args(resources, cluster="chicago"):
    ruler = next(r for r in resources if r["type"] == STS and r["inputs"]["metadata"]["name"] == "thanos-ruler"
                 and r["inputs"]["metadata"]["namespace"] == "thanos" and cluster in r["provider"])
    return container(ruler["inputs"], "thanos-ruler")["args"]


def test_alerting_passes_on_every_shipped_stack(planned):
    for stack in STACKS:
        assert check_stack(ALERTING, planned[stack].plan["resources"]) == [], stack
        assert check_stack("thanos-alerting-receiver-secrets", planned[stack].plan["resources"]) == [], stack


def test_a_ruler_with_alerts_and_no_alertmanager_is_refused(prod):
    broken = copy.deepcopy(prod)
    args = _ruler_args(broken)
    args[:] = [a for a in args if not a.startswith("--alertmanagers.config=")]
    assert check_stack(ALERTING, broken) == [
        "thanos-ruler: thanos rule evaluates alerting rules but sends them to no Alertmanager: set --alertmanagers.url "
        "or --alertmanagers.config."]
    # Recording rules only: nothing to send, nothing to refuse.
    rules = next(r for r in broken if r["type"] == "kubernetes:core/v1:ConfigMap"
                 and r["inputs"]["metadata"]["name"] == "thanos-ruler-rules" and "chicago" in r["provider"]
                 and r["inputs"]["metadata"]["namespace"] == "thanos")
    rules["inputs"]["data"]["thanos.yaml"] = yaml.safe_dump({"groups": [{"name": "r", "rules": [
        {"record": "x:up:sum", "expr": "sum(up)"}]}]})
    assert check_stack(ALERTING, broken) == []


def test_an_alertmanager_address_the_stack_does_not_create_is_refused(prod):
    """The ruler of the landed program pointed at an Alertmanager nothing created; now the pack names it."""
    broken = copy.deepcopy(prod)
    args = _ruler_args(broken)
    args[:] = [a for a in args if not a.startswith("--alertmanagers.config=")] + [
        "--alertmanagers.url=dnssrv+http://_web._tcp.alertmanager-main.thanos.svc.cluster.local"]
    assert check_stack(ALERTING, broken) == [
        "thanos-ruler: thanos rule sends alerts to alertmanager-main.thanos, but the stack declares no Service "
        "alertmanager-main in namespace thanos."]
    # Another team's namespace, whose Services this stack cannot see, is not judged.
    args[-1] = "--alertmanagers.url=dnssrv+http://_web._tcp.alertmanager-operated.monitoring.svc.cluster.local"
    assert check_stack(ALERTING, broken) == []


def test_a_prometheus_with_alerts_and_nowhere_to_send_them_is_refused(prod):
    broken = copy.deepcopy(prod)
    config = next(r for r in broken if r["type"] == "kubernetes:core/v1:ConfigMap"
                  and r["inputs"]["metadata"]["name"] == "thanos-prometheus" and "seattle" in r["provider"])
    document = yaml.safe_load(config["inputs"]["data"]["prometheus.yml"])
    del document["alerting"]
    config["inputs"]["data"]["prometheus.yml"] = yaml.safe_dump(document)
    assert check_stack(ALERTING, broken) == [
        "thanos-prometheus: Prometheus evaluates alerting rules but sends them to no Alertmanager: add "
        "alerting.alertmanagers to prometheus.yml."]


def test_operator_resources_are_read_too(planned):
    azure = copy.deepcopy(planned["azure"].plan["resources"])
    prometheus = next(r for r in azure if r["type"] == "kubernetes:monitoring.coreos.com/v1:Prometheus")
    prometheus["inputs"]["spec"]["alerting"]["alertmanagers"][0]["name"] = "alertmanager-main"
    assert check_stack(ALERTING, azure) == [
        "thanos-prometheus: Prometheus sends alerts to alertmanager-main.thanos, but the stack declares no Service "
        "alertmanager-main in namespace thanos."]
    del prometheus["inputs"]["spec"]["alerting"]
    assert check_stack(ALERTING, azure) == [
        "thanos-prometheus: Prometheus evaluates alerting rules but sends them to no Alertmanager: set "
        "spec.alerting.alertmanagers."]
    rule = next(r for r in azure if r["type"] == "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    ruler = {"type": "kubernetes:monitoring.coreos.com/v1:ThanosRuler", "provider": rule["provider"],
             "inputs": {"metadata": {"name": "team-ruler", "namespace": "thanos"},
                        "spec": {"ruleSelector": {"matchLabels": {"app.kubernetes.io/part-of": "thanos"}}}}}
    assert check_stack(ALERTING, [rule, ruler]) == [
        "team-ruler: ThanosRuler evaluates alerting rules but sends them to no Alertmanager: set spec.alertmanagersUrl "
        "or spec.alertmanagersConfig."]
    ruler["inputs"]["spec"]["alertmanagersConfig"] = {"name": "am", "key": "config.yaml"}
    assert check_stack(ALERTING, [rule, ruler]) == []


def test_receiver_credentials_in_a_config_map_are_refused():
    def config_map(receivers):
        return {"type": "kubernetes:core/v1:ConfigMap", "inputs": {"metadata": {"name": "alertmanager", "namespace": "m"},
                "data": {"alertmanager.yml": yaml.safe_dump({"route": {"receiver": receivers[0]["name"]},
                                                             "receivers": receivers})}}}
    slack = {"name": "chat", "slack_configs": [{"api_url": "https://hooks.slack.com/services/T/B/X", "channel": "#a"}]}
    assert check_stack("thanos-alerting-receiver-secrets", [config_map([slack])]) == [
        "ConfigMap alertmanager (alertmanager.yml) holds credentials of receiver chat (slack_configs.api_url): keep the Alertmanager "
        "config in a Secret."]
    hook = {"name": "hook", "webhook_configs": [{"url": "https://x.example.com/alert?token=abc",
                                                 "http_config": {"basic_auth": {"username": "u", "password": "p"}}}]}
    assert check_stack("thanos-alerting-receiver-secrets", [config_map([hook])]) == [
        "ConfigMap alertmanager (alertmanager.yml) holds credentials of receiver hook "
        "(webhook_configs.http_config.basic_auth.password, webhook_configs.url): keep the Alertmanager config in a Secret."]
    from_files = {"name": "chat", "slack_configs": [{"api_url_file": "/etc/am/slack", "channel": "#a"}]}
    internal = {"name": "hook", "webhook_configs": [{"url": "http://relay.monitoring.svc:8080/alert"}]}
    assert check_stack("thanos-alerting-receiver-secrets", [config_map([from_files, internal])]) == []


UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""The engine's sentinel for a string unknown during a preview (what pulumi_policy's proxy refuses to read)."""


def test_a_preview_that_cannot_see_an_objstore_config_says_so_and_no_bucket_rule_is_skipped(prod):
    compactor = workload(prod, "thanos-compactor")
    known = [aws_secret("acme-thanos-prod-us-east-1", compactor["provider"]), compactor]
    assert check_stack("thanos-preview-coverage", known) == []
    generated = copy.deepcopy(known)
    generated[0]["inputs"]["stringData"]["objstore.yml"] = UNKNOWN_STRING  # a generated credential inside
    assert check_stack("thanos-preview-coverage", generated) == [
        "thanos-compactor: the objstore config of thanos compact (Secret thanos-objstore key objstore.yml) is "
        "computed at apply: its bucket is judged at `pulumi up` (thanos-compactor-one-per-bucket, "
        "thanos-producers-external-labels, thanos-wiring-references)."]
    # The bucket rules run (pulumi_policy would skip them as "can't run during preview") and judge the rest.
    for rule in ("thanos-compactor-one-per-bucket", "thanos-producers-external-labels", "thanos-wiring-references"):
        assert check_stack(rule, generated) == []
    assert check("thanos-identity-objstore-secret", "kubernetes:core/v1:Secret", generated[0]["inputs"]) == []


def test_a_workload_identity_member_shared_by_clusters_of_one_pool_is_flagged(planned):
    """GKE pools span their project: two clusters in one pool with the same namespace and ServiceAccount can each act
    as the other's Google service account."""
    bindings = [copy.deepcopy(r) for r in planned["gcp"].plan["resources"]
                if r["type"] == "gcp:serviceaccount/iAMMember:IAMMember"]
    assert check_stack("thanos-identity-workload-identity-scope", bindings) == []  # iowa and belgium: two pools
    for binding in bindings:  # belgium without its own pool: the bucket project's, as iowa's
        binding["inputs"]["member"] = binding["inputs"]["member"].replace("acme-eu-clusters.svc.id.goog",
                                                                          "acme-observability.svc.id.goog")
    found = check_stack("thanos-identity-workload-identity-scope", bindings)
    assert found and all("may act as 2 Google service accounts" in m for m in found)
    assert any("serviceAccount:acme-observability.svc.id.goog[thanos/thanos-store]" in m for m in found)


# --- five incident classes other people's deployments showed (issue 19), each firing and silent on the right form ---

K8S = "urn:pulumi:x::x::pulumi:providers:kubernetes::c"


def thanos_workload(kind: str, name: str, args: list[str], replicas: int = 1, volumes=None, env=None) -> dict:
    container = {"name": name, "image": "quay.io/thanos/thanos:v0.42.4", "args": args, "env": env or []}
    pod = {"containers": [container], "volumes": volumes or []}
    if kind == "CronJob":
        spec = {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": pod}}}}
        type_token = "kubernetes:batch/v1:CronJob"
    else:
        spec = {"replicas": replicas, "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}
        type_token = f"kubernetes:apps/v1:{kind}"
    return {"type": type_token, "provider": K8S, "urn": f"urn:{name}",
            "inputs": {"kind": kind, "metadata": {"name": name, "namespace": "mon"}, "spec": spec}}


def objstore_secret(bucket: str = "blocks") -> dict:
    text = yaml.safe_dump({"type": "S3", "config": {"bucket": bucket, "endpoint": "s3.us-east-1.amazonaws.com"}})
    return {"type": "kubernetes:core/v1:Secret", "provider": K8S,
            "inputs": {"metadata": {"name": "objstore", "namespace": "mon"}, "stringData": {"objstore.yml": text}}}


OBJSTORE_ENV = [{"name": "OBJSTORE", "valueFrom": {"secretKeyRef": {"name": "objstore", "key": "objstore.yml"}}},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]


def compactor(name: str, *extra: str) -> dict:
    return thanos_workload("StatefulSet", name, ["compact", "--wait", "--objstore.config=$(OBJSTORE)", *extra],
                           env=OBJSTORE_ENV)


def test_an_unsharded_compactor_beside_compactors_sharded_by_a_relabel_file_is_refused():
    sharded = [compactor(f"compact-{i}", "--selector.relabel-config-file=/etc/shard/relabel.yaml") for i in (0, 1)]
    assert check_stack("thanos-compactor-one-per-bucket", [objstore_secret(), *sharded]) == []
    assert check_stack("thanos-compactor-one-per-bucket", [objstore_secret(), *sharded, compactor("compact")]) == [
        "an unsharded compactor writes to bucket S3:blocks/ beside 2 sharded one(s): it compacts the streams they own "
        "as well (overlapping blocks, halted compaction)."]


def test_receive_replicas_with_one_label_set_on_one_bucket_are_refused():
    def receive(*labels: str) -> dict:
        return thanos_workload("StatefulSet", "receive", ["receive", "--objstore.config=$(OBJSTORE)", *labels],
                               replicas=3, env=OBJSTORE_ENV)
    assert check_stack("thanos-producers-external-labels", [objstore_secret(), receive(
        '--label=receive="true"', '--label=tenant="a"')]) == [
        "receive: 3 receive replicas upload blocks with identical labels (add a per-pod replica label)."]
    assert check_stack("thanos-producers-external-labels", [objstore_secret(), receive(
        '--label=receive="true"', '--label=replica="$(POD)"')]) == []


def test_offline_deduplication_of_prometheus_pairs_needs_the_penalty_function():
    prometheus = {"type": "kubernetes:monitoring.coreos.com/v1:Prometheus", "provider": K8S, "inputs": {
        "metadata": {"name": "k8s", "namespace": "mon"}, "spec": {"replicas": 2, "thanos": {"image": "x"}}}}
    query = thanos_workload("Deployment", "query", ["query", "--query.replica-label=prometheus_replica",
                                                    "--query.replica-label=replica"], replicas=2)
    one_to_one = compactor("compact", "--deduplication.replica-label=prometheus_replica")
    assert check_stack("thanos-producers-replica-labels", [objstore_secret(), prometheus, query, one_to_one]) == [
        "compact: the compactor deduplicates on prometheus_replica with the one-to-one function: Prometheus HA "
        "replicas (and rulers) scrape on their own clocks, so their blocks never match sample for sample and both "
        "copies stay, merged into one block that doubles every series; set --deduplication.func=penalty (one-to-one "
        "is right only for receive replicas)."]
    penalty = compactor("compact", "--deduplication.replica-label=prometheus_replica", "--deduplication.func=penalty")
    assert check_stack("thanos-producers-replica-labels", [objstore_secret(), prometheus, query, penalty]) == []
    # Receive replicas write identical blocks: one-to-one is right for their label.
    receive = thanos_workload("StatefulSet", "receive", ["receive", "--objstore.config=$(OBJSTORE)",
                                                         "--label=replica=$(POD)"], replicas=3, env=OBJSTORE_ENV)
    receive_only = compactor("compact", "--deduplication.replica-label=replica")
    assert check_stack("thanos-producers-replica-labels", [objstore_secret(), prometheus, query, receive,
                                                           receive_only]) == []


def test_a_cronjob_that_never_finishes_is_refused():
    args = ["tools", "bucket", "replicate", "--objstore.config=$(OBJSTORE)", "--objstore-to.config=$(TO)"]
    forever = thanos_workload("CronJob", "replicate", args)["inputs"]
    assert check("thanos-batch-finishes", "kubernetes:batch/v1:CronJob", forever) == [
        "CronJob container replicate runs thanos tools bucket replicate without --single-run: it replicates forever, "
        "so the run never completes and the next ones pile up behind it."]
    for finishing in ("--single-run", "--single-run=true"):
        once = thanos_workload("CronJob", "replicate", [*args, finishing])["inputs"]
        assert check("thanos-batch-finishes", "kubernetes:batch/v1:CronJob", once) == []
    assert check("thanos-batch-finishes", "kubernetes:batch/v1:CronJob",
                 thanos_workload("CronJob", "replicate", [*args, "--single-run=false"])["inputs"])
    assert check("thanos-batch-finishes", "kubernetes:batch/v1:CronJob",
                 thanos_workload("CronJob", "compact", ["compact", "--wait=true"])["inputs"]) == [
        "CronJob container compact runs thanos compact --wait: it never exits, so the run never completes; run the "
        "compactor as a StatefulSet, or drop --wait."]


def test_replicas_sharing_one_read_write_once_claim_are_refused():
    def claim(mode: str) -> dict:
        return {"type": "kubernetes:core/v1:PersistentVolumeClaim", "provider": K8S, "inputs": {
            "metadata": {"name": "data", "namespace": "mon"}, "spec": {"accessModes": [mode]}}}
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    store = thanos_workload("Deployment", "store", ["store"], replicas=2, volumes=volumes)
    assert check_stack("thanos-ha-claims", [claim("ReadWriteOnce"), store]) == [
        "store: 2 replicas share the ReadWriteOnce claim data: it attaches to one node, so the other replicas never "
        "start (or, on one node, open the same data directory); give each replica its own claim (a StatefulSet's "
        "volumeClaimTemplates)."]
    assert check_stack("thanos-ha-claims", [claim("ReadWriteMany"), store]) == []
    single = thanos_workload("Deployment", "store", ["store"], replicas=1, volumes=volumes)
    assert check_stack("thanos-ha-claims", [claim("ReadWriteOnce"), single]) == []
    # A StatefulSet's claim templates are per replica; a claim in its pod's volumes is shared all the same.
    shared = thanos_workload("StatefulSet", "store", ["store"], replicas=3, volumes=volumes)
    assert check_stack("thanos-ha-claims", [claim("ReadWriteOnce"), shared]) == [
        "store: 3 replicas share the ReadWriteOnce claim data: it attaches to one node, so the other replicas never "
        "start (or, on one node, open the same data directory); give each replica its own claim (a StatefulSet's "
        "volumeClaimTemplates)."]


def test_an_azure_source_policy_with_rules_unknown_takes_the_destination_policys_rules(planned):
    """During a failover the replication is paused (its rules match a prefix no block has) and the compactor writes to
    the DR account; a first preview does not know the source policy's rules: the destination policy's stand."""
    resources = [copy.deepcopy(r) for r in planned["azure"].plan["resources"]]
    for r in resources:
        if r["type"] == "azure-native:storage:ObjectReplicationPolicy":
            for rule in r["inputs"].get("rules") or []:
                rule["filters"] = {"prefixMatch": ["thanos-replication-paused/"]}
            if r["name"].endswith("-replication-source"):
                r["inputs"]["rules"] = UNKNOWN_STRING
    dr_secret = next(r for r in resources if r["type"] == "kubernetes:core/v1:Secret"
                     and r["inputs"]["metadata"]["name"] == "thanos-objstore")
    compactor = next(r for r in resources if r["type"] == STS
                     and r["inputs"]["metadata"]["name"] == "thanos-compactor" and r["provider"] == dr_secret["provider"])
    account = next(r["inputs"]["accountName"] for r in resources if r["type"] == "azure-native:storage:StorageAccount"
                   and r["inputs"]["accountName"].endswith("dr"))
    text = yaml.safe_dump({"type": "AZURE", "config": {"storage_account": account, "container": "thanos"}})
    dr_secret["inputs"]["stringData"] = {"objstore.yml": text}
    assert check_stack("thanos-compactor-one-per-bucket", [dr_secret, compactor, *(
        r for r in resources if r["type"] == "azure-native:storage:ObjectReplicationPolicy")]) == []
    # Without the destination's policy in the stack the rules stay unknown: every container of that account counts.
    sources_only = [r for r in resources if r["type"] == "azure-native:storage:ObjectReplicationPolicy"
                    and r["name"].endswith("-replication-source")]
    assert check_stack("thanos-compactor-one-per-bucket", [dr_secret, compactor, *sources_only]) == [
        f"a compactor writes to {account}/thanos, a replication destination: it would compact the replicated streams "
        "a second time (overlaps); DR copies are read-only."]


def test_a_prometheus_taking_monitors_from_every_namespace_with_file_access_is_refused(planned):
    """A ServiceMonitor from any namespace could point bearerTokenFile at Prometheus' workload identity token and
    send it anywhere: azure's operator-mode Prometheus takes monitors from its own namespace and denies file access."""
    policy, kind = "thanos-exposure-monitor-file-access", "kubernetes:monitoring.coreos.com/v1:Prometheus"
    prometheus = next(r for r in planned["azure"].plan["resources"] if r["type"] == kind)
    props = copy.deepcopy(prometheus["inputs"])
    assert props["spec"]["arbitraryFSAccessThroughSMs"] == {"deny": True}
    assert props["spec"]["serviceMonitorNamespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": props["metadata"]["namespace"]}}
    assert check(policy, kind, props) == []
    props["spec"]["serviceMonitorNamespaceSelector"] = {}
    assert check(policy, kind, props) == []  # every namespace, but no file access
    del props["spec"]["arbitraryFSAccessThroughSMs"]
    assert check(policy, kind, props) == [
        "thanos-prometheus: Prometheus selects serviceMonitors from every namespace and allows them arbitrary file "
        "access: a ServiceMonitor from any namespace can send its token files (bucket write access) anywhere. Select "
        "your own namespaces (e.g. matchLabels kubernetes.io/metadata.name) and set arbitraryFSAccessThroughSMs.deny: "
        "true."]
    props["spec"]["podMonitorSelector"] = {}
    props["spec"]["podMonitorNamespaceSelector"] = {}
    assert "serviceMonitors, podMonitors from every namespace" in check(policy, kind, props)[0]
    props["spec"]["serviceMonitorNamespaceSelector"] = props["spec"]["podMonitorNamespaceSelector"] = None
    assert check(policy, kind, props) == []  # a null namespace selector: Prometheus' own namespace only


STACK_CA_PEM = ("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUStackCaStandIn0000000000000wCgYIKoZIzj0EAwIw\n"
                "-----END CERTIFICATE-----\n")
"""A PEM block standing for the server CA (the pack compares certificates as text; it never parses them)."""


def test_an_entry_point_certificate_from_an_mtls_ca_is_refused(planned):
    """Users trust the entry point's CA: prod's planned entry point (self-signed) passes; the old plan's entry Secret,
    signed by the server CA and carrying it as ca.crt, is refused, and so is a cert-manager Certificate from a CA
    Issuer that signs the leaves too. A Certificate from the entry point's own CA passes."""
    policy = "thanos-exposure-entry-point-ca"
    resources = planned["prod"].plan["resources"]
    global_objects = [r for r in resources if r["inputs"].get("metadata", {}).get("namespace") == "thanos-global"
                      and r.get("provider", "").endswith("k8s-chicago")]
    gateway = next(r for r in global_objects if r["type"] == "kubernetes:gateway.networking.k8s.io/v1:Gateway")
    entry = next(r for r in global_objects if r["type"] == "kubernetes:core/v1:Secret"
                 and r["inputs"]["metadata"]["name"] == "thanos-entry-point-tls")
    bundle = next(r for r in global_objects if r["type"] == "kubernetes:core/v1:Secret"
                  and r["inputs"]["metadata"]["name"] == "thanos-ca-bundle")
    assert "ca.crt" not in entry["inputs"]["stringData"]
    assert check_stack(policy, [gateway, entry, bundle]) == []
    # The plan file shows secret values redacted: the server CA as the engine shows it to the pack.
    server_ca = STACK_CA_PEM
    bundle = copy.deepcopy(bundle)
    bundle["inputs"]["stringData"] = {"ca.crt": server_ca, "readers.crt": "[secret]"}
    old = copy.deepcopy(entry)
    old["inputs"]["stringData"]["ca.crt"] = server_ca
    assert check_stack(policy, [gateway, old, bundle]) == [
        "Gateway thanos serves thanos-entry-point-tls, whose ca.crt is a CA that Secrets thanos-ca-bundle carry too: the "
        "stack's mTLS CA would sign the entry point, and users who trust it would trust whoever holds its key for every "
        "site. Issue the entry point from a CA of its own (name-constrained to the host), an ACME issuer or a Secret of "
        "yours (config: global-view.entry-point.tls)."]

    def cert_manager(kind, name, spec):
        return {"type": f"kubernetes:cert-manager.io/v1:{kind}", "provider": gateway["provider"],
                "inputs": {"apiVersion": "cert-manager.io/v1", "kind": kind,
                           "metadata": {"name": name, "namespace": "thanos-global"}, "spec": spec}}

    mtls = [cert_manager("Issuer", "thanos-ca", {"ca": {"secretName": "thanos-ca-keypair"}}),
            cert_manager("Certificate", "thanos-ruler-grpc-tls", {"secretName": "thanos-ruler-grpc-tls",
                                                                  "issuerRef": {"name": "thanos-ca"}})]
    from_mtls = cert_manager("Certificate", "thanos-entry-point-tls", {"secretName": "thanos-entry-point-tls",
                                                                       "issuerRef": {"name": "thanos-ca", "kind": "Issuer"}})
    assert check_stack(policy, [gateway, *mtls, from_mtls]) == [
        "Gateway thanos serves thanos-entry-point-tls, issued by the CA in Secret thanos-ca-keypair, which also signs "
        "thanos-ruler-grpc-tls: users who trust the entry point's CA would trust whoever holds the key of those "
        "certificates' CA for every site. Issue the entry point from a CA of its own (name-constrained to the host), an "
        "ACME issuer or a Secret of yours (config: global-view.entry-point.tls)."]
    own = [cert_manager("Issuer", "thanos-entry-point-ca", {"ca": {"secretName": "thanos-entry-point-ca"}}),
           cert_manager("Certificate", "thanos-entry-point-tls", {"secretName": "thanos-entry-point-tls",
                                                                  "issuerRef": {"name": "thanos-entry-point-ca"}})]
    assert check_stack(policy, [gateway, *mtls, *own]) == []
