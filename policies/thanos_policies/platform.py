"""Storage safety, identity and secrets, container hardening."""

import json

from pulumi_policy import PolicyConfigSchema, EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from .workloads import (PROMETHEUS_CR, THANOS_RULER_CR, WORKLOAD_TYPES, Stack, Unknown, containers, deduplicated, fix,
                        flag, known, objstore_document, pod_spec, secret_text, seconds, thanos_containers,
                        workload_containers)

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
STATIC_KEYS = ("access_key", "secret_key", "service_account", "storage_account_key", "client_secret",
               "storage_connection_string")


def _by_bucket(resources, type_token, bucket_id):
    return [r for r in resources if r.resource_type == type_token and r.props.get("bucket") == bucket_id]


def validate_bucket_safety(args, report):
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


DR_RULE = "thanos-dr"


def validate_replicated(args, report):
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
    loses = PROTECTED_TYPES.get(args.resource_type)
    if loses and not args.opts.protect:
        report(f"{loses}: set protect (and retainOnDelete){fix('protect-data')}.")


def validate_no_wildcards(args, report):
    if args.resource_type not in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        return
    document = args.props.get("policy")
    document = json.loads(document) if isinstance(document, str) else document or {}
    for statement in document.get("Statement") or []:
        found = statement.get("Action") or []
        for action in [found] if isinstance(found, str) else found:
            if "*" in action:
                report(f"IAM action {action} is a wildcard: grant the exact actions.")


DELETE_ACTIONS = ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:*", "*")
GCS_DELETE_ROLES = ("roles/storage.objectUser", "roles/storage.objectAdmin", "roles/storage.admin")
GCS_WRITER_PERMISSIONS = {"storage.objects.create", "storage.objects.delete", "storage.objects.get",
                          "storage.objects.list"}
# GCS needs delete permission to overwrite an object: a block writer that cannot delete cannot replace a failed
# upload. So on GCS alone, writers may delete, through a role limited to exactly these object permissions.
GCS_WRITERS = ("prometheus", "ruler", "receive")
AZURE_DELETE_ROLES = ("ba92f5b4-2d11-453d-a403-e96b0029c9fe", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b")
AZURE_BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
MARKER = "-mark.json"
"""How Thanos' block markers end: the compactor deletes a block once its deletion-mark.json is old enough, so
whoever writes markers deletes blocks."""
WRITE_ACTIONS = ("s3:PutObject", "s3:*", "*")


def _actions(statement) -> list[str]:
    found = statement.get("Action") or []
    return [found] if isinstance(found, str) else list(found)


def _denies_markers(document) -> bool:
    """Whether an IAM policy denies writing objects whose key ends in -mark.json."""
    for statement in document.get("Statement") or []:
        resources = statement.get("Resource") or []
        resources = [resources] if isinstance(resources, str) else resources
        if statement.get("Effect") == "Deny" and set(_actions(statement)) & set(WRITE_ACTIONS) and \
                any(str(resource).endswith(MARKER) for resource in resources):
            return True
    return False


def _gcs_custom_roles(resources) -> dict[str, set[str]]:
    """`projects/<project>/roles/<id>` -> permissions of every custom role in the stack."""
    return {f"projects/{r.props.get('project')}/roles/{r.props.get('roleId')}": set(r.props.get("permissions") or [])
            for r in resources if r.resource_type == "gcp:projects/iAMCustomRole:IAMCustomRole"}


def validate_only_compactor_deletes(args, report):
    custom = _gcs_custom_roles(args.resources)
    roles = {}
    for r in args.resources:
        if r.resource_type == "aws:iam/role:Role":
            component = (r.props.get("tags") or {}).get("thanos.io/component")
            for key in (r.props.get("name"), known(lambda r=r: r.props.get("id"))):
                if key and not isinstance(key, Unknown):  # a new role's id is computed at apply; its name is known
                    roles[key] = component
    for r in args.resources:
        if r.resource_type == "aws:iam/rolePolicy:RolePolicy":
            component = roles.get(r.props.get("role"))
            document = r.props.get("policy")
            document = json.loads(document) if isinstance(document, str) else document or {}
            granted = [a for s in document.get("Statement") or [] if s.get("Effect") == "Allow" for a in _actions(s)]
            if component and component != "compactor" and any(a in DELETE_ACTIONS for a in granted):
                report(f"the {component} role may delete objects: only the compactor deletes.", r.urn)
            if component and component != "compactor" and set(granted) & set(WRITE_ACTIONS) \
                    and not _denies_markers(document):
                report(f"the {component} role may write block markers: a deletion-mark.json it writes makes the "
                       f"compactor delete the block (and the delete replicates to the DR copy); deny s3:PutObject on "
                       f"<bucket>/*{MARKER}.", r.urn)
        elif r.resource_type == "gcp:storage/bucketIAMMember:BucketIAMMember":
            member, role = str(r.props.get("member") or ""), str(r.props.get("role") or "")
            deletes = role in GCS_DELETE_ROLES or "storage.objects.delete" in custom.get(role, set())
            writer_role = role in custom and custom[role] <= GCS_WRITER_PERMISSIONS
            creates = "storage.objects.create" in custom.get(role, set()) or role in (
                "roles/storage.objectCreator", *GCS_DELETE_ROLES)
            condition = str((r.props.get("condition") or {}).get("expression") or "")
            if creates and "compactor" not in member and MARKER not in condition:
                report(f"{member} may create block markers: a deletion-mark.json it writes makes the compactor delete "
                       f"the block; add the condition !resource.name.endsWith(\"{MARKER}\") to the binding.", r.urn)
            if not deletes or "compactor" in member:
                continue
            if any(w in member for w in GCS_WRITERS) and writer_role:
                continue
            report(f"{member} gets {role}, which deletes objects: only the compactor deletes (on GCS, block writers "
                   "too, through a role of exactly object get, list, create and delete).", r.urn)
        elif r.resource_type == "azure-native:authorization:RoleAssignment":
            role = str(r.props.get("roleDefinitionId") or "")
            if role.rsplit("/", 1)[-1] in AZURE_DELETE_ROLES and "compactor" not in r.name:
                report(f"{r.name} gets a blob role that deletes: only the compactor deletes.", r.urn)
            writes = any(w in r.name for w in GCS_WRITERS) and role.rsplit("/", 1)[-1] != AZURE_BLOB_READER
            if writes and MARKER not in str(r.props.get("condition") or ""):
                report(f"{r.name} may write block markers: a deletion-mark.json it writes makes the compactor delete "
                       f"the block; add a condition refusing writes to blobs:path '*{MARKER}'.", r.urn)


def validate_objstore_secrecy(args, report):
    if args.resource_type == "kubernetes:core/v1:ConfigMap":
        for key in sorted(args.props.get("data") or {}):
            if objstore_document(secret_text(args.props, key, config_map=True)):
                report(f"ConfigMap key {key} holds an objstore config: keep it in a Secret.")
    if args.resource_type == "kubernetes:core/v1:Secret":
        keys = {*(args.props.get("stringData") or {}), *(args.props.get("data") or {})}
        for key in sorted(keys):
            document = objstore_document(secret_text(args.props, key))
            if document and document.get("type") in ("S3", "GCS", "AZURE"):
                config = document.get("config") or {}
                cloud = document["type"] != "S3" or "amazonaws.com" in str(config.get("endpoint", ""))
                if cloud and any(config.get(k) for k in STATIC_KEYS):
                    report(f"Secret key {key} holds static cloud credentials: use workload identity.")
    if args.resource_type in WORKLOAD_TYPES:
        for _, _, flags in thanos_containers(args.props):
            # $(VAR) from a Secret key (kube-thanos, prometheus-operator) is no inline config.
            if any(not value.startswith("$(") for value in flag(flags, "objstore.config")):
                report("the objstore config is passed inline as a flag: mount it from a Secret (--objstore.config-file).")


def _pinned(image: str) -> bool:
    tail = image.rsplit("/", 1)[-1]
    return "@sha256:" in image or (":" in tail and tail.rsplit(":", 1)[1] not in ("", "latest"))


def _non_root(container: dict, pod: dict) -> bool:
    ctx, pod_ctx = container.get("securityContext") or {}, pod.get("securityContext") or {}
    non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    return bool(non_root) or (user is not None and int(user) != 0)


def validate_hardening(args, report):
    if args.resource_type in (PROMETHEUS_CR, THANOS_RULER_CR):
        spec = args.props.get("spec") or {}
        image = ((spec.get("thanos") or {}) if args.resource_type == PROMETHEUS_CR else spec).get("image")
        if image and not _pinned(image):
            report(f"the Thanos image {image} is not pinned to a version.")
        elif image and args.get_config().get("requireDigests") and "@sha256:" not in image:
            report(f"the Thanos image {image} is pinned by tag only: a tag can be moved; pin it by digest"
                   f"{fix('image-digests')}.")
        return
    if args.resource_type not in WORKLOAD_TYPES or not any(True for _ in thanos_containers(args.props, init=True)):
        return  # only pods that run Thanos: other workloads of the stack are not this pack's to judge
    pod = pod_spec(args.props)
    thanos = {id(c) for c, _, _ in thanos_containers(args.props)}
    long_running = args.resource_type not in ("kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob")
    if not (pod.get("securityContext") or {}).get("runAsNonRoot") and not all(
            _non_root(c, pod) for c in containers(args.props, init=True)):
        report("the pod does not set runAsNonRoot.")
    init = {id(c) for c in pod.get("initContainers") or []}
    for c in containers(args.props, init=True):
        name, ctx = c.get("name"), c.get("securityContext") or {}
        kind = "init container" if id(c) in init else "container"
        image = c.get("image") or ""
        if not _pinned(image):
            report(f"{kind} {name} image {image} is not pinned to a version{fix('thanos.image')}.")
        elif args.get_config().get("requireDigests") and "@sha256:" not in image:
            report(f"{kind} {name} image {image} is pinned by tag only: a tag can be moved; pin it by digest"
                   f"{fix('image-digests')}.")
        if id(c) in init and not _non_root(c, pod):
            report(f"init container {name} runs as root.")
        if not ctx.get("readOnlyRootFilesystem") or ctx.get("allowPrivilegeEscalation") is not False:
            report(f"{kind} {name} needs readOnlyRootFilesystem and allowPrivilegeEscalation false.")
        if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
            report(f"{kind} {name} does not drop ALL capabilities.")
        resources = c.get("resources") or {}
        if not resources.get("requests") or not (resources.get("limits") or {}).get("memory"):
            report(f"{kind} {name} needs resource requests and a memory limit.")
        if long_running and id(c) in thanos and (not c.get("livenessProbe") or not c.get("readinessProbe")):
            report(f"container {name} needs liveness and readiness probes.")


def validate_one_version(args, report):
    tags = {}
    for r in args.resources:
        if r.resource_type in WORKLOAD_TYPES:
            for c, _, _ in thanos_containers(r.props):
                tags.setdefault(c.get("image", "").split("@", 1)[0].rsplit(":", 1)[-1], r.urn)
    if len(tags) > 1:
        report(f"the stack runs more than one Thanos version: {', '.join(sorted(tags))}{fix('thanos.image')}.")


def validate_workload_identity_scope(args, report):
    """GKE Workload Identity pools are per project: `serviceAccount:<pool>[ns/ksa]` is that ServiceAccount in every
    cluster of the project. Two Google service accounts bound to one such member: each cluster can act as both."""
    bound: dict[str, set] = {}
    for r in args.resources:
        if r.resource_type == "gcp:serviceaccount/iAMMember:IAMMember" and \
                r.props.get("role") == "roles/iam.workloadIdentityUser":
            member, account = r.props.get("member"), r.props.get("serviceAccountId")
            if isinstance(member, str) and isinstance(account, str):
                bound.setdefault(member, set()).add(account)
    for r in args.resources:
        if r.resource_type != "gcp:serviceaccount/iAMMember:IAMMember":
            continue
        accounts = bound.get(r.props.get("member")) or set()
        if len(accounts) > 1:
            report(f"{r.props.get('member')} may act as {len(accounts)} Google service accounts: a Workload "
                   "Identity pool spans its project, so that namespace and ServiceAccount in any of its clusters gets "
                   "every one of them. Give the clusters their own projects (workload-identity-pool) or namespaces.",
                   r.urn)


POLICIES = [
    StackValidationPolicy(name="thanos-storage-bucket-safety", enforcement_level=EnforcementLevel.MANDATORY,
                          description="Buckets are versioned, encrypted and closed to the public (S3, GCS, Azure); "
                                      "Thanos never keeps blocks in a local FILESYSTEM bucket.",
                          validate=deduplicated(validate_bucket_safety)),
    StackValidationPolicy(name="thanos-retention-lifecycle", enforcement_level=EnforcementLevel.MANDATORY,
                          description="Bucket lifecycle never expires current objects or freezes them unreadable.",
                          validate=deduplicated(validate_lifecycle)),
    StackValidationPolicy(name="thanos-storage-replicated", enforcement_level=EnforcementLevel.MANDATORY,
                          description="Every Thanos bucket is replicated to another region.",
                          validate=deduplicated(validate_replicated)),
    StackValidationPolicy(name="thanos-storage-dr-immutable", enforcement_level=EnforcementLevel.MANDATORY,
                          description="A DR copy that mirrors the source's deletes keeps every version for a while "
                                      "(S3 Object Lock), and deleted versions longer than the source.",
                          validate=deduplicated(validate_dr_immutable)),
    ResourceValidationPolicy(name="thanos-storage-protected", enforcement_level=EnforcementLevel.MANDATORY,
                             description="Buckets, storage accounts, containers and the settings that guard them are "
                                         "protected from deletion.",
                             validate=deduplicated(validate_protected)),
    ResourceValidationPolicy(name="thanos-identity-no-wildcards", enforcement_level=EnforcementLevel.MANDATORY,
                             description="IAM policies grant exact actions, never wildcards.",
                             validate=deduplicated(validate_no_wildcards)),
    StackValidationPolicy(name="thanos-identity-only-compactor-deletes", enforcement_level=EnforcementLevel.MANDATORY,
                          description="No identity but the compactor's may delete objects or write block markers "
                                      "(AWS, GCS, Azure).",
                          validate=deduplicated(validate_only_compactor_deletes)),
    StackValidationPolicy(name="thanos-identity-workload-identity-scope", enforcement_level=EnforcementLevel.ADVISORY,
                          description="A GKE Workload Identity member acts as one Google service account only.",
                          validate=deduplicated(validate_workload_identity_scope)),
    ResourceValidationPolicy(name="thanos-identity-objstore-secret", enforcement_level=EnforcementLevel.MANDATORY,
                             description="The objstore config lives only in a Secret and holds no static cloud keys.",
                             validate=deduplicated(validate_objstore_secrecy)),
    ResourceValidationPolicy(name="thanos-hardening-pods", enforcement_level=EnforcementLevel.MANDATORY,
                             description="Pinned images, non-root, read-only root, no escalation, resources, probes.",
                             validate=deduplicated(validate_hardening),
                             config_schema=PolicyConfigSchema(properties={
                                 "requireDigests": {"type": "boolean", "default": False}})),
    StackValidationPolicy(name="thanos-hardening-one-version", enforcement_level=EnforcementLevel.MANDATORY,
                          description="One Thanos version across the stack.", validate=deduplicated(validate_one_version)),
]
