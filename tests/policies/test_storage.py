"""Storage rules (policies/thanos_policies/storage.py): bucket safety, replication, the DR copy, protection."""

import copy

from ..support.policies import check, check_stack


def test_bucket_safety(prod):
    assert check_stack("thanos-storage-bucket-safety", prod) == []
    without = [r for r in prod if not (r["type"] == "aws:s3/bucketVersioning:BucketVersioning"
                                       and r["name"] == "us-east-1-objectstore-bucket-versioning")]
    assert check_stack("thanos-storage-bucket-safety", without) == [
        "S3 bucket acme-thanos-prod-us-east-1 has no versioning enabled."]


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
