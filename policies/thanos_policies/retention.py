"""Retention: the compactor's retention meets Thanos' downsampling minimums, the raw floor and 1h >= 5m >= raw, and
no bucket lifecycle deletes or freezes blocks the compactor still keeps."""

from ._register import resource_policy, stack_policy
from ._workloads import WORKLOAD_TYPES, fix, flag, has_switch, known, seconds, thanos_containers


def validate_retention(args, report):
    """Refuses compactor retention below Thanos' downsampling minimums or the floor, or out of order: data lost or no start."""
    if args.resource_type not in WORKLOAD_TYPES:
        return
    floor = seconds(args.get_config().get("rawFloor", "30d"))
    for _, command, flags in thanos_containers(args.props):
        if command != "compact":
            continue
        raw, five, hour = (seconds((flag(flags, f"retention.resolution-{r}") or ["0d"])[0]) for r in ("raw", "5m", "1h"))
        downsampling = not has_switch(flags, "downsampling.disable")
        if downsampling and raw and raw < 40 * 3600:
            report(f"compactor raw retention is below 40h with downsampling on: Thanos refuses to start"
                   f"{fix('thanos.compactor.retention.raw')}.")
        if downsampling and five and five < 10 * 86400:
            report(f"compactor 5m retention is below 10d with downsampling on: Thanos refuses to start"
                   f"{fix('thanos.compactor.retention.5m')}.")
        if raw and raw < floor:
            report(f"compactor raw retention is below the floor of {args.get_config().get('rawFloor', '30d')}"
                   f"{fix('thanos.compactor.retention.raw')}.")
        inf = float("inf")  # without downsampling no 5m or 1h block is made: their retention only purges old ones
        if downsampling and ((five or inf) < (raw or inf) or (hour or inf) < (five or inf)):
            report(f"compactor retention must satisfy 1h >= 5m >= raw (0d = forever){fix('thanos.compactor.retention')}.")


def copy_expiry_floor(resources) -> float | None:
    """The least age (days) at which a DR copy may drop a block by lifecycle: the longest retention of any resolution
    of any compactor of the stack plus its deletion delay. None when some compactor keeps a resolution forever (or
    there is none): then nothing may expire."""
    floors = []
    for r in resources:
        if r.resource_type not in WORKLOAD_TYPES:
            continue
        for _, command, flags in thanos_containers(r.props):
            if command != "compact":
                continue
            kept = [seconds((flag(flags, f"retention.resolution-{res}") or ["0d"])[0]) for res in ("raw", "5m", "1h")]
            if 0 in kept:
                return None
            floors.append((max(kept) + seconds((flag(flags, "delete-delay") or ["48h"])[0])) / 86400)
    return max(floors) if floors else None


def validate_lifecycle(args, report):
    """Refuses bucket lifecycle rules that delete blocks the compactor still keeps or move them where Thanos cannot read them."""
    resources = args.resources
    # A DR account is the destination of object replication: named by the policy's destination account id, or, as
    # Azure creates it, the account holding the policy whose id is still "default" (the source repeats a generated one).
    policies = [r for r in resources if r.resource_type == "azure-native:storage:ObjectReplicationPolicy"]
    copies = {str(known(lambda r=r: r.props.get("destinationAccount")) or "").rsplit("/", 1)[-1] for r in policies}
    copies |= {r.props.get("accountName") for r in policies
               if known(lambda r=r: r.props.get("objectReplicationPolicyId")) == "default"}
    floor = copy_expiry_floor(resources)
    for r in resources:
        for message in lifecycle_findings(r.resource_type, r.props, r.props.get("accountName") in copies, floor):
            report(message, r.urn)


def lifecycle_findings(resource_type: str, props: dict, replica_account: bool, floor: float | None) -> list[str]:
    """What one bucket lifecycle resource does wrong. An Azure DR account (the destination of object replication,
    which copies no deletes) may expire current blobs once every compactor's retention is past (`floor` days)."""
    found = []
    if resource_type == "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration":
        for rule in props.get("rules") or []:
            expiration = rule.get("expiration") or {}
            if expiration.get("days") or expiration.get("date"):
                found.append(f"lifecycle rule {rule.get('id')} expires current objects: retention is the compactor's "
                             "job; an expiration deletes parts of blocks Thanos still reads.")
            for t in rule.get("transitions") or []:
                if t.get("storageClass") in ("GLACIER", "DEEP_ARCHIVE"):
                    found.append(f"lifecycle rule {rule.get('id')} moves objects to {t.get('storageClass')}, which "
                                 "Thanos cannot read without a restore.")
    elif resource_type == "azure-native:storage:ManagementPolicy":
        for rule in ((props.get("policy") or {}).get("rules") or []):
            base = (((rule.get("definition") or {}).get("actions") or {}).get("baseBlob") or {})
            days = (base.get("delete") or {}).get("daysAfterModificationGreaterThan")
            if base.get("delete") and not (replica_account and floor is not None and days and days >= floor):
                if not replica_account:
                    why = "retention is the compactor's job"
                elif floor is None:
                    why = "a DR copy may expire blocks only when no compactor keeps a resolution forever"
                else:
                    why = f"a DR copy may expire blocks only after every retention and the deletion delay ({floor:.0f} days)"
                found.append(f"management policy rule {rule.get('name')} deletes current blobs: {why}.")
            if base.get("tierToArchive"):
                found.append(f"management policy rule {rule.get('name')} moves blobs to the Archive tier, which "
                             "Thanos cannot read.")
    elif resource_type == "gcp:storage/bucket:Bucket":
        for rule in props.get("lifecycleRules") or []:
            action, condition = rule.get("action") or {}, rule.get("condition") or {}
            if action.get("type") == "Delete" and condition.get("withState") != "ARCHIVED" \
                    and not condition.get("daysSinceNoncurrentTime") and not condition.get("numNewerVersions"):
                found.append("a GCS lifecycle rule deletes live objects: retention is the compactor's job.")
            if action.get("type") == "SetStorageClass" and action.get("storageClass") in ("ARCHIVE", "COLDLINE"):
                found.append(f"a GCS lifecycle rule moves objects to {action.get('storageClass')}: every read of an "
                             "old block then pays retrieval fees and a minimum storage duration.")
    return found


POLICIES = [
    resource_policy("thanos-retention-minimums", "Compactor retention meets Thanos' downsampling minimums, the raw floor, "
                    "and 1h >= 5m >= raw.", validate_retention,
                    config={"rawFloor": {"type": "string", "default": "30d"}}),
    stack_policy("thanos-retention-lifecycle", "Bucket lifecycle never expires current objects or freezes them unreadable.",
                 validate_lifecycle),
]
