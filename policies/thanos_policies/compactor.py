"""Compactor: exactly one compactor owns a bucket's streams, never on a replication destination, and it runs as a
singleton that waits before deleting and keeps its data on a persistent volume. Two compactors at once write
overlapping blocks and halt compaction."""

from pulumi_policy import PolicyResource

from ._quantities import _bytes
from ._register import resource_policy, stack_policy
from ._workloads import (WORKLOAD_TYPES, Stack, Unknown, bucket_name, fix, flag, known, pod_spec, replicas, seconds,
                         thanos_containers)


def validate_compactor(args, report):
    """Refuses a compactor that can run twice, deletes blocks at once or lacks a volume: overlapping blocks halt compaction."""
    if args.resource_type == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler":
        target = ((args.props.get("spec") or {}).get("scaleTargetRef") or {}).get("name") or ""
        if "compact" in target:
            report(f"the compactor {target} is autoscaled: it must be a singleton.")
        return
    if args.resource_type not in WORKLOAD_TYPES:
        return
    for _, command, flags in thanos_containers(args.props):
        if command != "compact":
            continue
        if replicas(args.props) > 1:
            report(f"the compactor runs {replicas(args.props)} replicas: more than one compactor per bucket "
                   "produces overlapping blocks and halts compaction.")
        if args.resource_type.endswith(":Deployment") and \
                ((args.props.get("spec") or {}).get("strategy") or {}).get("type") != "Recreate":
            report("a compactor Deployment must use strategy Recreate so two never run at once.")
        delay = (flag(flags, "delete-delay") or ["48h"])[0]
        if seconds(delay) == 0:
            report(f"the compactor's --delete-delay is 0: blocks vanish while store gateways still serve them"
                   f"{fix('thanos.compactor.delete-delay')}.")
        claims = (args.props.get("spec") or {}).get("volumeClaimTemplates") or []
        volumes = pod_spec(args.props).get("volumes") or []
        if not claims and not any(v.get("persistentVolumeClaim") for v in volumes):
            report("the compactor's data directory is not on a persistent volume.")
        floor = args.get_config().get("minDataVolume", "100Gi")
        for claim in claims:
            size = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
            if size and _bytes(size) < _bytes(floor):
                report(f"the compactor's volume is {size}, below {floor}: compaction halts when it runs out of disk"
                       f"{fix('thanos.compactor.storage-size')}.")


def compactors_by_bucket(stack: Stack) -> dict[str, list[tuple[PolicyResource, str | None]]]:
    """bucket -> [(compactor workload, its shard selector or None)] for every compactor whose objstore config the
    stack shows. A sharded compactor owns only the streams its relabel config (inline or a file) selects."""
    owners: dict[str, list[tuple[PolicyResource, str | None]]] = {}
    for r in stack.resources:
        if r.resource_type not in WORKLOAD_TYPES:
            continue
        for c, command, flags in thanos_containers(r.props):
            if command != "compact":
                continue
            bucket = bucket_name(stack.objstore(r, c, flags)[0])
            if bucket:  # an inline selector is compared by value; a file's content is each workload's own here
                selector = flag(flags, "selector.relabel-config") + \
                    [f"{r.urn} {path}" for path in flag(flags, "selector.relabel-config-file")]
                owners.setdefault(bucket, []).append((r, "\n".join(selector) if selector else None))
    return owners


AZURE_PAUSED_PREFIX = "thanos-replication-paused/"
"""The prefix a paused Azure object replication rule of this program matches (no Thanos object has it)."""


def _short(bucket: str) -> str:
    """`TYPE:name/prefix` -> `name` (`account/container` on Azure)."""
    return bucket.split(":", 1)[-1].rsplit("/", 1)[0]


def replication_targets(stack: Stack, compacted: set[str]) -> set[str]:
    """Buckets (`bucket`, or `account/container` on Azure) a copy of a compacted stream flows into: enabled S3
    replication rules, Azure object replication policies, and `thanos tools bucket replicate` from a bucket that has
    a compactor (replicating an old bucket into a new one, a migration, is not a DR copy)."""
    targets = set()
    # The rules each destination account's policies show (the destination's own policy holds them as plain inputs;
    # its source repeats them with ids generated at apply).
    known_rules: dict[str, list] = {}
    for r in stack.resources:
        if r.resource_type == "azure-native:storage:ObjectReplicationPolicy":
            rules = known(lambda r=r: r.props.get("rules"))
            if not isinstance(rules, Unknown) and rules:
                known_rules.setdefault(str(r.props.get("destinationAccount") or ""), list(rules))
    for r in stack.resources:
        if r.resource_type == "aws:s3/bucketReplicationConfig:BucketReplicationConfig":
            targets |= {((rule.get("destination") or {}).get("bucket") or "").rsplit(":", 1)[-1]
                        for rule in r.props.get("rules") or [] if rule.get("status") != "Disabled"}
        elif r.resource_type == "azure-native:storage:ObjectReplicationPolicy":
            account = str(r.props.get("destinationAccount") or "").rsplit("/", 1)[-1]
            rules = known(lambda r=r: r.props.get("rules"))
            if isinstance(rules, Unknown):  # a source policy repeats the destination's generated rule ids
                rules = known_rules.get(str(r.props.get("destinationAccount") or ""))
                if rules is None:
                    targets.add(f"{account}/*")  # every container of the account, until the rules are known
                    continue
            targets |= {f"{account}/{rule.get('destinationContainer')}" for rule in rules or []
                        if AZURE_PAUSED_PREFIX not in list((rule.get("filters") or {}).get("prefixMatch") or [])}
        elif r.resource_type in WORKLOAD_TYPES:
            for c, command, flags in thanos_containers(r.props):
                if command == "tools bucket replicate":
                    source = _short(bucket_name(stack.objstore(r, c, flags)[0]))
                    target = _short(bucket_name(stack.objstore(r, c, flags, "objstore-to")[0]))
                    if target and source != target and source in compacted:
                        targets.add(target)
    return targets


def validate_one_compactor_per_bucket(args, report):
    """Refuses two compactors owning one bucket's streams, or one on a replication destination: overlapping blocks halt compaction."""
    stack = Stack(args.resources)
    owners = compactors_by_bucket(stack)
    for bucket, found in sorted(owners.items()):
        unsharded = [r.urn for r, selector in found if selector is None]
        by_selector: dict[str, list] = {}
        for r, selector in found:
            if selector is not None:
                by_selector.setdefault(selector, []).append(r.urn)
        # Compactors with one selector own the same streams: as many owners of them as of an unsharded bucket.
        for same in ([unsharded] if len(unsharded) > 1 else []) + [u for u in by_selector.values() if len(u) > 1]:
            report(f"{len(same)} compactors write to bucket {bucket}: exactly one compactor may own a bucket"
                   f"{fix('regions[].compactor-cluster')}.", same[1])
        if len(unsharded) == 1 and len(found) > 1:
            report(f"an unsharded compactor writes to bucket {bucket} beside {len(found) - 1} sharded one(s): it "
                   "compacts the streams they own as well (overlapping blocks, halted compaction).", unsharded[0])
    replicas_of = replication_targets(stack, {_short(bucket) for bucket in owners})
    for bucket, found in sorted(owners.items()):
        name = _short(bucket)
        if name in replicas_of or f"{name.split('/', 1)[0]}/*" in replicas_of:
            report(f"a compactor writes to {name}, a replication destination: it would compact the replicated "
                   "streams a second time (overlaps); DR copies are read-only.", found[0][0].urn)


POLICIES = [
    stack_policy("thanos-compactor-one-per-bucket", "Exactly one unsharded compactor per bucket across the stack.",
                 validate_one_compactor_per_bucket),
    resource_policy("thanos-compactor-singleton", "The compactor never runs more than one replica, is never autoscaled and "
                    "keeps its data on a PVC.", validate_compactor,
                    config={"minDataVolume": {"type": "string", "default": "100Gi"}}),
]
