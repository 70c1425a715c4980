"""The Prometheus HA pair of a cluster with the Thanos sidecar that serves its data and uploads its blocks."""

from dataclasses import dataclass, field
from typing import Any

import pulumi
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
from components.observability.alertmanager import split_url
from components.observability.collection import (
    NODE_EXPORTER_PASSWORD_DIR,
    NODE_EXPORTER_SCRAPE_SECRET,
    cluster_role,
    discovery_rules,
    kubernetes_scrape_jobs,
    node_exporter_scrape_job,
    with_tenants,
)
from components.observability.tls_probe import probe_scrape_job
from components.platform.names import pod_address, srv_record
from components.platform import names
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.workload import workload_objects
from components.thanos.flags import thanos_args
from config.observability import ScrapeLimitsSpec
from config.thanos import PrometheusSpec

NAME = names.PROMETHEUS
CONFIG_DIR = "/etc/prometheus"
RULES_DIR = "/etc/prometheus/rules"
RULES_CONFIG_MAP = "thanos-prometheus-rules"
DATA_DIR = "/prometheus"
BLOCK_DURATION = "2h"
SRV_NAME = r"_[^.]+\._tcp\.([^.]+)\.([^.]+)\.svc\..*"
"""A Service's SRV record name: the Service and its namespace."""


def external_labels(ctx: ClusterContext) -> dict[str, str]:
    """What makes this Prometheus' blocks unique and persistent: cluster, region and the pod (ordinal) name."""
    return {"cluster": ctx.cluster, "region": ctx.region, PROMETHEUS_REPLICA_LABEL: "${POD_NAME}"}


@dataclass(frozen=True)
class ScrapeJob:
    """A scrape job over headless Services (DNS SRV discovery: no Kubernetes API access needed)."""

    job: str
    """The job label (the component's name: rules and dashboards select it exactly)."""
    services: tuple[str, ...]
    """Headless Services whose pods are scraped."""
    port: str = "http"
    """The named port metrics are served on."""
    namespaces: tuple[str, ...] = ()
    """Other namespaces whose Services of the same names are scraped too (the global tier beside the cluster)."""
    tier_services: tuple[str, ...] = ()
    """Headless Services scraped in `namespaces` only (the global tier's enforcing query); default none."""


def alertmanager_entry(url: str) -> dict[str, Any]:
    """A prometheus.yml `alertmanagers` entry from a ruler-style URL (`[dnssrv+|dns+]http[s]://host[:port][/prefix]`),
    API v2."""
    discovery, scheme, host, prefix = split_url(url)
    entry: dict[str, Any] = {"api_version": "v2", "scheme": scheme}
    if discovery == "dnssrv":
        entry["dns_sd_configs"] = [{"names": [host], "type": "SRV"}]
    elif discovery == "dns":
        name, _, port = host.rpartition(":")
        entry["dns_sd_configs"] = [{"names": [name], "type": "A", "port": int(port)}]
    else:
        entry["static_configs"] = [{"targets": [host]}]
    if prefix:
        entry["path_prefix"] = prefix
    return entry


def prometheus_config(ctx: ClusterContext, spec: PrometheusSpec, scraped: list[ScrapeJob], *,
                      kubernetes: bool = False, alertmanagers: tuple[str, ...] = (),
                      rules: bool = False, own_namespaces: tuple[str, ...] = (),
                      node_exporter_namespace: str | None = None,
                      probes: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
                      scrape_limits: ScrapeLimitsSpec | None = None,
                      tenants: dict[str, str] | None = None) -> dict[str, Any]:
    """prometheus.yml: external labels (expanded from the environment by Prometheus 3), a job per Thanos component
    discovered through DNS SRV, the Kubernetes jobs when `kubernetes`, and the Alertmanagers (ruler-style URLs) with
    the replica label dropped so the HA pair's alerts deduplicate. With `tenants` (namespace -> tenant) every series
    carries its `tenant_id`."""
    def job(scrape: ScrapeJob) -> dict[str, Any]:
        names = [srv_record(scrape.port, service, ctx.namespace) for service in scrape.services]
        names += [srv_record(scrape.port, service, namespace) for namespace in scrape.namespaces
                  for service in (*scrape.services, *scrape.tier_services)]
        return {"job_name": scrape.job, "dns_sd_configs": [{"names": names, "type": "SRV", "refresh_interval": "30s"}],
                "relabel_configs": [{"source_labels": ["__meta_dns_name"], "regex": SRV_NAME, "target_label": label,
                                     "replacement": group} for label, group in (("service", "$1"), ("namespace", "$2"))]}

    config: dict[str, Any] = {
        "global": {"scrape_interval": spec.scrape_interval, "evaluation_interval": spec.scrape_interval,
                   "external_labels": external_labels(ctx)},
        "scrape_configs": [job(scrape) for scrape in [ScrapeJob("prometheus", (NAME,), "web"), *scraped]]}
    if kubernetes:
        config["scrape_configs"] += kubernetes_scrape_jobs(own_namespaces or (ctx.namespace,), scrape_limits)
    if node_exporter_namespace:
        config["scrape_configs"].append(node_exporter_scrape_job(node_exporter_namespace))
    if probes:
        config["scrape_configs"].append(probe_scrape_job([(ns, module, list(targets)) for ns, module, targets in probes]))
    config["scrape_configs"] = with_tenants(config["scrape_configs"], tenants)
    if rules:
        config["rule_files"] = [f"{RULES_DIR}/*.yaml"]
    if alertmanagers:
        config["alerting"] = {
            "alert_relabel_configs": [{"action": "labeldrop", "regex": PROMETHEUS_REPLICA_LABEL}],
            "alertmanagers": [alertmanager_entry(url) for url in alertmanagers]}
    return config


def prometheus_args(spec: PrometheusSpec) -> list[str]:
    """Prometheus flags: equal min and max block durations (no local compaction, the sidecar uploads every block) and
    lifecycle for the sidecar's reloader. No admin API: the sidecar reads external labels from /api/v1/status/config,
    and the admin API would open TSDB deletes and snapshots to every pod allowed to reach Prometheus."""
    return [f"--config.file={CONFIG_DIR}/prometheus.yml", f"--storage.tsdb.path={DATA_DIR}",
            f"--storage.tsdb.retention.time={spec.retention}",
            f"--storage.tsdb.min-block-duration={BLOCK_DURATION}",
            f"--storage.tsdb.max-block-duration={BLOCK_DURATION}",
            f"--web.listen-address=0.0.0.0:{PROMETHEUS_PORT}", "--web.enable-lifecycle"]


def sidecar_args(rules: bool = False) -> list[str]:
    """Thanos sidecar flags: serve the local TSDB over gRPC, upload blocks, reload Prometheus when its config (or
    its rules) change."""
    return thanos_args("sidecar", [
        f"--grpc-address=0.0.0.0:{GRPC_PORT}", f"--http-address=0.0.0.0:{HTTP_PORT}", "--log.format=logfmt",
        f"--prometheus.url=http://localhost:{PROMETHEUS_PORT}", f"--tsdb.path={DATA_DIR}", OBJSTORE_FLAG,
        f"--reloader.config-file={CONFIG_DIR}/prometheus.yml", *([f"--reloader.rule-dir={RULES_DIR}"] if rules else [])])


@dataclass(frozen=True)
class Observed:
    """What a cluster's Prometheus scrapes, evaluates and sends alerts to."""

    scraped: list[ScrapeJob]
    """The Thanos (and cache exporter) jobs."""
    kubernetes: bool = False
    """Also scrape the cluster through the Kubernetes API (needs the read-only ClusterRole)."""
    alertmanagers: tuple[str, ...] = ()
    """Where alerts go (ruler-style URLs): the cluster's Alertmanager and the configured ones."""
    own_alertmanager: bool = False
    """The cluster runs its own Alertmanager (operator mode names it by Service)."""
    rule_groups: tuple[dict[str, Any], ...] = ()
    """The platform's rule groups, evaluated here."""
    own_namespaces: tuple[str, ...] = ()
    """The stack's namespaces on this Kubernetes cluster: only their pods name a job after themselves."""
    node_exporter_namespace: str | None = None
    """Also scrape node-exporter there, as its scrape user (the password mounted from its Secret); default none."""
    probes: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    """The TLS probes: (namespace of the exporter, module, targets)."""
    scrape_limits: ScrapeLimitsSpec | None = None
    """Limits on each target of the opt-in workload jobs (default ScrapeLimitsSpec's)."""
    tenants: dict[str, str] | None = None
    """With tenants configured, the tenant owning each workload namespace (every series gets a `tenant_id`); default
    None (no tenant label)."""


def sidecar_endpoints(replicas: int, namespace: str, *, operator: bool = False) -> list[str]:
    """The sidecar StoreAPI of every Prometheus replica, by its pod name: our StatefulSet's, or the one
    prometheus-operator makes (`prometheus-<name>-<i>` under its `prometheus-operated` Service)."""
    if operator:
        return [pod_address(f"prometheus-{NAME}", i, "prometheus-operated", namespace) for i in range(replicas)]
    return [pod_address(NAME, i, NAME, namespace) for i in range(replicas)]


def sidecar_service(ctx: ClusterContext, selector: dict[str, str]) -> dict[str, Any]:
    """The sidecar's own headless Service: query discovers every replica's StoreAPI through its SRV records."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": ctx.metadata("thanos-sidecar", "sidecar"),
            "spec": {"clusterIP": "None", "selector": selector,
                     "ports": [{"name": p["name"], "port": p["containerPort"], "targetPort": p["name"],
                                "protocol": "TCP"} for p in thanos_ports()]}}


def rules_config_map(ctx: ClusterContext, groups: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """The platform's rules as a file Prometheus loads."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(RULES_CONFIG_MAP, "prometheus"),
            "data": {"platform.yaml": yaml.safe_dump({"groups": list(groups)}, sort_keys=False)}}


def build_prometheus(ctx: ClusterContext, spec: PrometheusSpec, observed: Observed,
                     pod_labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """ConfigMaps (config, rules), StatefulSet of the HA pair (Prometheus + sidecar, one PVC each), Services, PDB,
    and the read-only ClusterRole when it discovers through the Kubernetes API."""
    component = "prometheus"
    selector = ctx.selector(component)
    rules = bool(observed.rule_groups)
    web_port = {"name": "web", "containerPort": PROMETHEUS_PORT, "protocol": "TCP"}
    data: dict[str, Any] = {"name": "data", "mountPath": DATA_DIR}
    config = {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}
    mounts = [data, config, *([{"name": "rules", "mountPath": RULES_DIR, "readOnly": True}] if rules else [])]
    scrape_user = [{"name": "node-exporter", "mountPath": NODE_EXPORTER_PASSWORD_DIR, "readOnly": True}] \
        if observed.node_exporter_namespace else []
    prometheus = container("prometheus", spec.image, prometheus_args(spec), spec.resources, ports=[web_port],
                           mounts=mounts + scrape_user, env=downward_env(), probes=http_probes("web", startup_seconds=900),
                           go=False)
    sidecar = container("thanos-sidecar", ctx.image, sidecar_args(rules), spec.sidecar_resources,
                        ports=thanos_ports(), mounts=[*mounts, objstore_mount()], env=downward_env(),
                        probes=http_probes())
    volumes = [{"name": "config", "configMap": {"name": NAME}}, objstore_volume()]
    if rules:
        volumes.append({"name": "rules", "configMap": {"name": RULES_CONFIG_MAP}})
    if scrape_user:
        volumes.append({"name": "node-exporter", "secret": {"secretName": NODE_EXPORTER_SCRAPE_SECRET, "defaultMode": 0o440,
                                                            "items": [{"key": "password", "path": "password"}]}})
    pod = pod_spec(service_name("prometheus"), [prometheus, sidecar], selector=selector, replicas=spec.replicas,
                   zone_spread=ctx.zone_spread, node_spread=ctx.node_spread, volumes=volumes, grace_seconds=600)
    if observed.kubernetes:
        pod["automountServiceAccountToken"] = True  # discovery and the kubelet's authorisation need its token
    text = yaml.safe_dump(prometheus_config(ctx, spec, observed.scraped, kubernetes=observed.kubernetes,
                                            alertmanagers=observed.alertmanagers, rules=rules,
                                            own_namespaces=observed.own_namespaces,
                                            node_exporter_namespace=observed.node_exporter_namespace,
                                            probes=observed.probes, scrape_limits=observed.scrape_limits,
                                            tenants=observed.tenants), sort_keys=False)
    objects = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(NAME, component),
                "data": {"prometheus.yml": text}}]
    if rules:
        objects.append(rules_config_map(ctx, observed.rule_groups))
    if observed.kubernetes:
        objects += cluster_role(ctx, "thanos-prometheus", component, discovery_rules(), service_name(component))
    objects += workload_objects(ctx, component, NAME, kind="StatefulSet", replicas=spec.replicas, pod=pod,
                                ports=[web_port], claims=[volume_claim("data", spec.storage_size, spec.storage_class)],
                                pod_labels=pod_labels)
    objects.append(sidecar_service(ctx, selector))
    return objects


@dataclass(frozen=True)
class PrometheusArgs:
    """What a Prometheus pair is registered from."""

    objects: list[dict[str, Any]]
    """Its Kubernetes objects (`build_prometheus`, or `build_operator_prometheus` in operator mode)."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What each of its objects waits for, besides the objects it uses (default nothing)."""


class Prometheus(ManifestComponent):
    """Prometheus HA pair with the Thanos sidecar (or, in operator mode, the custom resources that make one)."""

    def __init__(self, name: str, args: PrometheusArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:k8s:Prometheus", name, args.objects, opts, args.depends_on)
