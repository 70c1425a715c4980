"""The global view of a stack: the global tier in the host cluster (and a copy in the standby), and its DNS."""

from dataclasses import dataclass
from typing import Any

import pulumi

from components.global_view.certificates import StackAuthority
from components.global_view.dns import GlobalDns, GlobalDnsArgs, address, gateway_address
from components.global_view.entry_point import entry_credentials
from components.global_view.entry_tls import self_signed_pair
from components.global_view.leaves import leaf_address, srv_name
from components.global_view.tier import GLOBAL_CLUSTER_LABEL, GlobalTier, GlobalTierArgs, global_replica_labels
from components.platform.kube import ClusterContext
from components.thanos.query import cluster_replica_labels
from config.stack import StackConfig


def _entry_address(entry: Any, kind: str, cloud: str) -> pulumi.Output[str]:
    return entry.status.apply(lambda s: gateway_address(s, cloud) if kind == "gateway" else address(s, cloud))


@dataclass(frozen=True)
class GlobalViewArgs:
    """What the global view is built from."""

    stack: StackConfig
    """The stack (its `global_view` is set)."""
    regions: dict[str, Any]
    """The stack's ThanosRegions by name (their clusters' leaf Services and Kubernetes providers)."""
    providers: dict[str, Any]
    """Each region's cloud provider by name (the host region's holds the DNS zone)."""
    authority: StackAuthority
    """The stack's CAs."""


class GlobalView(pulumi.ComponentResource):
    """Global tiers and DNS records."""

    outputs: dict[str, Any]
    """The global endpoint and every leaf it reaches."""

    def __init__(self, name: str, args: GlobalViewArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:global:View", name, {}, opts)
        stack, regions, providers = args.stack, args.regions, args.providers
        view = stack.global_view
        assert view is not None
        where = {c.name: r for r in stack.regions for c in r.clusters}
        specs = {c.name: c for r in stack.regions for c in r.clusters}
        leaves = [leaf_address(view, c, stack.namespace_of(specs[c])) for c in stack.cluster_names()]
        stack_labels = cluster_replica_labels(stack.thanos)
        credentials = entry_credentials(name, view.entry_point, self) if view.entry_point else {}
        entry_tls = self_signed_pair(name, view.entry_point, stack.tls, stack.environment, self) if view.entry_point else None
        tiers = []
        for cluster in filter(None, (view.host_cluster, view.standby_cluster)):
            region = where[cluster]
            ctx = ClusterContext(cluster=GLOBAL_CLUSTER_LABEL, region=region.name, namespace=view.namespace,
                                 image=stack.thanos.image, zone_spread=stack.thanos.zone_spread,
                                 node_spread=stack.thanos.node_spread, tracing=stack.tracing)
            tiers.append((cluster, GlobalTier(f"{name}-{cluster}", GlobalTierArgs(
                ctx, stack, args.authority, leaves, stack_labels, credentials, regions[region.name].kubernetes[cluster],
                stack.namespace_of(specs[cluster]), entry_tls), pulumi.ResourceOptions(parent=self))))
        leaf_objects: list[pulumi.Resource] = [regions[where[c].name].clusters[c].leaf_service
                                               for c in stack.cluster_names()]
        if view.dns:
            cloud = where[view.host_cluster].storage.provider
            leaf_targets = {c: regions[where[c].name].clusters[c].leaf_service.status.apply(
                lambda s, cloud=where[c].storage.provider: address(s, cloud)) for c in stack.cluster_names()}
            kind = view.entry_point.kind if view.entry_point else ""
            entries = [(cluster, _entry_address(tier.entry, kind, where[cluster].storage.provider))
                       for cluster, tier in tiers if tier.entry is not None]
            leaf_objects.append(GlobalDns(f"{name}-dns", GlobalDnsArgs(
                view, cloud, providers[where[view.host_cluster].name], leaf_targets, entries),
                pulumi.ResourceOptions(parent=self)))
        for _, tier in tiers:
            tier.validate(leaf_objects)
        host = tiers[0][1].outputs
        self.outputs = {
            "endpoint": host["entryPoint"] or host["queryFrontendUrl"], "hostCluster": view.host_cluster,
            "standbyCluster": view.standby_cluster, "namespace": view.namespace, "leaves": leaves,
            "srv": srv_name(view.dns.zone) if view.dns else None, "discovery": view.discovery_mode,
            "replicaLabels": global_replica_labels(view, stack_labels), "mode": view.mode,
        }
        self.basic_auth: dict[str, Any] | None = None
        if view.entry_point and view.entry_point.auth == "basic-auth":
            self.basic_auth = {"users": credentials["users"]} if "users" in credentials else \
                {"user": view.entry_point.basic_auth_user, "password": credentials["password"]}
        self.register_outputs(self.outputs)


def deploy_global_view(stack: StackConfig, regions: dict[str, Any], providers: dict[str, Any],
                       authority: StackAuthority | None) -> dict[str, Any]:
    """The global view's stack outputs: `global` (endpoint, leaves) and, with basic auth, the secret `globalBasicAuth`."""
    assert authority is not None
    view = GlobalView("global", GlobalViewArgs(stack, regions, providers, authority))
    return {"global": view.outputs, **({"globalBasicAuth": pulumi.Output.secret(view.basic_auth)} if view.basic_auth else {})}
