"""Storage safety: buckets are versioned, encrypted, closed to the public, replicated to another region and
protected from deletion, and a DR copy survives a replicated delete."""

from ._register import resource_policy, stack_policy
from ._workloads import Stack, fix, workload_containers


S3_BUCKET = "aws:s3/bucket:Bucket"
BUCKET_TYPES = (S3_BUCKET, "gcp:storage/bucket:Bucket", "azure-native:storage:StorageAccount")
# What deleting each one loses. `pulumi destroy` deletes a protected bucket's unprotected children before it stops
# at the bucket, so what guards the data is protected with it.
PROTECTED_TYPES = {
    S3_BUCKET: "this bucket holds every block Thanos ever wrote",
    "aws:s3/bucketVersioning:BucketVersioning": "deleting it suspends versioning: an overwrite or delete is final",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        "deleting it drops the bucket's customer key: new blocks are encrypted with the S3-managed key",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "deleting it lets a policy or ACL make blocks public",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "deleting it re-enables object ACLs",
    "aws:s3/bucketPolicy:BucketPolicy": "deleting it allows requests without TLS",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration":
        "deleting it keeps every noncurrent version and abandoned upload forever",
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": "deleting it stops the copy to the DR region",
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration":
        "deleting it ends the DR copy's default retention: replicated deletes can then erase it",
    "gcp:storage/bucket:Bucket": "this bucket holds every block Thanos ever wrote",
    "gcp:storage/bucketIAMMember:BucketIAMMember": "deleting it cuts a component off the bucket",
    "gcp:projects/iAMCustomRole:IAMCustomRole": "a deleted custom role's id cannot be created again for 37 days",
    "azure-native:storage:StorageAccount": "this account holds every block Thanos ever wrote",
    "azure-native:storage:BlobContainer": "this container holds every block Thanos ever wrote",
    "azure-native:storage:BlobServiceProperties": "it holds the account's versioning and soft delete",
    "azure-native:storage:ManagementPolicy": "deleting it keeps every previous version forever",
    "azure-native:storage:ObjectReplicationPolicy": "deleting it stops the copy to the DR region",
}


def _by_bucket(resources, type_token, bucket_id):
    return [r for r in resources if r.resource_type == type_token and r.props.get("bucket") == bucket_id]


def validate_bucket_safety(args, report):
    """Refuses an unversioned, unencrypted or public bucket, and a FILESYSTEM objstore: blocks could be lost or read by anyone."""
    resources = args.resources
    stack = Stack(resources)
    for r, name, c, command, flags in workload_containers(resources):
        document = stack.objstore(r, c, flags)[0] or {}
        if str(document.get("type", "")).upper() == "FILESYSTEM":
            directory = (document.get("config") or {}).get("directory")
            report(f"{name}: the objstore config of thanos {command} is a FILESYSTEM bucket ({directory}): a directory "
                   "of one pod, shared with no other component and lost with its volume; use an object store.", r.urn)
    for r in resources:
        props = r.props
        if r.resource_type == S3_BUCKET:
            bucket = props.get("bucket")
            versioning = _by_bucket(resources, "aws:s3/bucketVersioning:BucketVersioning", bucket)
            if not any((v.props.get("versioningConfiguration") or {}).get("status") == "Enabled" for v in versioning):
                report(f"S3 bucket {bucket} has no versioning enabled.", r.urn)
            if not _by_bucket(resources, "aws:s3/bucketServerSideEncryptionConfiguration:"
                                         "BucketServerSideEncryptionConfiguration", bucket):
                report(f"S3 bucket {bucket} has no server-side encryption configuration.", r.urn)
            blocks = _by_bucket(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
            keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
            if not any(all(b.props.get(k) for k in keys) for b in blocks):
                report(f"S3 bucket {bucket} does not block all four kinds of public access.", r.urn)
        elif r.resource_type == "gcp:storage/bucket:Bucket":
            if not (props.get("versioning") or {}).get("enabled"):
                report(f"GCS bucket {props.get('name')} has no versioning.", r.urn)
            if props.get("publicAccessPrevention") != "enforced" or not props.get("uniformBucketLevelAccess"):
                report(f"GCS bucket {props.get('name')} must enforce public access prevention and uniform access.", r.urn)
        elif r.resource_type == "azure-native:storage:StorageAccount":
            if props.get("allowBlobPublicAccess") is not False or props.get("allowSharedKeyAccess") is not False:
                report(f"storage account {props.get('accountName')} must disable public blob and shared-key access.",
                       r.urn)


DR_RULE = "thanos-dr"


def validate_replicated(args, report):
    """Refuses a bucket with no copy in another region: a regional outage would lose every block."""
    resources = args.resources
    # A rule this program disabled for a DR switch or a failback (id thanos-dr, docs/dr.md) still counts.
    replicated = {r.props.get("bucket") for r in resources
                  if r.resource_type == "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
                  and any(rule.get("status") == "Enabled" or rule.get("id") == DR_RULE
                          for rule in r.props.get("rules") or [])}
    destinations = {((rule.get("destination") or {}).get("bucket") or "").rsplit(":", 1)[-1]
                    for r in resources if r.resource_type == "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
                    for rule in r.props.get("rules") or []}
    for r in resources:
        if r.resource_type == S3_BUCKET and r.props.get("bucket") not in replicated | destinations:
            report(f"S3 bucket {r.props.get('bucket')} is not replicated to another region"
                   f"{fix('regions[].storage.replication')}.", r.urn)
        if r.resource_type == "gcp:storage/bucket:Bucket" and r.props.get("rpo") != "ASYNC_TURBO":
            report(f"GCS bucket {r.props.get('name')} is not dual-region with turbo replication"
                   f"{fix('regions[].storage.dual-region')}.", r.urn)
        if r.resource_type == "azure-native:storage:StorageAccount" and \
                "GZRS" not in ((r.props.get("sku") or {}).get("name") or "") and \
                "GRS" not in ((r.props.get("sku") or {}).get("name") or ""):
            report(f"storage account {r.props.get('accountName')} is not geo-redundant{fix('regions[].storage.sku')}.",
                   r.urn)


def noncurrent_days(resources) -> dict[str, int]:
    """Bucket -> the days its lifecycle keeps noncurrent versions (the shortest enabled expiration rule)."""
    found: dict[str, int] = {}
    for r in resources:
        if r.resource_type != "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration":
            continue
        for rule in r.props.get("rules") or []:
            days = (rule.get("noncurrentVersionExpiration") or {}).get("noncurrentDays")
            if rule.get("status") == "Enabled" and isinstance(days, int):
                found[r.props.get("bucket")] = min(days, found.get(r.props.get("bucket"), days))
    return found


def validate_dr_immutable(args, report):
    """Refuses a DR copy that mirrors deletes without Object Lock or keeps deleted versions no longer than its source."""
    kept_days = noncurrent_days(args.resources)
    locked = {r.props.get("bucket") for r in args.resources
              if r.resource_type == "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
              and r.props.get("objectLockEnabled", "Enabled") == "Enabled"
              and (((r.props.get("rule") or {}).get("defaultRetention") or {}).get("days")
                   or ((r.props.get("rule") or {}).get("defaultRetention") or {}).get("years"))}
    for r in args.resources:
        if r.resource_type != "aws:s3/bucketReplicationConfig:BucketReplicationConfig":
            continue
        for rule in r.props.get("rules") or []:
            if (rule.get("deleteMarkerReplication") or {}).get("status") != "Enabled":
                continue
            destination = ((rule.get("destination") or {}).get("bucket") or "").rsplit(":", 1)[-1]
            if destination and destination not in locked:
                report(f"the DR copy {destination} mirrors the deletes of {r.props.get('bucket')} without Object Lock: "
                       "the identities that write the source (a deletion mark, the compactor) erase the copy too once "
                       f"its noncurrent versions expire{fix('regions[].storage.dr-immutable-for')}.", r.urn)
            source_days, copy_days = kept_days.get(r.props.get("bucket")), kept_days.get(destination)
            # Object Lock covers only versions younger than its retention: an older block deleted in the source is
            # recoverable from the copy only while the copy keeps noncurrent versions.
            if source_days and copy_days and copy_days <= source_days:
                report(f"the DR copy {destination} keeps deleted versions {copy_days} days, no longer than "
                       f"{r.props.get('bucket')} ({source_days}): a replicated delete of a block older than the Object "
                       "Lock is gone from both at once; keep the copy's noncurrent versions longer"
                       f"{fix('regions[].storage.dr-noncurrent-version-expiration')}.", r.urn)


def validate_protected(args, report):
    """Refuses an unprotected bucket or bucket setting: `pulumi destroy` would delete the blocks or what guards them."""
    loses = PROTECTED_TYPES.get(args.resource_type)
    if loses and not args.opts.protect:
        report(f"{loses}: set protect (and retainOnDelete){fix('protect-data')}.")


POLICIES = [
    stack_policy("thanos-storage-bucket-safety", "Buckets are versioned, encrypted and closed to the public (S3, GCS, "
                 "Azure); Thanos never keeps blocks in a local FILESYSTEM bucket.", validate_bucket_safety),
    stack_policy("thanos-storage-replicated", "Every Thanos bucket is replicated to another region.", validate_replicated),
    stack_policy("thanos-storage-dr-immutable", "A DR copy that mirrors the source's deletes keeps every version for a "
                 "while (S3 Object Lock), and deleted versions longer than the source.", validate_dr_immutable),
    resource_policy("thanos-storage-protected", "Buckets, storage accounts, containers and the settings that guard them "
                    "are protected from deletion.", validate_protected),
]
