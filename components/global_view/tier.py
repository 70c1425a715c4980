"""The global tier in a host (or standby) cluster: a query over every leaf with a client certificate, its
query-frontend and results cache, the global ruler, and the authenticated entry point in front."""

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.global_view.certificates import Certificate, StackAuthority
from components.platform.tls import client_tls_config, service_names
from components.global_view.entry_point import EntryPoint
from components.observability.alertmanager import cluster_alertmanagers
from components.observability.grafana import Grafana, GrafanaArgs
from components.observability.mixin_dashboards import stack_components
from components.observability.tls_probe import READERS, build_tls_probe
from components.platform.common import GRPC_PORT, HTTP_PORT
from components.platform.names import (QUERY_PODS, QUERY_RULES, QUERY_TENANTS, dns_srv, service_address,
                                      service_url)
from components.operations.validation import global_checks, validation_objects
from components.platform.kube import ClusterContext, register
from components.platform.namespace import Namespace, NamespaceArgs, global_network_policies, service_account_objects
from components.thanos.memcached import MemcachedPool, MemcachedPoolArgs
from components.thanos.query import Query, QueryArgs, build_query, global_query_sd_config, query_url
from components.thanos.query_frontend import QueryFrontend, QueryFrontendArgs, query_frontend_url
from components.thanos.ruler import NAME as RULER_NAME
from components.thanos.ruler import Ruler, RulerArgs, build_ruler, ruler_endpoints
from config.base import duration_seconds
from config.global_view import GlobalViewSpec
from config.stack import StackConfig
from config.tenancy import DEFAULT_TENANT, TENANT_HEADER, TENANT_LABEL

GLOBAL_CLIENT_SECRET = "thanos-global-client-tls"
GLOBAL_RULER_TLS_SECRET = "thanos-ruler-grpc-tls"
GLOBAL_CLUSTER_LABEL = "global"


def global_sd_config(view: GlobalViewSpec, leaves: list[str], namespace: str) -> dict[str, Any]:
    """Every leaf of the stack by the name its certificate carries, and every global ruler replica, strict and over
    mTLS with the global client certificate: a dead leaf stays in the endpoint set, so the answer carries a warning
    naming it instead of silently leaving its cluster out. `discovery: dns-srv` publishes the SRV record for other
    consumers; the global query does not follow it (Thanos refuses `strict` for a discovered name, and a discovered
    leaf that dies is dropped without a warning)."""
    endpoints: list[dict[str, Any]] = [{"address": address, "strict": True} for address in leaves]
    if view.ruler.enabled and view.mode == "distributed":
        endpoints.append(rules_query_endpoint(namespace))
    elif view.ruler.enabled:
        endpoints += [{"address": address, "strict": True} for address in ruler_endpoints(view.ruler.replicas, namespace)]
    return {"default_client_config": {"tls_config": client_tls_config()}, "endpoints": endpoints}


def rules_query_endpoint(namespace: str) -> dict[str, Any]:
    """In distributed mode, the global query reads the global ruler through the query in front of it: Thanos v0.42.4
    sends a distributed query's fragments only to endpoints serving the Query API (cmd/thanos/query.go passes
    `EndpointSet.GetQueryAPIClients` to `query.NewRemoteEndpointsCreator`, and `GetQueryAPIClients` keeps only the
    endpoints whose `endpointRef.HasQueryAPI`), and a ruler serves the StoreAPI alone; listed directly, its series
    would be missing from every answer without a warning. Inside the namespace and in the clear, as the enforcing
    query reads the global query (its client certificate is the one that reads the ruler)."""
    return {"address": service_address(QUERY_RULES, namespace, GRPC_PORT), "strict": True,
            "client_config": {"tls_config": {"enabled": False}}}


def rules_query_sd_config(view: GlobalViewSpec, namespace: str) -> dict[str, Any]:
    """The query in front of the global ruler: every ruler replica, strict, over mTLS with the global client
    certificate (what the ruler accepts)."""
    return {"default_client_config": {"tls_config": client_tls_config()},
            "endpoints": [{"address": address, "strict": True}
                          for address in ruler_endpoints(view.ruler.replicas, namespace)]}


def global_replica_labels(view: GlobalViewSpec, stack_labels: list[str]) -> list[str]:
    """Every replica label any producer of the stack (or outside it) uses: a stacked query does not deduplicate for
    the one above it, so the global query must name them all."""
    return sorted(set(stack_labels) | set(view.extra_replica_labels))


def global_query_flags(view: GlobalViewSpec) -> tuple[str, ...]:
    """Partial responses (a dead region is a warning), a longer info timeout for cross-region leaves, the mode.

    Distributed mode also takes each leaf's lowest MinTime (`--query.distributed-with-overlapping-interval`).
    Thanos v0.42.4 by default pushes a query down to a leaf only after the highest MinTime among the leaf's TSDBs
    that share a partition label, and an empty TSDB (a ruler with no alert firing, an ingestor nothing wrote to yet)
    reports MaxInt64: the leaf then counts as holding nothing, and every answer is an empty success (measured on
    dev's data path). The default guards remote engines that are replicas with different retention
    (thanos-io/promql-engine#187); a leaf here is a whole cluster and answers any range from its own stores."""
    flags = ["--query.partial-response", f"--endpoint.info-timeout={view.info_timeout}"]
    if view.mode == "distributed":
        flags += ["--query.mode=distributed", "--query.distributed-with-overlapping-interval",
                  *(f"--query.partition-label={label}" for label in view.query_partition_labels)]
    return tuple(flags)


def tenants_query_flags() -> tuple[str, ...]:
    """The enforcing query's tenancy: every selector gets `tenant_id="<THANOS-TENANT>"` (a user's own matcher on it is
    replaced), no header reads `default-tenant` only; partial responses as the global query's."""
    return ("--query.partial-response", "--query.enforce-tenancy", f"--query.tenant-header={TENANT_HEADER}",
            f"--query.tenant-label-name={TENANT_LABEL}", f"--query.default-tenant-id={DEFAULT_TENANT}")


def global_rule_groups(view: GlobalViewSpec, clusters: list[str]) -> list[dict[str, Any]]:
    """The global ruler's groups: the configured ones, which abort on partial data (an alert never fires on what a
    dead region did not answer), or by default one alert per cluster that stops reaching the global view, which
    warns instead: it exists to see a missing cluster, and a dead leaf (strict, so the query errors for it) would
    make an aborting group fail its evaluation rather than fire."""
    groups = view.ruler.rule_groups
    if groups is None:
        hold = "15m" if duration_seconds(view.store_response_timeout) < 900 else "30m"
        groups = [{"name": "thanos-global-view", "rules": [
            {"alert": "ThanosGlobalViewClusterMissing", "expr": f'absent(up{{cluster="{cluster}"}})', "for": hold,
             "labels": {"severity": "critical", "cluster": cluster},
             "annotations": {"summary": f"Cluster {cluster} is missing from the global view",
                             "description": f"The global query has no series from cluster {cluster} for {hold}: its "
                                            "leaf query, load balancer, certificate or DNS record is broken.",
                             "runbook_url": "docs/global-view.md#a-cluster-is-missing"}}
            for cluster in clusters]}]
        return [{**group, "partial_response_strategy": "warn"} for group in groups]
    return [{**group, "partial_response_strategy": "abort"} for group in groups]


def global_certificates(view: GlobalViewSpec, namespace: str) -> list[Certificate]:
    """The client certificate of the global query and the global ruler's server certificate."""
    certs = [Certificate(GLOBAL_CLIENT_SECRET, "thanos-global-query", (f"thanos-query.{namespace}.svc",), "client",
                         "readers")]
    if view.ruler.enabled:
        certs.append(Certificate(GLOBAL_RULER_TLS_SECRET, "thanos-global-ruler", service_names(RULER_NAME, namespace, pods=True),
                                 "server"))
    return certs


@dataclass(frozen=True)
class GlobalTierArgs:
    """What a global tier is built from."""

    ctx: ClusterContext
    """Where it runs: the global namespace of its host (or standby) cluster."""
    stack: StackConfig
    """The stack (its `global_view` is set)."""
    authority: StackAuthority
    """The stack's CAs, which issue its certificates."""
    leaves: list[str]
    """Every leaf query's address, as its certificate names it."""
    stack_replica_labels: list[str]
    """The replica labels the stack's clusters use (the global query deduplicates on each)."""
    credentials: dict[str, pulumi.Output]
    """The entry point's secrets, shared by host and standby (none without an entry point)."""
    provider: k8s.Provider
    """Its cluster's Kubernetes provider."""
    home_namespace: str
    """The namespace of the stack's own workloads in that cluster (its Alertmanager's)."""
    entry_tls: dict[str, pulumi.Output] | None = None
    """The entry point's self-signed certificate and key (default none: not self-signed)."""


class GlobalTier(pulumi.ComponentResource):
    """The global query tier in one cluster (host or standby)."""

    entry: pulumi.CustomResource | None
    """The Gateway or Ingress in front (its address is what DNS points at), if any."""
    outputs: dict[str, Any]
    """Its namespace and endpoints (the view's outputs add the leaves)."""

    def __init__(self, name: str, args: GlobalTierArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:global:Tier", name, {}, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(providers=[args.provider])))
        ctx, stack, authority, leaves, home_namespace = args.ctx, args.stack, args.authority, args.leaves, args.home_namespace
        view = stack.global_view
        assert view is not None
        ns = ctx.namespace
        child = pulumi.ResourceOptions(parent=self)
        namespace = Namespace(f"{name}-namespace", NamespaceArgs(ctx, stack.environment, holds_data=stack.protect_data),
                              child)
        after_ns: list[pulumi.Resource] = [namespace.namespace]
        alertmanagers = cluster_alertmanagers(stack, home_namespace, view.ruler.alertmanagers)
        shared = register([*service_account_objects(ctx, {}),
                           *global_network_policies(ctx, view, stack, alertmanagers if view.ruler.enabled else [],
                                                    home_namespace)],
                          f"{name}-shared", self, after_ns)
        entry = EntryPoint(f"{name}-entry", ctx, view.entry_point, args.credentials, stack.observability.grafana.enabled,
                           stack.tls, args.entry_tls, stack.tenancy) if view.entry_point else None
        secrets = authority.issue(name, ctx, global_certificates(view, ns), self, after_ns, ("readers",) if view.ruler.enabled else ())
        ready = after_ns + list(shared.values()) + list(secrets.values())

        labels = global_replica_labels(view, args.stack_replica_labels)
        parts: list[pulumi.Resource] = [MemcachedPool(f"{name}-memcached-query-results",
                               MemcachedPoolArgs(ctx, "query-results", view.cache, depends_on=after_ns), child)]
        parts.append(Query(f"{name}-query", QueryArgs(build_query(
            ctx, view.query, global_sd_config(view, leaves, ns), labels, response_timeout=view.store_response_timeout,
            extra_flags=global_query_flags(view), tls_secret=GLOBAL_CLIENT_SECRET,
            pod_annotations=authority.trust_annotation), depends_on=ready), child))
        downstream = None
        if stack.tenancy.enabled:
            # Only this query enforces, so the global query below it stays whole for the ruler and operators. Its StoreAPI
            # does not deduplicate: the enforcing query names every replica label too.
            parts.append(Query(f"{name}-query-tenants", QueryArgs(build_query(
                ctx, stack.tenancy.query, global_query_sd_config(ns), labels, response_timeout=view.store_response_timeout,
                extra_flags=tenants_query_flags(), component="query-tenants"), depends_on=ready), child))
            downstream = service_url("http", QUERY_TENANTS, ns, HTTP_PORT)
        parts.append(QueryFrontend(f"{name}-query-frontend", QueryFrontendArgs(
            ctx, view.query_frontend, view.cache, downstream, depends_on=after_ns), child))
        if view.ruler.enabled and view.mode == "distributed":
            parts.append(Query(f"{name}-query-rules", QueryArgs(build_query(
                ctx, view.ruler.query, rules_query_sd_config(view, ns), labels,
                extra_flags=("--query.partial-response",), tls_secret=GLOBAL_CLIENT_SECRET,
                pod_annotations=authority.trust_annotation, component="query-rules"), depends_on=ready), child))
        if view.ruler.enabled:
            spec = view.ruler.model_copy(update={"rule_groups": global_rule_groups(view, stack.cluster_names()),
                                                 "alertmanagers": alertmanagers})
            parts.append(Ruler(f"{name}-ruler", RulerArgs(build_ruler(
                ctx, spec, dns_srv("http", QUERY_PODS, ns), tls_secret=GLOBAL_RULER_TLS_SECRET,
                trust=authority.trust_annotation), depends_on=ready), child))
        grafana = stack.observability.grafana
        if grafana.enabled:
            parts.append(Grafana(f"{name}-grafana", GrafanaArgs(
                ctx, grafana, scrape_interval=stack.thanos.prometheus.scrape_interval, query_timeout=view.query.timeout,
                auth=view.entry_point.auth if view.entry_point else None,
                host=view.entry_point.host if view.entry_point else None,
                # Only operators reach it (the tenant gate): it reads every tenant, past the enforcing query.
                datasource_url=query_url(ns) if stack.tenancy.enabled else None,
                components=stack_components(receive=stack.thanos.receive.enabled), depends_on=ready), child))
        register(build_tls_probe(ctx, READERS, GLOBAL_CLIENT_SECRET), f"{name}-tls-probe", self, ready)
        self.entry = entry.register(self, ready) if entry else None
        self._validation = (validation_objects(ctx, global_checks(ctx, stack)), f"{name}-validate", ready + parts)
        self.outputs = {"namespace": ns, "queryFrontendUrl": query_frontend_url(ns),
                        "entryPoint": f"https://{view.entry_point.host}" if view.entry_point else None}
        self.register_outputs(self.outputs)

    def validate(self, leaves: list[pulumi.Resource]) -> None:
        """The tier's validation Job, after its own parts and `leaves` (every leaf's Service and DNS record): it
        dials each leaf, so it must not start before they exist."""
        objects, prefix, ready = self._validation
        register(objects, prefix, self, ready + leaves)
