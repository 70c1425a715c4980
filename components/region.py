"""A region: its object store (with DR copy) on the region's cloud provider, and each of its clusters."""

from dataclasses import dataclass, replace
from typing import Any, Callable

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import ThanosCluster, ThanosClusterArgs
from components.global_view.certificates import StackAuthority
from components.platform.kube import ClusterContext
from components.storage.backend import ObjectStore, RegionStorage, cloud_backend
from components.storage.identity import ClusterIdentity, components_in, dr_store_component
from config.stack import ClusterSpec, RegionSpec, StackConfig, dr_cluster_of

StackOutput = Callable[[str, str], pulumi.Output[Any]]
"""Reads a required output of another stack: `(stack, output)` (the composition root holds one StackReference per
stack)."""


def kubernetes_provider(cluster: ClusterSpec, namespace: str, stack_output: StackOutput) -> k8s.Provider:
    """The cluster's provider: a kubeconfig context, or the kubeconfig exported by the cluster's stack."""
    access = cluster.kubernetes
    kubeconfig = stack_output(access.stack, access.kubeconfig_output) if access.stack else None
    return k8s.Provider(f"k8s-{cluster.name}", context=access.context, kubeconfig=kubeconfig, namespace=namespace,
                        enable_server_side_apply=True, delete_unreachable=False,
                        # Secrets and ConfigMaps change in place: a replace deletes a named one before creating it
                        # again, so pods starting in between find it missing.
                        enable_secret_mutable=True, enable_config_map_mutable=True)


def oidc_issuer(cluster: ClusterSpec, stack_output: StackOutput) -> pulumi.Input[str] | None:
    """The cluster's OIDC issuer URL, from config or from the cluster stack."""
    if cluster.oidc_issuer:
        return cluster.oidc_issuer
    if cluster.issuer_from_stack and cluster.kubernetes.stack:
        return stack_output(cluster.kubernetes.stack, cluster.kubernetes.oidc_issuer_output)
    return None


def dr_reader(region: RegionSpec, stack: StackConfig, stack_output: StackOutput) -> ClusterIdentity | None:
    """The identity of the read-only store gateway on the region's DR copy, in the DR cluster."""
    name = dr_cluster_of(stack, region)
    if name is None:
        return None
    cluster = next(c for r in stack.regions for c in r.clusters if c.name == name)
    return ClusterIdentity(name, oidc_issuer(cluster, stack_output), [dr_store_component(region.name)],
                           cluster.workload_identity_pool, stack.namespace_of(cluster), stack.environment,
                           cluster.created_as)


@dataclass(frozen=True)
class ThanosRegionArgs:
    """A region of the stack, with what the composition root made for the whole stack."""

    region: RegionSpec
    """The region's spec: its storage and its clusters."""
    stack: StackConfig
    """The whole stack (namespaces, Thanos settings, which cluster reads each DR copy)."""
    stack_output: StackOutput
    """Reads an output of a cluster's own stack (its kubeconfig, its OIDC issuer)."""
    provider: pulumi.ProviderResource | None = None
    """The region's cloud provider; default none (in-cluster storage)."""
    dr_provider: pulumi.ProviderResource | None = None
    """The cloud provider of the region that holds the DR copy; default none (no cloud DR copy)."""
    authority: StackAuthority | None = None
    """The stack's CA (with remote-write or a global view); default none."""


class ThanosRegion(pulumi.ComponentResource):
    """A region's object store and clusters."""

    outputs: dict[str, Any]
    """Bucket, identities and cluster endpoints of the region."""

    clusters: dict[str, ThanosCluster]
    """The region's clusters by name."""
    kubernetes: dict[str, k8s.Provider]
    """Each cluster's Kubernetes provider by name."""
    contexts: dict[str, ClusterContext]
    """Each cluster's context by name."""
    store: ObjectStore | None
    """The region's cloud object store (None for in-cluster storage, which each cluster holds)."""

    def __init__(self, name: str, args: ThanosRegionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:index:Region", name, {}, opts)
        region, stack, authority, stack_output = args.region, args.stack, args.authority, args.stack_output
        thanos = stack.thanos
        compactor_cluster = region.compactor_cluster_name
        identities = [ClusterIdentity(c.name, oidc_issuer(c, stack_output), components_in(
            c.name == compactor_cluster, thanos.receive.enabled, thanos.bucket_web.enabled), c.workload_identity_pool,
            c.namespace, stack.environment, c.created_as) for c in region.clusters]
        reader = dr_reader(region, stack, stack_output)
        store: ObjectStore | None = None  # in-cluster storage has none: each of its clusters holds its server
        backend = cloud_backend(region.storage.provider)
        if backend is not None:
            assert args.provider is not None
            store = backend.object_store(f"{name}-objectstore", RegionStorage(
                region, stack, identities, args.provider, args.dr_provider, reader), pulumi.ResourceOptions(parent=self))
        self.store = store
        self.outputs = {"storage": store.outputs if store else {"provider": "in-cluster"}, "clusters": {}}
        self.clusters, self.kubernetes, self.contexts = {}, {}, {}
        for cluster in region.clusters:
            namespace = stack.namespace_of(cluster)
            ctx = ClusterContext(cluster=cluster.name, region=region.name, namespace=namespace, instance=cluster.created_as,
                                 cloud=region.storage.provider,
                                 image=thanos.image, zones=tuple(cluster.zones), zone_spread=thanos.zone_spread,
                                 node_spread=thanos.node_spread, tracing=stack.tracing)
            provider = kubernetes_provider(cluster, namespace, stack_output)
            in_cluster = region.storage if region.storage.provider == "in-cluster" else None
            if store is not None and store.access[cluster.name].copy and region.storage.replication:
                ctx = replace(ctx, copy=store.access[cluster.name].copy)
            self.contexts[cluster.name] = ctx
            built = ThanosCluster(cluster.name, ThanosClusterArgs(
                ctx, stack, provider, cluster.name == compactor_cluster, region.storage.provider,
                access=store.access[cluster.name] if store else None, in_cluster=in_cluster, authority=authority),
                pulumi.ResourceOptions(parent=self))
            self.outputs["clusters"][cluster.name] = built.outputs
            self.clusters[cluster.name], self.kubernetes[cluster.name] = built, provider
        self.register_outputs(self.outputs)
