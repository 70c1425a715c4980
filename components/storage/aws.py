"""S3 object storage and IRSA identities for one region: versioned, encrypted, private, replicated with RTC."""

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import yaml

from components.storage.backend import RegionStorage
from components.storage.identity import (
    DELETER,
    MARKER_SUFFIX,
    READER,
    WRITER,
    BucketAccess,
    ClusterIdentity,
    dr_store_component,
    role_of,
    subject,
)
from components.storage.protection import kept
from config.base import duration_seconds
from config.stack import RegionSpec, replica_bucket_name
from config.storage import AwsStorage

ROLE_ACTIONS = {
    READER: ["s3:GetObject"],
    WRITER: ["s3:GetObject", "s3:PutObject"],
    DELETER: ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
}
STORAGE_CLASS = "s3:x-amz-storage-class"
CUSTOMER_KEY = "s3:x-amz-server-side-encryption-customer-algorithm"
"""The request's storage class and SSE-C algorithm headers, as IAM condition keys of s3:PutObject."""
KMS_ACTIONS = {READER: ["kms:Decrypt"], WRITER: ["kms:Decrypt", "kms:GenerateDataKey"],
               DELETER: ["kms:Decrypt", "kms:GenerateDataKey"]}


def days(duration: str) -> int:
    """Whole days of a duration, at least 1 (S3 lifecycle counts days)."""
    return max(1, int(duration_seconds(duration) // 86400))


def lifecycle_rules(storage: AwsStorage, dr_copy: bool = False) -> list[dict[str, Any]]:
    """Lifecycle that never deletes or freezes a block Thanos reads: no expiration of current objects (retention is
    the compactor's job), only noncurrent versions (kept longer in the DR copy), stale delete markers and abandoned
    multipart uploads go, and an optional transition to a class that stays instantly readable."""
    noncurrent = storage.dr_noncurrent_version_expiration if dr_copy else storage.noncurrent_version_expiration
    rules: list[dict[str, Any]] = [
        {"id": "abort-incomplete-multipart-uploads", "status": "Enabled", "filter": {"prefix": ""},
         "abort_incomplete_multipart_upload": {"days_after_initiation": 1}},
        {"id": "expire-noncurrent-versions", "status": "Enabled", "filter": {"prefix": ""},
         "noncurrent_version_expiration": {"noncurrent_days": days(noncurrent)}},
        {"id": "remove-expired-delete-markers", "status": "Enabled", "filter": {"prefix": ""},
         "expiration": {"expired_object_delete_marker": True}},
    ]
    if storage.infrequent_access_after:
        rules.append({"id": "current-to-infrequent-access", "status": "Enabled", "filter": {"prefix": ""},
                      "transitions": [{"days": days(storage.infrequent_access_after),
                                       "storage_class": storage.infrequent_access_class}]})
    return rules


def bucket_arn(partition: str, bucket: str) -> str:
    """A bucket's ARN from its name, known before the bucket exists (so a first preview judges what names it)."""
    return f"arn:{partition}:s3:::{bucket}"


def role_arn(partition: str, account_id: str, role: str) -> str:
    """An IAM role's ARN from its name (known before the role exists)."""
    return f"arn:{partition}:iam::{account_id}:role/{role}"


def partition_of(arn: str) -> str:
    """The partition (`aws`, `aws-cn`, `aws-us-gov`) an ARN lives in."""
    return arn.split(":")[1]


def encryption_rule(kms_key_arn: str | None) -> dict[str, Any]:
    """SSE-KMS with a bucket key when a key is given, else SSE-S3."""
    if kms_key_arn:
        return {"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                            "kms_master_key_id": kms_key_arn},
                "bucket_key_enabled": True}
    return {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}


def tls_only_bucket_policy(bucket_arn: str) -> dict[str, Any]:
    """Deny every request that does not use TLS."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}


def component_policy(role: str, bucket_arn: str, kms_key_arn: str | None) -> dict[str, Any]:
    """The IAM policy of a component: list the bucket, and the object actions of its role, on this bucket only
    (writers: never a block marker; whoever uploads: never another storage class or a customer-provided key)."""
    statements: list[dict[str, Any]] = [
        {"Sid": "ListBucket", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn]},
        {"Sid": "Objects", "Effect": "Allow", "Action": ROLE_ACTIONS[role], "Resource": [f"{bucket_arn}/*"]},
    ]
    if role == WRITER:  # a deletion mark makes the compactor delete the block: only the compactor writes marks
        statements.append({"Sid": "NoBlockMarkers", "Effect": "Deny", "Action": ["s3:PutObject"],
                           "Resource": [f"{bucket_arn}/*{MARKER_SUFFIX}"]})
    if "s3:PutObject" in ROLE_ACTIONS[role]:
        statements += unreadable_writes_denied(bucket_arn)
    if kms_key_arn:
        statements.append({"Sid": "BucketKey", "Effect": "Allow", "Action": KMS_ACTIONS[role],
                           "Resource": [kms_key_arn], "Condition": via_s3(kms_key_arn)})
    return {"Version": "2012-10-17", "Statement": statements}


def unreadable_writes_denied(bucket_arn: str) -> list[dict[str, Any]]:
    """Deny the writes that make a block unreadable without deleting it (a copy in place is a PutObject too): another
    storage class than STANDARD (DEEP_ARCHIVE or GLACIER need a restore of hours before Thanos can read; transitions
    are the bucket's lifecycle, not Thanos') and a customer-provided key (SSE-C: only who holds the key reads).
    Each Deny applies only when the request carries the header: a negated operator (and its IfExists form) is true
    when the key is absent, so `Null: false` keeps ordinary uploads, which send no class and no customer key."""
    objects = [f"{bucket_arn}/*"]
    return [{"Sid": "OnlyStandardStorageClass", "Effect": "Deny", "Action": ["s3:PutObject"], "Resource": objects,
             "Condition": {"StringNotEquals": {STORAGE_CLASS: "STANDARD"}, "Null": {STORAGE_CLASS: "false"}}},
            {"Sid": "NoCustomerProvidedKeys", "Effect": "Deny", "Action": ["s3:PutObject"], "Resource": objects,
             "Condition": {"Null": {CUSTOMER_KEY: "false"}}}]


def via_s3(kms_key_arn: str) -> dict[str, Any]:
    """The key is usable only through S3 in its own region: a leaked role session cannot decrypt with it directly."""
    return {"StringEquals": {"kms:ViaService": f"s3.{kms_key_arn.split(':')[3]}.amazonaws.com"}}


def irsa_trust_policy(oidc_provider_arn: str, issuer: str, namespace: str, component: str) -> dict[str, Any]:
    """Trust the cluster's OIDC provider for exactly one ServiceAccount, audience sts.amazonaws.com."""
    host = issuer.removeprefix("https://").rstrip("/")
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "ServiceAccount", "Effect": "Allow", "Principal": {"Federated": oidc_provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{host}:sub": subject(namespace, component),
                                       f"{host}:aud": "sts.amazonaws.com"}}}]}


def replication_trust_policy(source_bucket: str, account_id: str, partition: str = "aws") -> dict[str, Any]:
    """S3 assumes the replication role, for this bucket of this account only (no confused deputy: another account's
    bucket cannot name the role in its replication configuration), in the account's partition (an `arn:aws:` source
    never matches in aws-cn or aws-us-gov, and replication would silently copy nothing)."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "S3Replication", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id},
                      "ArnLike": {"aws:SourceArn": bucket_arn(partition, source_bucket)}}}]}


def replication_policy(source_arn: str, destination_arn: str, source_key: str | None,
                       destination_key: str | None) -> dict[str, Any]:
    """Only the replication actions: read versions of the source, replicate into the destination."""
    statements: list[dict[str, Any]] = [
        {"Sid": "SourceBucket", "Effect": "Allow", "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
         "Resource": [source_arn]},
        {"Sid": "SourceObjects", "Effect": "Allow",
         "Action": ["s3:GetObjectVersionAcl", "s3:GetObjectVersionForReplication", "s3:GetObjectVersionTagging"],
         "Resource": [f"{source_arn}/*"]},
        {"Sid": "DestinationObjects", "Effect": "Allow",
         "Action": ["s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags"],
         "Resource": [f"{destination_arn}/*"]},
    ]
    if source_key and destination_key:
        statements += [{"Sid": "DecryptSource", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [source_key]},
                       {"Sid": "EncryptDestination", "Effect": "Allow", "Action": ["kms:Encrypt"],
                        "Resource": [destination_key]}]
    return {"Version": "2012-10-17", "Statement": statements}


def replication_rule(storage: AwsStorage, destination_arn: str) -> dict[str, Any]:
    """Replicate everything with Replication Time Control (15 minutes) and its metrics; disabled while the region
    runs on its DR copy or replication is paused (kept, not deleted: an update happens in order, a delete last)."""
    assert storage.replication is not None
    enabled = storage.active == "primary" and not storage.replication.paused
    destination: dict[str, Any] = {
        "bucket": destination_arn, "storage_class": "STANDARD",
        "replication_time": {"status": "Enabled", "time": {"minutes": 15}},
        "metrics": {"status": "Enabled", "event_threshold": {"minutes": 15}}}
    rule: dict[str, Any] = {
        "id": "thanos-dr", "status": "Enabled" if enabled else "Disabled", "priority": 1, "filter": {"prefix": ""},
        "delete_marker_replication": {"status": "Enabled" if storage.replication.replicate_deletes else "Disabled"},
        "destination": destination}
    if storage.kms_key_arn:
        destination["encryption_configuration"] = {"replica_kms_key_id": storage.replica_kms_key_arn}
        rule["source_selection_criteria"] = {"sse_kms_encrypted_objects": {"status": "Enabled"}}
    return rule


def copy_of(storage: AwsStorage, region: str, copy: str) -> tuple[str, str, str | None]:
    """(bucket, region, KMS key) of the primary or the DR copy."""
    if copy == "dr":
        assert storage.replication is not None
        return replica_bucket_name(storage), storage.replication.destination, storage.replica_kms_key_arn
    return storage.bucket, region, storage.kms_key_arn


def objstore_config(storage: AwsStorage, region: str, copy: str = "primary") -> str:
    """The objstore YAML of one copy: the SDK's credential chain (IRSA web identity), no keys, server-side encryption."""
    bucket, bucket_region, key = copy_of(storage, region, copy)
    sse = {"type": "SSE-KMS", "kms_key_id": key} if key else {"type": "SSE-S3"}
    return yaml.safe_dump({"type": "S3", "config": {
        "bucket": bucket, "endpoint": f"s3.{bucket_region}.amazonaws.com", "region": bucket_region,
        "aws_sdk_auth": True, "signature_version2": False, "sse_config": sse}}, sort_keys=True)


@dataclass(frozen=True)
class S3BucketArgs:
    """One bucket of a region: the primary or its DR copy."""

    bucket_name: str
    """The bucket's name."""
    storage: AwsStorage
    """The region's storage spec (its lifecycle settings)."""
    kms_key_arn: str | None
    """The bucket's SSE-KMS key; None: SSE-S3."""
    protect: bool
    """Protect the bucket and its settings, and retain them on delete (the stack's protect-data)."""
    partition: pulumi.Output[str]
    """The account's partition (aws, aws-cn, aws-us-gov), for the bucket's ARN."""
    lock_days: int | None = None
    """S3 Object Lock in governance mode as the bucket's default retention, in days (the DR copy); default none."""
    dr_copy: bool = False
    """The DR bucket: its own noncurrent-version expiry; default false."""


class S3Bucket(pulumi.ComponentResource):
    """One hardened bucket: versioning, encryption, public access block, owner-enforced, TLS only, lifecycle."""

    bucket: aws.s3.Bucket
    """The bucket."""
    versioning: aws.s3.BucketVersioning
    """Its versioning (replication depends on it)."""

    arn: pulumi.Output[str]
    """Its ARN, built from the name and the partition: known during a first preview, ordered after the bucket."""

    def __init__(self, name: str, args: S3BucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:aws:S3Bucket", name, {}, opts)
        bucket_name, storage, protect, lock_days = args.bucket_name, args.storage, args.protect, args.lock_days
        # The bucket's settings name it by its input (known in a first preview, unlike its id) and wait for it.
        self.bucket = aws.s3.Bucket(name, bucket=bucket_name, force_destroy=False,
                                    tags={"thanos.io/bucket": bucket_name}, opts=kept(self, protect))
        self.arn = pulumi.Output.all(args.partition, self.bucket.bucket).apply(lambda v: bucket_arn(v[0], v[1]))
        child = kept(self, protect, depends_on=[self.bucket])
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=self.bucket.bucket,
            versioning_configuration={"status": "Enabled"}, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(f"{name}-encryption", bucket=self.bucket.bucket,
                                                       rules=[encryption_rule(args.kms_key_arn)], opts=child)
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block", bucket=self.bucket.bucket, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        aws.s3.BucketOwnershipControls(f"{name}-ownership", bucket=self.bucket.bucket,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        aws.s3.BucketPolicy(f"{name}-tls-only", bucket=self.bucket.bucket,
                            policy=self.arn.apply(lambda arn: json.dumps(tls_only_bucket_policy(arn))),
                            opts=kept(self, protect, depends_on=[self.bucket, public_block]))
        aws.s3.BucketLifecycleConfiguration(f"{name}-lifecycle", bucket=self.bucket.bucket,
                                            rules=lifecycle_rules(storage, dr_copy=lock_days is not None or args.dr_copy),
                                            opts=kept(self, protect, depends_on=[self.bucket, self.versioning]))
        if lock_days:  # enabled on an existing versioned bucket too; governance: only s3:BypassGovernanceRetention
            aws.s3.BucketObjectLockConfiguration(  # (which no identity of this stack holds) deletes a locked version
                f"{name}-object-lock", bucket=self.bucket.bucket, object_lock_enabled="Enabled",
                rule={"default_retention": {"mode": "GOVERNANCE", "days": lock_days}},
                opts=kept(self, protect, depends_on=[self.bucket, self.versioning]))
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.arn})


@dataclass(frozen=True)
class AwsObjectStoreArgs:
    """A region's S3 storage and who uses it."""

    region: str
    """The region of the primary bucket."""
    storage: AwsStorage
    """The region's storage spec."""
    clusters: list[ClusterIdentity]
    """Each cluster of the region, whose components get an IRSA role on the bucket in use."""
    namespace: str
    """The stack's namespace (a cluster's ServiceAccounts live there unless it names its own)."""
    protect: bool
    """Protect the buckets, their settings and the replication, and retain them on delete (the stack's protect-data)."""
    provider: pulumi.ProviderResource
    """The region's AWS provider."""
    dr_provider: pulumi.ProviderResource | None = None
    """The AWS provider of the DR copy's region; default none (no DR copy)."""
    dr_reader: ClusterIdentity | None = None
    """The cluster whose read-only store gateway reads the DR copy; default none."""


class AwsObjectStore(pulumi.ComponentResource):
    """The region's bucket, its DR copy in another region, the replication role, and an IRSA role per component."""

    access: dict[str, BucketAccess]
    """Bucket access by cluster name."""
    outputs: dict[str, Any]
    """What the stack exports for this region."""

    dr_access: BucketAccess | None
    """Read-only access to the DR copy for the DR cluster's store gateway (None without replication)."""

    def __init__(self, name: str, args: AwsObjectStoreArgs, opts: pulumi.ResourceOptions | None = None):
        region, storage, namespace, protect = args.region, args.storage, args.namespace, args.protect
        provider, dr_provider, dr_reader = args.provider, args.dr_provider, args.dr_reader
        super().__init__("thanos:aws:ObjectStore", name, {}, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(providers=[provider])))
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=provider))
        partition = account.arn.apply(partition_of)
        primary = S3Bucket(f"{name}-bucket", S3BucketArgs(storage.bucket, storage, storage.kms_key_arn, protect, partition),
                           pulumi.ResourceOptions(parent=self))
        self.outputs = {"bucket": primary.bucket.bucket, "bucketArn": primary.arn, "active": storage.active}
        active_arn, switch_after, self.dr_access = primary.arn, [], None
        replica: S3Bucket | None = None

        if storage.replication and dr_provider:
            replica = S3Bucket(f"{name}-dr-bucket", S3BucketArgs(
                replica_bucket_name(storage), storage, storage.replica_kms_key_arn, protect, partition,
                lock_days=days(storage.dr_immutable_for) if storage.dr_immutable_for else None, dr_copy=True),
                pulumi.ResourceOptions(parent=self, providers=[dr_provider]))
            role = aws.iam.Role(f"{name}-replication", name=f"thanos-replication-{storage.bucket}"[:64],
                                assume_role_policy=pulumi.Output.all(account.account_id, partition).apply(
                                    lambda v: json.dumps(replication_trust_policy(storage.bucket, v[0], v[1]),
                                                         sort_keys=True)),
                                opts=kept(self, protect))
            aws.iam.RolePolicy(f"{name}-replication", role=role.name, policy=pulumi.Output.all(
                primary.arn, replica.arn).apply(lambda arns: json.dumps(replication_policy(
                    arns[0], arns[1], storage.kms_key_arn, storage.replica_kms_key_arn), sort_keys=True)),
                opts=kept(self, protect, depends_on=[role]))
            replication = aws.s3.BucketReplicationConfig(
                f"{name}-replication", bucket=primary.bucket.bucket,
                role=pulumi.Output.all(partition, account.account_id, role.name).apply(lambda v: role_arn(*v)),
                rules=[replica.arn.apply(lambda arn: replication_rule(storage, arn))],
                opts=kept(self, protect, depends_on=[role, primary.versioning, replica.versioning]))
            self.outputs.update(drBucket=replica.bucket.bucket, drBucketArn=replica.arn,
                                replicationRoleArn=role.arn)
            switch_after = [replication]  # the compactor moves only once the replication stream has stopped
            if storage.active == "dr":
                active_arn = replica.arn

        config = objstore_config(storage, region, storage.active)
        active_key = copy_of(storage, region, storage.active)[2]
        self.access = {}
        roles: dict[str, Any] = {}
        for cluster in args.clusters:
            annotations: dict[str, dict[str, pulumi.Input[str]]] = {}
            for component in cluster.components:
                annotations[component] = {"eks.amazonaws.com/role-arn": self._irsa_role(
                    f"{name}-{cluster.name}-{component}", cluster, component, cluster.namespace or namespace, account.account_id,
                    partition, active_arn, active_key)}
                roles[f"{cluster.name}/{component}"] = annotations[component]["eks.amazonaws.com/role-arn"]
            self.access[cluster.name] = BucketAccess(objstore_config=config, annotations=annotations, pod_labels={},
                                                     copy=copy_of(storage, region, storage.active)[0],
                                                     switch_after=switch_after)
        if replica is not None and dr_reader is not None:
            component = dr_store_component(region)
            arn = self._irsa_role(f"{name}-{dr_reader.name}-{component}", dr_reader, component,
                                  dr_reader.namespace or namespace, account.account_id, partition, replica.arn,
                                  storage.replica_kms_key_arn)
            roles[f"{dr_reader.name}/{component}"] = arn
            self.dr_access = BucketAccess(objstore_config=objstore_config(storage, region, "dr"),
                                          annotations={component: {"eks.amazonaws.com/role-arn": arn}}, pod_labels={},
                                          copy=replica_bucket_name(storage))
        self.outputs["roles"] = roles
        self.register_outputs(self.outputs)

    def _irsa_role(self, name: str, cluster: ClusterIdentity, component: str, namespace: str,
                   account_id: pulumi.Output[str], partition: pulumi.Output[str], bucket_arn: pulumi.Output[str],
                   kms_key_arn: str | None) -> pulumi.Output[str]:
        """The component's IRSA role with its bucket policy; its ARN (known in a first preview, after the role)."""
        trust = pulumi.Output.all(account_id, partition, cluster.oidc_issuer).apply(lambda v: json.dumps(
            irsa_trust_policy(f"arn:{v[1]}:iam::{v[0]}:oidc-provider/{v[2].removeprefix('https://').rstrip('/')}",
                              v[2], namespace, component), sort_keys=True))
        role = aws.iam.Role(name, name=cluster.identity_name(component, 64),
                            assume_role_policy=trust, tags={"thanos.io/component": component,
                                                            "thanos.io/access": role_of(component)},
                            opts=pulumi.ResourceOptions(parent=self))
        aws.iam.RolePolicy(name, role=role.name, policy=bucket_arn.apply(lambda arn: json.dumps(
            component_policy(role_of(component), arn, kms_key_arn), sort_keys=True)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role]))
        return pulumi.Output.all(partition, account_id, role.name).apply(lambda v: role_arn(*v))


def cloud_provider(region: RegionSpec, environment: str) -> aws.Provider:
    """The region's AWS provider: every resource it creates is tagged with the stack's environment."""
    return aws.Provider(f"aws-{region.name}", region=region.name, default_tags={
        "tags": {"app.kubernetes.io/part-of": "thanos", "thanos.io/environment": environment}})


def object_store(name: str, given: RegionStorage, opts: pulumi.ResourceOptions) -> AwsObjectStore:
    """The region's S3 object store (the backend table's constructor)."""
    storage = given.region.storage
    assert isinstance(storage, AwsStorage)
    return AwsObjectStore(name, AwsObjectStoreArgs(
        region=given.region.name, storage=storage, clusters=given.identities, namespace=given.stack.namespace,
        protect=given.stack.protect_data, provider=given.provider, dr_provider=given.dr_provider,
        dr_reader=given.dr_reader), opts)
