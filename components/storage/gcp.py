"""GCS object storage and Workload Identity for one region: dual-region with turbo replication, private, versioned."""

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp
import yaml

from components.storage.backend import RegionStorage
from components.storage.identity import (
    COMPONENT_ROLES,
    DELETER,
    MARKER_SUFFIX,
    READER,
    WRITER,
    BucketAccess,
    ClusterIdentity,
    service_account,
)
from components.storage.protection import kept
from config.base import duration_seconds
from config.stack import RegionSpec
from config.storage import GcpStorage

# Bucket-scoped roles. GCS needs delete permission to overwrite an object, so a writer holding only objectCreator
# can neither clean up nor re-upload a block after a failed upload: the block is lost once local retention passes.
# Writers therefore get a custom role with exactly the object permissions an upload needs (on GCS only, writers may
# delete); readers only view; the compactor gets objectUser.
WRITER_PERMISSIONS = ["storage.objects.create", "storage.objects.delete", "storage.objects.get",
                      "storage.objects.list"]
NO_MARKERS = {"title": "no-block-markers", "description": "Writers never create or delete a Thanos block marker "
              "(a deletion mark makes the compactor delete the block)",
              "expression": f'!resource.name.endsWith("{MARKER_SUFFIX}")'}
"""The IAM condition on a writer's binding (resource.name is `projects/_/buckets/<bucket>/objects/<object>`, or the
bucket's own name for a list, which passes)."""
READER_ROLE = "roles/storage.objectViewer"
DELETER_ROLE = "roles/storage.objectUser"


def writer_role_id(bucket: str) -> str:
    """The custom role id of a bucket's writers (letters, digits, `_` and `.`; at most 64 characters)."""
    return "thanosWriter_" + bucket.replace("-", "_")[:51]


def service_account_email(account_id: str, project: str) -> str:
    """A Google service account's e-mail from its id (known before the account exists); a domain-scoped project
    (`example.com:proj`) puts its domain after the name: `id@proj.example.com.iam.gserviceaccount.com`."""
    domain, _, name = project.rpartition(":")
    return f"{account_id}@{name}.{domain}.iam.gserviceaccount.com" if domain else \
        f"{account_id}@{project}.iam.gserviceaccount.com"


def workload_identity_member(pool: str, namespace: str, component: str) -> str:
    """The one Kubernetes ServiceAccount (of the cluster's Workload Identity pool) allowed to act as the Google
    service account."""
    return f"serviceAccount:{pool}[{namespace}/{service_account(component)}]"


def lifecycle_rules(storage: GcpStorage) -> list[dict[str, Any]]:
    """Never delete or re-class a live object: only noncurrent versions and abandoned uploads are removed."""
    return [
        {"action": {"type": "Delete"},
         "condition": {"days_since_noncurrent_time": max(1, int(duration_seconds(storage.noncurrent_version_expiration)
                                                                 // 86400)), "with_state": "ARCHIVED"}},
        {"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": 1}},
    ]


def objstore_config(storage: GcpStorage) -> str:
    """The objstore YAML: bucket only; credentials come from Workload Identity (no service account key)."""
    return yaml.safe_dump({"type": "GCS", "config": {"bucket": storage.bucket}}, sort_keys=True)


@dataclass(frozen=True)
class GcpObjectStoreArgs:
    """A region's GCS storage and who uses it."""

    storage: GcpStorage
    """The region's storage spec."""
    clusters: list[ClusterIdentity]
    """Each cluster of the region, whose components get a Google service account on the bucket."""
    namespace: str
    """The stack's namespace (a cluster's ServiceAccounts live there unless it names its own)."""
    protect: bool
    """Protect the bucket, the writer role and the bucket bindings, and retain them on delete (the stack's
    protect-data)."""
    provider: pulumi.ProviderResource
    """The region's GCP provider."""


class GcpObjectStore(pulumi.ComponentResource):
    """The region's GCS bucket and a Google service account per component bound to exactly one Kubernetes SA."""

    access: dict[str, BucketAccess]
    """Bucket access by cluster name."""
    outputs: dict[str, Any]
    """What the stack exports for this region."""
    dr_access: BucketAccess | None = None
    """Always None: the dual-region bucket is its own DR copy, no store gateway reads a second one."""

    def __init__(self, name: str, args: GcpObjectStoreArgs, opts: pulumi.ResourceOptions | None = None):
        storage, namespace, protect = args.storage, args.namespace, args.protect
        super().__init__("thanos:gcp:ObjectStore", name, {}, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(providers=[args.provider])))
        placement = {"data_locations": list(storage.dual_region)} if storage.dual_region else None
        bucket = gcp.storage.Bucket(
            f"{name}-bucket", name=storage.bucket, project=storage.project, location=storage.location,
            custom_placement_config=placement,
            rpo="ASYNC_TURBO" if storage.dual_region and storage.turbo_replication else None,
            storage_class="STANDARD", versioning={"enabled": True}, uniform_bucket_level_access=True,
            public_access_prevention="enforced", force_destroy=False,
            soft_delete_policy={"retention_duration_seconds": int(duration_seconds(storage.soft_delete))},
            lifecycle_rules=lifecycle_rules(storage), labels={"thanos-io-bucket": storage.bucket},
            # No customer-supplied keys: a writer (who may overwrite) could otherwise rewrite a block under a key only
            # it holds. Another storage class needs no such rule: every GCS class stays instantly readable.
            encryption={"customer_supplied_encryption_enforcement_config": {"restriction_mode": "FullyRestricted"}},
            opts=kept(self, protect))
        self.outputs = {"bucket": bucket.name, "bucketUrl": bucket.url}
        writer_role = gcp.projects.IAMCustomRole(
            f"{name}-writer-role", project=storage.project, role_id=writer_role_id(storage.bucket),
            title=f"Thanos block writer ({storage.bucket})", permissions=WRITER_PERMISSIONS, stage="GA",
            description="Upload Thanos blocks and replace a failed upload: object get, list, create and delete.",
            # Kept: a deleted custom role's id stays taken for up to 37 days, so the next `pulumi up` could not create it.
            opts=kept(self, protect))
        # Bindings name the bucket, the role and the account by what is known before they exist (a first preview
        # judges them) and wait for them.
        roles = {READER: [("objectViewer", READER_ROLE)],
                 WRITER: [("writer", f"projects/{storage.project}/roles/{writer_role_id(storage.bucket)}")],
                 DELETER: [("objectUser", DELETER_ROLE)]}
        self.access = {}
        accounts: dict[str, Any] = {}
        for cluster in args.clusters:
            annotations = {}
            for component in cluster.components:
                account_id = cluster.identity_name(component, 30)
                email = service_account_email(account_id, storage.project)
                account = gcp.serviceaccount.Account(
                    f"{name}-{cluster.name}-{component}", account_id=account_id,
                    project=storage.project, display_name=f"Thanos {component} in {cluster.name}",
                    opts=pulumi.ResourceOptions(parent=self))
                gcp.serviceaccount.IAMMember(
                    f"{name}-{cluster.name}-{component}-workload-identity",
                    service_account_id=f"projects/{storage.project}/serviceAccounts/{email}",
                    role="roles/iam.workloadIdentityUser",
                    member=workload_identity_member(cluster.workload_identity_pool or f"{storage.project}.svc.id.goog",
                                                    cluster.namespace or namespace, component),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[account]))
                for suffix, role in roles[COMPONENT_ROLES[component]]:
                    gcp.storage.BucketIAMMember(
                        f"{name}-{cluster.name}-{component}-{suffix}", bucket=storage.bucket, role=role,
                        member=f"serviceAccount:{email}",
                        condition=NO_MARKERS if COMPONENT_ROLES[component] == WRITER else None,
                        opts=kept(self, protect, depends_on=[bucket, writer_role, account]))
                annotations[component] = {"iam.gke.io/gcp-service-account": account.email}
                accounts[f"{cluster.name}/{component}"] = account.email
            self.access[cluster.name] = BucketAccess(objstore_config=objstore_config(storage),
                                                     annotations=annotations, pod_labels={})
        self.outputs["serviceAccounts"] = accounts
        self.register_outputs(self.outputs)


def cloud_provider(region: RegionSpec, environment: str) -> gcp.Provider:
    """The region's GCP provider, in the bucket's project: every resource it creates is labelled with the environment."""
    assert isinstance(region.storage, GcpStorage)
    return gcp.Provider(f"gcp-{region.name}", project=region.storage.project, region=region.name,
                        default_labels={"thanos-io-environment": environment})


def object_store(name: str, given: RegionStorage, opts: pulumi.ResourceOptions) -> GcpObjectStore:
    """The region's GCS object store (the backend table's constructor)."""
    storage = given.region.storage
    assert isinstance(storage, GcpStorage)
    return GcpObjectStore(name, GcpObjectStoreArgs(
        storage=storage, clusters=given.identities, namespace=given.stack.namespace, protect=given.stack.protect_data,
        provider=given.provider), opts)
