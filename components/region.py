"""A region: one explicit cloud provider, its object store (with DR copy), and each of its clusters."""

from dataclasses import replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import ThanosCluster, ThanosClusterArgs
from components.global_view.certificates import StackAuthority, StackAuthorityArgs
from components.operations.dr import DrStore, DrStoreArgs, replication_objects
from components.global_view.view import deploy_global_view
from components.platform.kube import ClusterContext, register
from components.images import pin_image_digests
from components.renames import keep_state_across_renames
from components.storage.identity import BucketAccess, ClusterIdentity, components_in, dr_store_component
from config.stack import ClusterSpec, RegionSpec, StackConfig, dr_cluster_of, replica_bucket_name


def cloud_provider(region: RegionSpec, environment: str) -> pulumi.ProviderResource | None:
    """The one explicit provider of a region's cloud, imported only for the clouds a stack uses."""
    storage = region.storage
    if storage.provider == "aws":
        import pulumi_aws as aws

        return aws.Provider(f"aws-{region.name}", region=region.name, default_tags={
            "tags": {"app.kubernetes.io/part-of": "thanos", "thanos.io/environment": environment}})
    if storage.provider == "gcp":
        import pulumi_gcp as gcp

        return gcp.Provider(f"gcp-{region.name}", project=storage.project, region=region.name,
                            default_labels={"thanos-io-environment": environment})
    if storage.provider == "azure":
        import pulumi_azure_native as azure

        return azure.Provider(f"azure-{region.name}", location=region.name)
    return None


class StackReferences:
    """One StackReference per referenced cluster stack, however many clusters read it."""

    def __init__(self) -> None:
        self._by_name: dict[str, pulumi.StackReference] = {}

    def output(self, stack: str, name: str) -> pulumi.Output[Any]:
        """A required output of `stack`."""
        if stack not in self._by_name:
            self._by_name[stack] = pulumi.StackReference(stack)
        return self._by_name[stack].require_output(name)


def kubernetes_provider(cluster: ClusterSpec, namespace: str, refs: StackReferences) -> k8s.Provider:
    """The cluster's provider: a kubeconfig context, or the kubeconfig exported by the cluster's stack."""
    access = cluster.kubernetes
    kubeconfig = refs.output(access.stack, access.kubeconfig_output) if access.stack else None
    return k8s.Provider(f"k8s-{cluster.name}", context=access.context, kubeconfig=kubeconfig, namespace=namespace,
                        enable_server_side_apply=True, delete_unreachable=False,
                        # Secrets and ConfigMaps change in place: a replace deletes a named one before creating it
                        # again, so pods starting in between find it missing.
                        enable_secret_mutable=True, enable_config_map_mutable=True)


def oidc_issuer(cluster: ClusterSpec, refs: StackReferences) -> pulumi.Input[str] | None:
    """The cluster's OIDC issuer URL, from config or from the cluster stack."""
    if cluster.oidc_issuer:
        return cluster.oidc_issuer
    if cluster.issuer_from_stack:
        return refs.output(cluster.kubernetes.stack, cluster.kubernetes.oidc_issuer_output)
    return None


def dr_reader(region: RegionSpec, stack: StackConfig, refs: StackReferences) -> ClusterIdentity | None:
    """The identity of the read-only store gateway on the region's DR copy, in the DR cluster."""
    name = dr_cluster_of(stack, region)
    if name is None:
        return None
    cluster = next(c for r in stack.regions for c in r.clusters if c.name == name)
    return ClusterIdentity(name, oidc_issuer(cluster, refs), [dr_store_component(region.name)],
                           cluster.workload_identity_pool, stack.namespace_of(cluster), stack.environment,
                           cluster.created_as)


def object_store(name: str, region: RegionSpec, stack: StackConfig, identities: list[ClusterIdentity],
                 provider: pulumi.ProviderResource | None, providers: dict[str, Any], parent: pulumi.Resource,
                 reader: ClusterIdentity | None = None) -> Any:
    """The cloud backend of the region's storage (None for in-cluster storage, which lives in its cluster)."""
    storage = region.storage
    opts = pulumi.ResourceOptions(parent=parent)
    destination = getattr(storage, "replication", None) and storage.replication.destination
    if storage.provider == "aws":
        from components.storage.aws import AwsObjectStore

        return AwsObjectStore(f"{name}-objectstore", region.name, storage, identities, stack.namespace,
                              stack.protect_data, provider, providers.get(destination), opts, reader)
    if storage.provider == "gcp":
        from components.storage.gcp import GcpObjectStore

        return GcpObjectStore(f"{name}-objectstore", storage, identities, stack.namespace, stack.protect_data,
                              provider, opts)
    if storage.provider == "azure":
        from components.storage.azure import AzureObjectStore, copy_expiry_days

        compactor = stack.thanos.compactor
        return AzureObjectStore(f"{name}-objectstore", region.name, storage, destination, identities,
                                stack.namespace, stack.protect_data, provider, providers.get(destination), opts, reader,
                                copy_expiry_days(compactor.retention, compactor.delete_delay))
    return None


class ThanosRegion(pulumi.ComponentResource):
    """A region's object store and clusters."""

    outputs: dict[str, Any]
    """Bucket, identities and cluster endpoints of the region."""

    clusters: dict[str, ThanosCluster]
    """The region's clusters by name."""
    kubernetes: dict[str, k8s.Provider]
    """Each cluster's Kubernetes provider by name."""

    def __init__(self, name: str, region: RegionSpec, stack: StackConfig, providers: dict[str, Any],
                 refs: StackReferences, authority: StackAuthority | None, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:index:Region", name, {}, opts)
        thanos = stack.thanos
        compactor_cluster = region.compactor_cluster_name
        identities = [ClusterIdentity(c.name, oidc_issuer(c, refs), components_in(
            c.name == compactor_cluster, thanos.receive.enabled, thanos.bucket_web.enabled), c.workload_identity_pool,
            c.namespace, stack.environment, c.created_as) for c in region.clusters]
        store = object_store(name, region, stack, identities, providers.get(region.name), providers, self,
                             dr_reader(region, stack, refs))
        self.store = store
        self.outputs = {"storage": store.outputs if store else {"provider": "in-cluster"}, "clusters": {}}
        self.clusters, self.kubernetes, self.contexts = {}, {}, {}
        for cluster in region.clusters:
            namespace = stack.namespace_of(cluster)
            ctx = ClusterContext(cluster=cluster.name, region=region.name, namespace=namespace, instance=cluster.created_as,
                                 cloud=region.storage.provider,
                                 image=thanos.image, zones=tuple(cluster.zones), zone_spread=thanos.zone_spread,
                                 node_spread=thanos.node_spread)
            provider = kubernetes_provider(cluster, namespace, refs)
            in_cluster = region.storage if region.storage.provider == "in-cluster" else None
            if store is not None and store.access[cluster.name].copy and getattr(region.storage, "replication", None):
                ctx = replace(ctx, copy=store.access[cluster.name].copy)
            self.contexts[cluster.name] = ctx
            built = ThanosCluster(cluster.name, ThanosClusterArgs(
                ctx, stack, provider, cluster.name == compactor_cluster, region.storage.provider,
                access=store.access[cluster.name] if store else None, in_cluster=in_cluster, authority=authority),
                pulumi.ResourceOptions(parent=self))
            self.outputs["clusters"][cluster.name] = built.outputs
            self.clusters[cluster.name], self.kubernetes[cluster.name] = built, provider
        self.register_outputs(self.outputs)


def in_cluster_copy(stack: StackConfig, region: RegionSpec,
                    regions: dict[str, ThanosRegion]) -> tuple[BucketAccess, list[pulumi.Resource]]:
    """Replicate an in-cluster bucket into `<bucket>-dr` on the destination region's server (a single-run CronJob in
    the source namespace, as users scoped to the two buckets); returns the access to that copy for its store gateway
    and maintenance jobs (a user of the copy's own), and the Jobs making that user."""
    import pulumi_random as random

    from components.storage.in_cluster import copy_user, copy_user_objects, objstore_config

    storage, source = region.storage, regions[region.name]
    target = regions[storage.replication.destination]
    source_name, target_name = region.clusters[0].name, dr_cluster_of(stack, region)
    source_cluster, target_ctx, target_cluster = source.clusters[source_name], target.contexts[target_name], \
        target.clusters[target_name]
    provider = random.Provider(f"{source_name}-replicate-random", opts=pulumi.ResourceOptions(parent=source_cluster))
    password = random.RandomPassword(f"{source_name}-replicate-password", length=32, special=False,
                                     opts=pulumi.ResourceOptions(parent=source_cluster, provider=provider)).result
    in_source, in_target = replication_objects(source.contexts[source_name], target_ctx, storage,
                                               pulumi.Output.secret(password))
    register(in_source, f"{source_name}-replicate", source_cluster, source_cluster.ready)
    register(in_target, f"{target_name}-replicate-from-{source_name}", target_cluster, target_cluster.ready)
    copy = storage.model_copy(update={"bucket": replica_bucket_name(storage)})
    copy_password = pulumi.Output.secret(random.RandomPassword(
        f"{target_name}-copy-{region.name}-password", length=32, special=False,
        opts=pulumi.ResourceOptions(parent=target_cluster, provider=provider)).result)
    user = register(copy_user_objects(target_ctx, region.name, copy.bucket, copy_password),
                    f"{target_name}-copy-{region.name}-user", target_cluster, target_cluster.ready)
    config = copy_password.apply(lambda p: objstore_config(copy, target_ctx.namespace, copy_user(region.name), p))
    return BucketAccess(objstore_config=config, annotations={}, pod_labels={}, copy=copy.bucket), \
        [r for key, r in user.items() if key.startswith("Job/")]


def deploy(stack: StackConfig) -> dict[str, Any]:
    """Every region of the stack, then the global view over their clusters; returns the stack outputs."""
    keep_state_across_renames(stack)
    pin_image_digests(stack)
    providers = {region.name: cloud_provider(region, stack.environment) for region in stack.regions}
    refs = StackReferences()
    # One CA per stack: clusters trust each other through it (remote-write and the global view are mTLS).
    authority = StackAuthority("stack", StackAuthorityArgs(stack.environment, stack.tls)) \
        if stack.thanos.receive.enabled or stack.global_view else None
    regions = {region.name: ThanosRegion(region.name, region, stack, providers, refs, authority) for region in stack.regions}
    outputs: dict[str, Any] = {name: region.outputs for name, region in regions.items()}
    for region in stack.regions:  # the DR read path: a store gateway on each DR copy, in a cluster of its region
        dr_access, maintenance = getattr(regions[region.name].store, "dr_access", None), None
        setup: list[pulumi.Resource] = []
        if region.storage.provider == "in-cluster" and region.storage.replication:
            (dr_access, setup), maintenance = in_cluster_copy(stack, region, regions), stack.thanos.compactor
        if dr_access is not None:
            target = regions[region.storage.replication.destination]
            cluster = dr_cluster_of(stack, region)
            DrStore(f"{cluster}-dr-store-{region.name}", DrStoreArgs(
                target.contexts[cluster], region.name, stack.thanos.store, stack.thanos.caches, dr_access, maintenance,
                stack.thanos.bucket_verify), pulumi.ResourceOptions(
                    parent=target.clusters[cluster], depends_on=[*target.clusters[cluster].ready, *setup]))
    if stack.global_view:
        outputs.update(deploy_global_view(stack, regions, providers, authority))
    if authority:
        outputs["caCertificate"] = authority.bundle
    return outputs
