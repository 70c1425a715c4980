"""Thanos Query: fans out to every StoreAPI of the cluster, deduplicates on every replica label in use."""

from typing import Any

from components.platform.common import (
    GRPC_PORT,
    HTTP_PORT,
    container,
    http_probes,
    inline_config,
    pod_spec,
    service_name,
    thanos_ports,
)
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.workload import workload_objects
from components.thanos.flags import thanos_args
from config.thanos import QuerySpec

NAME = "thanos-query"


def query_url(namespace: str) -> str:
    """HTTP URL of the Query Service (query-frontend's downstream, the ruler's query source)."""
    return f"http://{NAME}.{namespace}.svc.cluster.local:{HTTP_PORT}"


def endpoint_sd_config(endpoints: list[str]) -> dict[str, Any]:
    """`--endpoint.sd-config`: the DNS SRV addresses of the StoreAPIs (replaces the deprecated --endpoint)."""
    return {"endpoints": [{"address": address} for address in endpoints]}


def query_args(spec: QuerySpec, endpoints: list[str], replica_labels: list[str]) -> list[str]:
    """Query flags: one --query.replica-label per replica label in use, endpoints through SD config."""
    flags = [f"--grpc-address=0.0.0.0:{GRPC_PORT}", f"--http-address=0.0.0.0:{HTTP_PORT}", "--log.format=logfmt",
             *(f"--query.replica-label={label}" for label in replica_labels),
             f"--endpoint.sd-config={inline_config(endpoint_sd_config(endpoints))}",
             f"--query.timeout={spec.timeout}", f"--query.max-concurrent={spec.max_concurrent}",
             f"--query.lookback-delta={spec.lookback_delta}", "--query.auto-downsampling",
             "--store.response-timeout=1m"]
    return thanos_args("query", flags)


def build_query(ctx: ClusterContext, spec: QuerySpec, endpoints: list[str],
                replica_labels: list[str]) -> list[dict[str, Any]]:
    """Deployment, headless Service, ClusterIP Service for clients, PDB, HPA."""
    component = "query"
    selector = ctx.selector(component)
    pod = pod_spec(service_name(component), [container(
        "thanos-query", ctx.image, query_args(spec, endpoints, replica_labels), spec.resources,
        ports=thanos_ports(), probes=http_probes())], selector=selector, replicas=spec.replicas,
        zone_spread=ctx.zone_spread)
    autoscale = (spec.autoscaling.max_replicas, spec.autoscaling.cpu_utilization) if spec.autoscaling.enabled else None
    objects = workload_objects(ctx, component, f"{NAME}-pods", kind="Deployment", replicas=spec.replicas, pod=pod,
                               ports=thanos_ports(), autoscale=autoscale)
    objects.append({"apiVersion": "v1", "kind": "Service", "metadata": ctx.metadata(NAME, component),
                    "spec": {"selector": selector, "ports": [
                        {"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"},
                        {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"}]}})
    return objects


class Query(ManifestComponent):
    """Thanos Query."""

    def __init__(self, name: str, ctx: ClusterContext, spec: QuerySpec, endpoints: list[str],
                 replica_labels: list[str], opts=None, depends_on=None):
        super().__init__("thanos:k8s:Query", name, build_query(ctx, spec, endpoints, replica_labels), opts, depends_on)
