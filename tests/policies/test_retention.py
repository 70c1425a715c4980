"""Retention rules (policies/thanos_policies/retention.py): the compactor's minimums and floor, bucket lifecycles."""

import copy

from ..support.policies import STS, check, check_stack, container, set_flag, workload


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
