"""Identity rules (policies/thanos_policies/identity.py): exact IAM actions, only the compactor deletes, workload
identity scope, the objstore config in a Secret."""

import copy
import json

import yaml

from ..support.policies import STS, aws_secret, check, check_stack, set_flag, workload


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


def test_objstore_secrecy():
    config = yaml.safe_dump({"type": "S3", "config": {"bucket": "b", "endpoint": "s3.us-east-1.amazonaws.com",
                                                      "access_key": "AKIA", "secret_key": "s"}})
    assert check("thanos-identity-objstore-secret", "kubernetes:core/v1:ConfigMap", {"data": {"objstore.yml": config}}) == [
        "ConfigMap key objstore.yml holds an objstore config: keep it in a Secret."]
    assert check("thanos-identity-objstore-secret", "kubernetes:core/v1:Secret", {"stringData": {"objstore.yml": config}}) == [
        "Secret key objstore.yml holds static cloud credentials: use workload identity."]
    safe = aws_secret("acme-thanos")["inputs"]
    assert check("thanos-identity-objstore-secret", "kubernetes:core/v1:Secret", safe) == []


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
