"""Azure Blob storage and federated workload identities for one region: geo-redundant, private, object-replicated."""

import uuid
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azure_native as azure
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
    dr_store_component,
    role_of,
    subject,
)
from components.storage.protection import kept
from config.base import duration_seconds
from config.stack import RegionSpec, replica_bucket_name
from config.storage import AzureStorage
from config.thanos import RetentionSpec

PAUSED_PREFIX = "thanos-replication-paused/"
BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
_ROLE_NAMESPACE = uuid.UUID("0d7f7b0e-54a6-4c3a-9a57-1b4f4d2e8c21")

# The writer role: read and add blobs, never delete (no built-in role has exactly that).
WRITER_ACTIONS = ["Microsoft.Storage/storageAccounts/blobServices/containers/read"]
WRITER_DATA_ACTIONS = ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
                       "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
                       "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action"]
# An ABAC condition on the writers' role assignment: writes and adds only to blobs that are not block markers.
NO_MARKERS_CONDITION = (
    "((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'}) AND "
    "!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'})) OR "
    f"(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringNotLike '*{MARKER_SUFFIX}'))")
# And never Set Blob Tier (the write action's suboperation Blob.Write.Tier; the expression matches no blob): moving a
# blob to Archive changes its current version in place (no earlier version to restore from) and Thanos cannot read it
# until a rehydration of hours. Put Blob with an x-ms-access-tier header, or with a customer-provided key, has no
# request attribute to condition on: it writes a new version, so the previous one stays restorable (docs/dr.md).
NO_TIER_CHANGE_CONDITION = (
    "((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'} AND "
    "SubOperationMatches{'Blob.Write.Tier'})) OR "
    "(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringNotLike '*'))")
WRITER_CONDITION = f"{NO_MARKERS_CONDITION} AND {NO_TIER_CHANGE_CONDITION}"


def stable_guid(*parts: str) -> str:
    """A deterministic GUID (role definition and assignment names must be GUIDs)."""
    return str(uuid.uuid5(_ROLE_NAMESPACE, "/".join(parts)))


def account_id(subscription: str, resource_group: str, account: str) -> str:
    """A storage account's ARM id from its name (known before the account exists)."""
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Storage/storageAccounts/{account}"


def role_definition_id(subscription: str, guid: str) -> str:
    """A role definition's id as role assignments name it (built-in and custom roles alike)."""
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def whole_days(duration: str) -> int:
    """Whole days, at least 1."""
    return max(1, int(duration_seconds(duration) // 86400))


def lifecycle_policy(storage: AzureStorage, expire_days: int | None = None) -> dict[str, Any]:
    """Delete only previous versions after the configured age; current blobs are the compactor's to delete. On a DR
    copy (`expire_days`) also current blobs after that many days since their last change: object replication
    copies no deletes, so without it the copy keeps every block the compactor ever wrote."""
    rules = [{"name": "expire-noncurrent-versions", "type": "Lifecycle", "enabled": True, "definition": {
        "actions": {"version": {"delete": {"days_after_creation_greater_than": whole_days(storage.soft_delete)}}},
        "filters": {"blob_types": ["blockBlob"]}}}]
    if expire_days:
        rules.append({"name": "expire-copied-blocks", "type": "Lifecycle", "enabled": True, "definition": {
            "actions": {"base_blob": {"delete": {"days_after_modification_greater_than": expire_days}}},
            "filters": {"blob_types": ["blockBlob"]}}})
    return {"rules": rules}


def copy_expiry_days(retention: RetentionSpec, delete_delay: str) -> int | None:
    """Days after which a DR copy drops a block: the longest retention of any resolution plus the compactor's
    deletion delay, so the copy never loses a block before the source does (None: some resolution is kept forever).
    A block's blobs are never changed after upload, so their age is the block's."""
    kept = [duration_seconds(d) for d in (retention.raw, retention.res_5m, retention.res_1h)]
    if 0 in kept:
        return None
    return int((max(kept) + duration_seconds(delete_delay)) // 86400) + 1


def objstore_config(storage: AzureStorage, account: str | None = None) -> str:
    """The objstore YAML: account (the primary, or the DR copy's) and container; credentials from workload identity
    (no account key)."""
    return yaml.safe_dump({"type": "AZURE", "config": {"storage_account": account or storage.account,
                                                       "container": storage.container}}, sort_keys=True)


@dataclass(frozen=True)
class AzureAccountArgs:
    """One storage account of a region: the primary or its DR copy."""

    account_name: str
    """The account's name."""
    location: str
    """The account's Azure location."""
    storage: AzureStorage
    """The region's storage spec (resource group, SKU, container, soft delete)."""
    protect: bool
    """Protect the account and its settings, and retain them on delete (the stack's protect-data)."""
    expire_days: int | None = None
    """On a DR copy: delete current blobs this many days after their last change; default none (never)."""


class AzureAccount(pulumi.ComponentResource):
    """A hardened StorageV2 account with versioning, change feed, soft delete, lifecycle and a private container."""

    account: azure.storage.StorageAccount
    """The account."""
    container: azure.storage.BlobContainer
    """The container Thanos uses."""
    blob_service: azure.storage.BlobServiceProperties
    """Versioning and change feed (object replication needs both)."""

    def __init__(self, name: str, args: AzureAccountArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:azure:StorageAccount", name, {}, opts)
        account_name, storage, protect = args.account_name, args.storage, args.protect
        child = kept(self, protect)
        rg = storage.resource_group
        self.account = azure.storage.StorageAccount(
            name, account_name=account_name, resource_group_name=rg, location=args.location, kind="StorageV2",
            sku={"name": storage.sku}, access_tier="Hot", allow_blob_public_access=False,
            allow_shared_key_access=False, minimum_tls_version="TLS1_2", enable_https_traffic_only=True,
            allow_cross_tenant_replication=False, public_network_access=storage.public_network_access,
            encryption={"key_source": "Microsoft.Storage", "require_infrastructure_encryption": True,
                        "services": {"blob": {"enabled": True, "key_type": "Account"}}},
            tags={"thanos.io/bucket": account_name}, opts=child)
        # The account's settings name it by its input (known in a first preview) and wait for it.
        child = kept(self, protect, depends_on=[self.account])
        retention = {"enabled": True, "days": whole_days(storage.soft_delete)}
        self.blob_service = azure.storage.BlobServiceProperties(
            f"{name}-blob-service", account_name=account_name, resource_group_name=rg,
            blob_services_name="default", is_versioning_enabled=True, change_feed={"enabled": True},
            delete_retention_policy=retention, container_delete_retention_policy=retention, opts=child)
        self.container = azure.storage.BlobContainer(
            f"{name}-container", account_name=account_name, resource_group_name=rg,
            container_name=storage.container, public_access="None", opts=child)
        azure.storage.ManagementPolicy(f"{name}-lifecycle", account_name=account_name, resource_group_name=rg,
                                       management_policy_name="default", policy=lifecycle_policy(storage, args.expire_days),
                                       opts=kept(self, protect, depends_on=[self.account, self.blob_service]))
        self.register_outputs({"account": self.account.name, "id": self.account.id})


@dataclass(frozen=True)
class AzureObjectStoreArgs:
    """A region's Azure Blob storage and who uses it."""

    location: str
    """The primary account's Azure location."""
    storage: AzureStorage
    """The region's storage spec."""
    clusters: list[ClusterIdentity]
    """Each cluster of the region, whose components get a federated identity on the container in use."""
    namespace: str
    """The stack's namespace (a cluster's ServiceAccounts live there unless it names its own)."""
    protect: bool
    """Protect the accounts, their settings and the replication, and retain them on delete (the stack's protect-data)."""
    provider: pulumi.ProviderResource
    """The region's Azure provider."""
    dr_location: str | None = None
    """The DR account's Azure location; default none (no DR copy)."""
    dr_provider: pulumi.ProviderResource | None = None
    """The Azure provider of the DR account's location; default none (no DR copy)."""
    dr_reader: ClusterIdentity | None = None
    """The cluster whose read-only store gateway reads the DR account; default none."""
    copy_expiry: int | None = None
    """Days after which the DR account drops a block (`copy_expiry_days`); default none (never)."""


class AzureObjectStore(pulumi.ComponentResource):
    """The region's account, object replication to a DR account, and a federated identity per component."""

    access: dict[str, BucketAccess]
    """Bucket access by cluster name."""
    outputs: dict[str, Any]
    """What the stack exports for this region."""
    dr_access: BucketAccess | None
    """Read-only access to the DR account for the DR cluster's store gateway (None without replication)."""

    def __init__(self, name: str, args: AzureObjectStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:azure:ObjectStore", name, {}, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(providers=[args.provider])))
        self._name, self._args, storage = name, args, args.storage
        # Invokes go to the default provider unless told otherwise, and every stack disables default providers.
        client = azure.authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(provider=args.provider))
        self._subscription = client.subscription_id
        primary = AzureAccount(f"{name}-account", AzureAccountArgs(storage.account, args.location, storage, args.protect),
                               pulumi.ResourceOptions(parent=self))
        self.outputs = {"account": primary.account.name, "accountId": primary.account.id,
                        "container": primary.container.name}
        replica, switch_after = self._replicated_to_dr(primary) if storage.replication and args.dr_provider \
            and args.dr_location else (None, [])
        active = replica if storage.active == "dr" and replica is not None else primary
        role_ids = self._role_ids(primary, replica)
        identities: dict[str, Any] = {}
        self.access = self._cluster_access(active, replica, role_ids, switch_after, identities)
        self.dr_access = self._dr_access(replica, role_ids, identities)
        self.outputs["identities"] = identities
        self.register_outputs(self.outputs)

    def _replicated_to_dr(self, primary: AzureAccount) -> tuple[AzureAccount, list[pulumi.Resource]]:
        """The DR account and the object replication into it; returns the account and what a switch waits for."""
        name, args, storage, rg = self._name, self._args, self._args.storage, self._args.storage.resource_group
        assert storage.replication is not None and args.dr_location is not None and args.dr_provider is not None
        replica = AzureAccount(f"{name}-dr-account", AzureAccountArgs(
            replica_bucket_name(storage), args.dr_location, storage, args.protect, expire_days=args.copy_expiry),
            pulumi.ResourceOptions(parent=self, providers=[args.dr_provider]))
        # Object replication cannot be disabled, only deleted (and deletes run last): while the region runs on its
        # DR copy, or replication is paused, the rule matches a prefix no Thanos object has (an update, in order).
        running = storage.active == "primary" and not storage.replication.paused
        rule = {"source_container": storage.container, "destination_container": storage.container,
                "filters": {"prefix_match": [] if running else [PAUSED_PREFIX]}}
        # Azure wants the policy on the destination first; the source then repeats its generated ids.
        # Both accounts are in the stack's resource group and the providers' one subscription (the DR provider
        # differs only in its location), so their ids are known from their names.
        source_id = self._subscription.apply(lambda s: account_id(s, rg, storage.account))
        destination_id = self._subscription.apply(lambda s: account_id(s, rg, replica_bucket_name(storage)))
        destination_policy = azure.storage.ObjectReplicationPolicy(
            f"{name}-replication-destination", account_name=replica_bucket_name(storage), resource_group_name=rg,
            object_replication_policy_id="default", source_account=source_id,
            destination_account=destination_id, rules=[rule],
            opts=kept(self, args.protect, provider=args.dr_provider, depends_on=[
                primary.blob_service, replica.blob_service, primary.container, replica.container]))
        source_policy = azure.storage.ObjectReplicationPolicy(
            f"{name}-replication-source", account_name=storage.account, resource_group_name=rg,
            object_replication_policy_id=destination_policy.policy_id, source_account=source_id,
            destination_account=destination_id,
            rules=destination_policy.rules.apply(lambda rules: [dict(rule, rule_id=rules[0]["rule_id"]
                                                                     if isinstance(rules[0], dict)
                                                                     else rules[0].rule_id)]),
            opts=kept(self, args.protect))
        self.outputs.update(drAccount=replica.account.name, drAccountId=replica.account.id)
        return replica, [destination_policy, source_policy]

    def _role_ids(self, primary: AzureAccount, replica: AzureAccount | None) -> dict[str, pulumi.Output[str]]:
        """The role definition id of each Thanos role: the built-in reader and deleter, and a writer of our own
        (read and add, no delete)."""
        storage, subscription = self._args.storage, self._subscription
        writer_role = azure.authorization.RoleDefinition(
            f"{self._name}-blob-writer", role_definition_id=stable_guid(storage.account, "writer"),
            role_name=f"Thanos blob writer ({storage.account})",
            description="Read and add blobs in the Thanos container; no delete.",
            scope=primary.account.id,
            assignable_scopes=[primary.account.id, *([replica.account.id] if replica is not None else [])],
            permissions=[{"actions": WRITER_ACTIONS, "data_actions": WRITER_DATA_ACTIONS}],
            opts=pulumi.ResourceOptions(parent=self))
        return {
            READER: subscription.apply(lambda s: role_definition_id(s, BLOB_DATA_READER)),
            # From its known guid, after the role (its urn carries the dependency): known in a first preview.
            WRITER: pulumi.Output.all(subscription, writer_role.urn).apply(
                lambda v: role_definition_id(v[0], stable_guid(storage.account, "writer"))),
            DELETER: subscription.apply(lambda s: role_definition_id(s, BLOB_DATA_CONTRIBUTOR)),
        }

    def _cluster_access(self, active: AzureAccount, replica: AzureAccount | None, role_ids: dict[str, pulumi.Output[str]],
                        switch_after: list[pulumi.Resource], identities: dict[str, Any]) -> dict[str, BucketAccess]:
        """Each cluster's access to the active account: an identity per component with its role on the container."""
        name, args, storage = self._name, self._args, self._args.storage
        access = {}
        for cluster in args.clusters:
            annotations: dict[str, dict[str, pulumi.Input[str]]] = {}
            for component in cluster.components:
                client_id = self._identity(f"{name}-{cluster.name}-{component}", cluster, component, args.namespace,
                                           storage.resource_group, args.location, active.container.id,
                                           role_ids[COMPONENT_ROLES[component]], storage.account)
                annotations[component] = {"azure.workload.identity/client-id": client_id}
                identities[f"{cluster.name}/{component}"] = client_id
            copy = replica_bucket_name(storage) if active is replica else storage.account
            access[cluster.name] = BucketAccess(objstore_config=objstore_config(storage, copy), annotations=annotations,
                                                pod_labels={"azure.workload.identity/use": "true"},
                                                copy=copy, switch_after=switch_after)
        return access

    def _dr_access(self, replica: AzureAccount | None, role_ids: dict[str, pulumi.Output[str]],
                   identities: dict[str, Any]) -> BucketAccess | None:
        """Read-only access to the DR account for the DR cluster's store gateway."""
        args, storage, dr_reader = self._args, self._args.storage, self._args.dr_reader
        if replica is None or dr_reader is None or not args.dr_location:
            return None
        component = dr_store_component(args.location)
        client_id = self._identity(f"{self._name}-{dr_reader.name}-{component}", dr_reader, component, args.namespace,
                                   storage.resource_group, args.dr_location, replica.container.id, role_ids[READER],
                                   storage.account)
        identities[f"{dr_reader.name}/{component}"] = client_id
        return BucketAccess(objstore_config=objstore_config(storage, replica_bucket_name(storage)),
                            annotations={component: {"azure.workload.identity/client-id": client_id}},
                            pod_labels={"azure.workload.identity/use": "true"}, copy=replica_bucket_name(storage))

    def _identity(self, resource: str, cluster: ClusterIdentity, component: str, namespace: str, rg: str,
                  location: str, scope: Any, role_definition_id: Any, account: str) -> pulumi.Output[str]:
        """A user-assigned identity federated to one ServiceAccount, with one role on one container."""
        identity = azure.managedidentity.UserAssignedIdentity(
            resource, resource_name_=cluster.identity_name(component, 128), resource_group_name=rg,
            location=location, opts=pulumi.ResourceOptions(parent=self))
        azure.managedidentity.FederatedIdentityCredential(
            resource, resource_name_=identity.name, resource_group_name=rg,
            federated_identity_credential_resource_name=f"{cluster.name}-{component}",
            issuer=cluster.oidc_issuer, subject=subject(cluster.namespace or namespace, component),
            audiences=["api://AzureADTokenExchange"], opts=pulumi.ResourceOptions(parent=self))
        writer = role_of(component) == WRITER
        azure.authorization.RoleAssignment(
            resource, role_assignment_name=stable_guid(account, cluster.name, component),
            principal_id=identity.principal_id, principal_type="ServicePrincipal", scope=scope,
            role_definition_id=role_definition_id, condition=WRITER_CONDITION if writer else None,
            condition_version="2.0" if writer else None, opts=pulumi.ResourceOptions(parent=self))
        return identity.client_id


def cloud_provider(region: RegionSpec, environment: str) -> azure.Provider:
    """The region's Azure provider."""
    return azure.Provider(f"azure-{region.name}", location=region.name)


def object_store(name: str, given: RegionStorage, opts: pulumi.ResourceOptions) -> AzureObjectStore:
    """The region's Azure Blob object store (the backend table's constructor)."""
    storage, compactor = given.region.storage, given.stack.thanos.compactor
    assert isinstance(storage, AzureStorage)
    return AzureObjectStore(name, AzureObjectStoreArgs(
        location=given.region.name, storage=storage, clusters=given.identities, namespace=given.stack.namespace,
        protect=given.stack.protect_data, provider=given.provider,
        dr_location=storage.replication.destination if storage.replication else None, dr_provider=given.dr_provider,
        dr_reader=given.dr_reader, copy_expiry=copy_expiry_days(compactor.retention, compactor.delete_delay)), opts)
