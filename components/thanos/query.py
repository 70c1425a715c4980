"""Thanos Query: fans out to every StoreAPI of the cluster, deduplicates on every replica label in use."""

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.platform.common import (
    PROMETHEUS_REPLICA_LABEL,
    RECEIVE_REPLICA_LABEL,
    RULER_REPLICA_LABEL,
    GRPC_PORT,
    HTTP_PORT,
    container,
    http_probes,
    inline_config,
    pod_spec,
    service_name,
    thanos_ports,
)
from components.platform.tls import cert_mounts, cert_volumes
from components.platform import names
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.names import service_address, service_url
from components.platform.workload import workload_objects
from components.thanos.flags import thanos_args
from config.thanos import LEAF_STORE_RESPONSE_TIMEOUT, TEAM_RULER_REPLICA_LABEL, TEAM_RULES_COPY_LABEL, QuerySpec, ThanosSpec

NAME = names.QUERY


def query_url(namespace: str) -> str:
    """HTTP URL of the Query Service (query-frontend's downstream, the ruler's query source)."""
    return service_url("http", NAME, namespace, HTTP_PORT)


def global_query_sd_config(global_namespace: str) -> dict[str, Any]:
    """A query stacked on the global query: its one StoreAPI, strict, the global query's gRPC in the clear (the global
    tier's enforcing query, and with tenants the global-scope team rules' one)."""
    return {"endpoints": [{"address": service_address(NAME, global_namespace, GRPC_PORT), "strict": True}]}


WEB_CONFIG_DIR = "/etc/thanos/web"
"""Where a query's `--http.config` file is mounted."""


def cluster_replica_labels(thanos: ThanosSpec) -> list[str]:
    """Every replica label a producer of a cluster uses (its Prometheus pair, ruler pair and, when on, receive's
    copies, the team rulers'): the cluster's query deduplicates on each, and the global query on each too."""
    return [PROMETHEUS_REPLICA_LABEL, RULER_REPLICA_LABEL, *([RECEIVE_REPLICA_LABEL] if thanos.receive.enabled else []),
            *([TEAM_RULER_REPLICA_LABEL, TEAM_RULES_COPY_LABEL] if thanos.ruler.team_rules.enabled else [])]


def endpoint_sd_config(endpoints: list[str]) -> dict[str, Any]:
    """`--endpoint.sd-config` (replaces the deprecated --endpoint): every StoreAPI by its static address, strict. A
    strict endpoint stays queried while it is down, so the answer carries a warning naming it (or fails without
    partial response); a non-strict one that fails its health check is dropped, and the answer is a silent "success"
    without its data, which the query-frontend then caches."""
    return {"endpoints": [{"address": address, "strict": True} for address in endpoints]}


def query_args(spec: QuerySpec, sd_config: dict[str, Any], replica_labels: list[str], *,
               response_timeout: str = LEAF_STORE_RESPONSE_TIMEOUT, extra_flags: tuple[str, ...] = ()) -> list[str]:
    """Query flags: one --query.replica-label per replica label in use, endpoints through SD config, the engine, the
    series and samples one select may gather."""
    flags = [f"--grpc-address=0.0.0.0:{GRPC_PORT}", f"--http-address=0.0.0.0:{HTTP_PORT}", "--log.format=logfmt",
             *(f"--query.replica-label={label}" for label in replica_labels),
             f"--endpoint.sd-config={inline_config(sd_config)}",
             f"--query.timeout={spec.timeout}", f"--query.max-concurrent={spec.max_concurrent}",
             f"--query.lookback-delta={spec.lookback_delta}", "--query.auto-downsampling",
             # prometheus is Thanos' own default: left out, a stack that keeps it plans the same args as before.
             *([f"--query.promql-engine={spec.promql_engine}"] if spec.promql_engine != "prometheus" else []),
             f"--store.limits.request-series={spec.series_limit}",
             f"--store.limits.request-samples={spec.samples_limit}",
             f"--store.response-timeout={response_timeout}", *extra_flags]
    return thanos_args("query", flags)


def build_query(ctx: ClusterContext, spec: QuerySpec, sd_config: dict[str, Any], replica_labels: list[str], *,
                response_timeout: str = LEAF_STORE_RESPONSE_TIMEOUT, extra_flags: tuple[str, ...] = (), tls_secret: str | None = None,
                pod_annotations: dict[str, str] | None = None, component: str = "query",
                web_config: str | None = None) -> list[dict[str, Any]]:
    """Deployment, headless Service, ClusterIP Service for clients, PDB, HPA; with `tls_secret`, the certificate
    and CA bundle mounted (the flags that use them come in `extra_flags`); with `web_config` (a ConfigMap holding
    `web.yaml`), its HTTP served as that file says (`--http.config`: TLS), and probed over HTTPS. `component` names it
    (`thanos-<component>`; default query); every query runs as the namespace's `thanos-query` ServiceAccount."""
    name = service_name(component)
    selector = ctx.selector(component)
    web_flags = (f"--http.config={WEB_CONFIG_DIR}/web.yaml",) if web_config else ()
    args = query_args(spec, sd_config, replica_labels, response_timeout=response_timeout,
                      extra_flags=(*extra_flags, *web_flags))
    probes = http_probes()
    if web_config:
        probes = {kind: {**probe, "httpGet": {**probe["httpGet"], "scheme": "HTTPS"}} for kind, probe in probes.items()}
    mounts = [*(cert_mounts() if tls_secret else []),
              *([{"name": "web", "mountPath": WEB_CONFIG_DIR, "readOnly": True}] if web_config else [])]
    volumes = [*(cert_volumes(tls_secret) if tls_secret else []),
               *([{"name": "web", "configMap": {"name": web_config}}] if web_config else [])]
    pod = pod_spec(service_name("query"), [container(
        "thanos-query", ctx.image, args, spec.resources, ports=thanos_ports(), probes=probes,
        mounts=mounts or None)], selector=selector, replicas=spec.replicas,
        zone_spread=ctx.zone_spread, node_spread=ctx.node_spread, volumes=volumes or None)
    autoscale = (spec.autoscaling.max_replicas, spec.autoscaling.cpu_utilization) if spec.autoscaling.enabled else None
    objects = workload_objects(ctx, component, f"{name}-pods", kind="Deployment", replicas=spec.replicas, pod=pod,
                               ports=thanos_ports(), autoscale=autoscale, pod_annotations=pod_annotations)
    objects.append({"apiVersion": "v1", "kind": "Service", "metadata": ctx.metadata(name, component),
                    "spec": {"selector": selector, "ports": [
                        {"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"},
                        {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"}]}})
    return objects


@dataclass(frozen=True)
class QueryArgs:
    """What a query is registered from."""

    objects: list[dict[str, Any]]
    """Its Kubernetes objects (`build_query`)."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What each of its objects waits for, besides the objects it uses (default nothing)."""


class Query(ManifestComponent):
    """Thanos Query (a cluster's leaf, or the global tier's)."""

    def __init__(self, name: str, args: QueryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:k8s:Query", name, args.objects, opts, args.depends_on)
