"""Thanos Query-frontend: splits, retries and caches range and label queries in front of Query."""

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.platform.common import HTTP_PORT, container, http_probes, inline_config, pod_spec, service_name, thanos_ports
from components.platform import names
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.names import service_url
from components.platform.workload import workload_objects
from components.thanos.flags import thanos_args
from components.thanos.memcached import results_cache_config
from components.thanos.query import query_url
from config.tenancy import TENANT_HEADER
from config.thanos import MemcachedSpec, QueryFrontendSpec

NAME = names.QUERY_FRONTEND


def query_frontend_url(namespace: str) -> str:
    """HTTP URL of the query-frontend Service (users, Grafana, the auth proxy's upstream)."""
    return service_url("http", NAME, namespace, HTTP_PORT)


def query_frontend_args(ctx: ClusterContext, spec: QueryFrontendSpec, cache: MemcachedSpec,
                        downstream: str | None = None) -> list[str]:
    """Query-frontend flags: split by interval, refuse ranges longer than the maximum, retry, compress, cache in
    memcached, ask for downsampled data. `downstream`: the query it sends to (default the namespace's thanos-query);
    another one enforces tenants, and the frontend names the tenant header it forwards (it always sends THANOS-TENANT
    downstream, `default-tenant` when a request has none, and keys its results cache by it)."""
    results_cache = inline_config(results_cache_config(ctx.namespace, cache))
    tripper = inline_config({"max_idle_conns": 300, "max_idle_conns_per_host": 100, "idle_conn_timeout": "90s"})
    return thanos_args("query-frontend", [
        f"--http-address=0.0.0.0:{HTTP_PORT}", "--log.format=logfmt",
        f"--query-frontend.downstream-url={downstream or query_url(ctx.namespace)}",
        *([f"--query-frontend.tenant-header={TENANT_HEADER}"] if downstream else []),
        f"--query-frontend.downstream-tripper-config={tripper}",
        f"--query-range.split-interval={spec.split_interval}", f"--labels.split-interval={spec.split_interval}",
        f"--query-range.max-query-length={spec.max_query_length}",
        f"--query-range.max-retries-per-request={spec.max_retries}",
        f"--labels.max-retries-per-request={spec.max_retries}",
        "--query-range.request-downsampled", "--query-frontend.compress-responses",
        f"--query-frontend.log-queries-longer-than={spec.log_queries_longer_than}",
        f"--query-range.response-cache-config={results_cache}", f"--labels.response-cache-config={results_cache}"])


def build_query_frontend(ctx: ClusterContext, spec: QueryFrontendSpec, cache: MemcachedSpec,
                         downstream: str | None = None) -> list[dict[str, Any]]:
    """Deployment, headless Service, ClusterIP Service for users, PDB, HPA."""
    component = "query-frontend"
    selector = ctx.selector(component)
    ports = thanos_ports(grpc=False)
    pod = pod_spec(service_name(component), [container(
        "thanos-query-frontend", ctx.image, query_frontend_args(ctx, spec, cache, downstream), spec.resources, ports=ports,
        probes=http_probes())], selector=selector, replicas=spec.replicas,
        zone_spread=ctx.zone_spread, node_spread=ctx.node_spread)
    autoscale = (spec.autoscaling.max_replicas, spec.autoscaling.cpu_utilization) if spec.autoscaling.enabled else None
    objects = workload_objects(ctx, component, f"{NAME}-pods", kind="Deployment", replicas=spec.replicas, pod=pod,
                               ports=ports, autoscale=autoscale)
    objects.append({"apiVersion": "v1", "kind": "Service", "metadata": ctx.metadata(NAME, component),
                    "spec": {"selector": selector, "ports": [
                        {"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"}]}})
    return objects


@dataclass(frozen=True)
class QueryFrontendArgs:
    """What a query-frontend is built from."""

    ctx: ClusterContext
    """The cluster it runs in."""
    spec: QueryFrontendSpec
    """Its settings."""
    cache: MemcachedSpec
    """The query-results memcached pool it caches in."""
    downstream: str | None = None
    """The query it sends to; default the namespace's thanos-query."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What each of its objects waits for, besides the objects it uses (default nothing)."""


class QueryFrontend(ManifestComponent):
    """Thanos Query-frontend."""

    def __init__(self, name: str, args: QueryFrontendArgs, opts: pulumi.ResourceOptions | None = None):
        objects = build_query_frontend(args.ctx, args.spec, args.cache, args.downstream)
        super().__init__("thanos:k8s:QueryFrontend", name, objects, opts, args.depends_on)
