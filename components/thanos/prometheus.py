"""The Prometheus HA pair of a cluster with the Thanos sidecar that serves its data and uploads its blocks."""

from typing import Any

import yaml

from components.platform.common import (
    GRPC_PORT,
    HTTP_PORT,
    OBJSTORE_FLAG,
    PROMETHEUS_PORT,
    PROMETHEUS_REPLICA_LABEL,
    container,
    downward_env,
    http_probes,
    objstore_mount,
    objstore_volume,
    pod_spec,
    service_name,
    thanos_ports,
    volume_claim,
)
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.workload import workload_objects
from components.thanos.flags import thanos_args
from config.thanos import PrometheusSpec

NAME = "thanos-prometheus"
CONFIG_DIR = "/etc/prometheus"
DATA_DIR = "/prometheus"
BLOCK_DURATION = "2h"


def external_labels(ctx: ClusterContext) -> dict[str, str]:
    """What makes this Prometheus' blocks unique and persistent: cluster, region and the pod (ordinal) name."""
    return {"cluster": ctx.cluster, "region": ctx.region, PROMETHEUS_REPLICA_LABEL: "${POD_NAME}"}


def prometheus_config(ctx: ClusterContext, spec: PrometheusSpec, scraped: list[str]) -> dict[str, Any]:
    """prometheus.yml: external labels (expanded from the environment by Prometheus 3) and a job per Thanos Service,
    discovered through DNS SRV on the headless Services, so Prometheus needs no Kubernetes API access."""
    def job(name: str, service: str, port: str) -> dict[str, Any]:
        return {"job_name": name, "dns_sd_configs": [
            {"names": [f"_{port}._tcp.{service}.{ctx.namespace}.svc.cluster.local"], "type": "SRV",
             "refresh_interval": "30s"}],
            "relabel_configs": [{"source_labels": ["__meta_dns_name"], "target_label": "service"}]}

    jobs = [job("prometheus", NAME, "web")]
    jobs += [job(service, service, "http") for service in scraped]
    return {"global": {"scrape_interval": spec.scrape_interval, "evaluation_interval": spec.scrape_interval,
                       "external_labels": external_labels(ctx)},
            "scrape_configs": jobs}


def prometheus_args(spec: PrometheusSpec) -> list[str]:
    """Prometheus flags: equal min and max block durations (no local compaction, the sidecar uploads every block),
    the admin API the sidecar reads external labels through, and lifecycle for the sidecar's reloader."""
    return [f"--config.file={CONFIG_DIR}/prometheus.yml", f"--storage.tsdb.path={DATA_DIR}",
            f"--storage.tsdb.retention.time={spec.retention}",
            f"--storage.tsdb.min-block-duration={BLOCK_DURATION}",
            f"--storage.tsdb.max-block-duration={BLOCK_DURATION}",
            f"--web.listen-address=0.0.0.0:{PROMETHEUS_PORT}", "--web.enable-admin-api", "--web.enable-lifecycle"]


def sidecar_args() -> list[str]:
    """Thanos sidecar flags: serve the local TSDB over gRPC, upload blocks, reload Prometheus on config change."""
    return thanos_args("sidecar", [
        f"--grpc-address=0.0.0.0:{GRPC_PORT}", f"--http-address=0.0.0.0:{HTTP_PORT}", "--log.format=logfmt",
        f"--prometheus.url=http://localhost:{PROMETHEUS_PORT}", f"--tsdb.path={DATA_DIR}", OBJSTORE_FLAG,
        f"--reloader.config-file={CONFIG_DIR}/prometheus.yml"])


def build_prometheus(ctx: ClusterContext, spec: PrometheusSpec, scraped: list[str],
                     pod_labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """ConfigMap, StatefulSet of the HA pair (Prometheus + sidecar, one PVC each), Services, PDB."""
    component = "prometheus"
    selector = ctx.selector(component)
    web_port = {"name": "web", "containerPort": PROMETHEUS_PORT, "protocol": "TCP"}
    data = {"name": "data", "mountPath": DATA_DIR}
    config = {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}
    prometheus = container("prometheus", spec.image, prometheus_args(spec), spec.resources, ports=[web_port],
                           mounts=[data, config], env=downward_env(), probes=http_probes("web", startup_seconds=900),
                           go=False)
    sidecar = container("thanos-sidecar", ctx.image, sidecar_args(), spec.sidecar_resources,
                        ports=thanos_ports(), mounts=[data, config, objstore_mount()], env=downward_env(),
                        probes=http_probes())
    pod = pod_spec(service_name("prometheus"), [prometheus, sidecar], selector=selector, replicas=spec.replicas,
                   zone_spread=ctx.zone_spread,
                   volumes=[{"name": "config", "configMap": {"name": NAME}}, objstore_volume()], grace_seconds=600)
    objects = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(NAME, component),
                "data": {"prometheus.yml": yaml.safe_dump(prometheus_config(ctx, spec, scraped), sort_keys=False)}}]
    objects += workload_objects(ctx, component, NAME, kind="StatefulSet", replicas=spec.replicas, pod=pod,
                                ports=[web_port], claims=[volume_claim("data", spec.storage_size, spec.storage_class)],
                                pod_labels=pod_labels)
    # The sidecar's own headless Service: query discovers every replica's StoreAPI through its SRV records.
    objects.append({"apiVersion": "v1", "kind": "Service", "metadata": ctx.metadata("thanos-sidecar", "sidecar"),
                    "spec": {"clusterIP": "None", "selector": selector,
                             "ports": [{"name": p["name"], "port": p["containerPort"], "targetPort": p["name"],
                                        "protocol": "TCP"} for p in thanos_ports()]}})
    return objects


class Prometheus(ManifestComponent):
    """Prometheus HA pair with the Thanos sidecar."""

    def __init__(self, name: str, ctx: ClusterContext, spec: PrometheusSpec, scraped: list[str],
                 pod_labels: dict[str, str] | None = None, opts=None, depends_on=None):
        super().__init__("thanos:k8s:Prometheus", name, build_prometheus(ctx, spec, scraped, pod_labels), opts,
                         depends_on)
