"""Compactor rules (policies/thanos_policies/compactor.py): one compactor per bucket, a singleton on a volume."""

import copy

import yaml

from ..support.policies import (DEPLOYMENT, STS, UNKNOWN_STRING, aws_secret, check, check_stack, compactor, container,
                                objstore_secret, set_flag, workload)


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


def test_compactor_delete_delay(prod):
    compactor = workload(prod, "thanos-compactor")["inputs"]
    set_flag(compactor, "thanos-compactor", "delete-delay", "0s")
    assert check("thanos-compactor-singleton", STS, compactor) == [
        "the compactor's --delete-delay is 0: blocks vanish while store gateways still serve them "
        "(config: thanos.compactor.delete-delay)."]


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


def test_an_unsharded_compactor_beside_compactors_sharded_by_a_relabel_file_is_refused():
    sharded = [compactor(f"compact-{i}", "--selector.relabel-config-file=/etc/shard/relabel.yaml") for i in (0, 1)]
    assert check_stack("thanos-compactor-one-per-bucket", [objstore_secret(), *sharded]) == []
    assert check_stack("thanos-compactor-one-per-bucket", [objstore_secret(), *sharded, compactor("compact")]) == [
        "an unsharded compactor writes to bucket S3:blocks/ beside 2 sharded one(s): it compacts the streams they own "
        "as well (overlapping blocks, halted compaction)."]


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
