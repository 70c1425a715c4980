"""Operator mode: for clusters that already run prometheus-operator (kube-prometheus-stack), the custom resources
that make the operator run our Prometheus pair with the Thanos sidecar, scrape every component and evaluate our
rules: a `Prometheus` with `spec.thanos`, a `ServiceMonitor` per job and a `PrometheusRule`."""

from typing import Any

import yaml

from components.observability.alertmanager import NAME as ALERTMANAGER_NAME
from components.observability.collection import (
    KSM_NAME,
    NODE_EXPORTER_NAME,
    NODE_EXPORTER_SCRAPE_SECRET,
    cluster_role,
    discovery_rules,
    kubernetes_scrape_jobs,
    tenant_relabelling,
    with_tenants,
)
from components.platform.common import (
    OBJSTORE_KEY,
    OBJSTORE_SECRET,
    PROMETHEUS_PORT,
    PROMETHEUS_REPLICA_LABEL,
    container_security_context,
    pdb_spec,
    pod_security_context,
    resource_requirements,
    service_name,
    spreading,
)
from components.platform.kube import ClusterContext
from components.observability.tls_probe import probe_scrape_job
from components.thanos.prometheus import NAME, Observed, ScrapeJob, sidecar_service
from config.thanos import PrometheusSpec

MONITORING = "monitoring.coreos.com/v1"
OPERATOR_NAME_LABEL = "operator.prometheus.io/name"
ADDITIONAL_SCRAPE_SECRET = "thanos-prometheus-kubernetes-jobs"
RULE_NAME = "thanos-platform-rules"
TRACING_SECRET = "thanos-sidecar-tracing"
"""The sidecar's `--tracing.config` when the stack traces: the Prometheus resource takes it only from a Secret."""
TRACING_KEY = "tracing.yaml"


def _selected_by(ctx: ClusterContext) -> dict[str, str]:
    """The labels our Prometheus selects its ServiceMonitors and PrometheusRules by (nobody else's)."""
    return {"app.kubernetes.io/part-of": "thanos", "thanos.io/prometheus": f"{ctx.namespace}.{ctx.cluster}"}


def _selected_metadata(ctx: ClusterContext, name: str) -> dict[str, Any]:
    """metadata of an object our Prometheus selects."""
    metadata = ctx.metadata(name, "prometheus")
    metadata["labels"] = {**metadata["labels"], **_selected_by(ctx)}
    return metadata


def service_monitor(ctx: ClusterContext, scrape: ScrapeJob, interval: str, namespace: str | None = None,
                    basic_auth_secret: str | None = None, tenants: bool = False) -> dict[str, Any]:
    """A ServiceMonitor over exactly the job's Services (by name: a component's ClusterIP Service carries the same
    labels as its headless one and would scrape every pod twice), the job label set to the component's name (the
    operator would name it after the Service); with `basic_auth_secret` (keys username and password, in this
    namespace) as that user; with `tenants` its series carry the default tenant (the platform's own)."""
    endpoint: dict[str, Any] = {"port": scrape.port, "interval": interval, "relabelings": [
        {"action": "keep", "sourceLabels": ["__meta_kubernetes_service_name"],
         "regex": "|".join((*scrape.services, *scrape.tier_services))},
        {"action": "replace", "targetLabel": "job", "replacement": scrape.job},
        *({"action": "replace", "targetLabel": rule["target_label"], "replacement": rule["replacement"]}
          for rule in (tenant_relabelling(scrape.job, {}) if tenants else []))]}
    if basic_auth_secret:
        endpoint["basicAuth"] = {key: {"name": basic_auth_secret, "key": key} for key in ("username", "password")}
    return {"apiVersion": MONITORING, "kind": "ServiceMonitor", "metadata": _selected_metadata(ctx, scrape.job),
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/instance": ctx.instance_label}},
                     "namespaceSelector": {"matchNames": [namespace or ctx.namespace, *scrape.namespaces]},
                     "endpoints": [endpoint]}}


def prometheus_resource(ctx: ClusterContext, spec: PrometheusSpec, observed: Observed,
                        pod_labels: dict[str, str] | None) -> dict[str, Any]:
    """The `Prometheus`: the HA pair with the Thanos sidecar shipping to our bucket Secret, the same external and
    replica labels as the managed pair, our ServiceMonitors and rules only, our Alertmanager."""
    selected = {"matchLabels": _selected_by(ctx)}
    own_namespace = {"matchLabels": {"kubernetes.io/metadata.name": ctx.namespace}}
    body: dict[str, Any] = {
        "replicas": spec.replicas, "image": spec.image, "retention": spec.retention,
        "scrapeInterval": spec.scrape_interval, "evaluationInterval": spec.scrape_interval,
        "externalLabels": {"cluster": ctx.cluster, "region": ctx.region},
        "replicaExternalLabelName": PROMETHEUS_REPLICA_LABEL, "prometheusExternalLabelName": "",
        "serviceAccountName": service_name("prometheus"), "automountServiceAccountToken": True,
        "podMetadata": {"labels": {**ctx.labels("prometheus"), **(pod_labels or {})}},
        "securityContext": pod_security_context(), "resources": resource_requirements(spec.resources),
        "storage": {"volumeClaimTemplate": {"spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": spec.storage_size}},
            **({"storageClassName": spec.storage_class} if spec.storage_class else {})}}},
        # Our monitors and rules live in our namespace: selecting from every namespace (`{}`) would let any namespace
        # add a ServiceMonitor that makes Prometheus send a token file it can read (its bucket writer identity) to
        # any endpoint; arbitrary file access is denied for the same reason.
        "serviceMonitorSelector": selected, "serviceMonitorNamespaceSelector": own_namespace,
        "podMonitorNamespaceSelector": own_namespace, "probeNamespaceSelector": own_namespace,
        "scrapeConfigNamespaceSelector": own_namespace, "arbitraryFSAccessThroughSMs": {"deny": True},
        "ruleSelector": selected, "ruleNamespaceSelector": own_namespace,
        "thanos": {"image": ctx.image, "objectStorageConfig": {"name": OBJSTORE_SECRET, "key": OBJSTORE_KEY},
                   "resources": resource_requirements(spec.sidecar_resources),
                   **({"tracingConfig": {"name": TRACING_SECRET, "key": TRACING_KEY}} if ctx.tracing else {})},
        "containers": [{"name": "thanos-sidecar", "securityContext": container_security_context()}],
        **spreading({OPERATOR_NAME_LABEL: NAME}, spec.replicas, ctx.zone_spread, ctx.node_spread),
    }
    if observed.own_alertmanager:
        body["alerting"] = {"alertmanagers": [{"namespace": ctx.namespace, "name": ALERTMANAGER_NAME, "port": "web",
                                               "apiVersion": "v2"}]}
    if observed.kubernetes or observed.probes:
        body["additionalScrapeConfigs"] = {"name": ADDITIONAL_SCRAPE_SECRET, "key": "kubernetes.yaml"}
    metadata = ctx.metadata(NAME, "prometheus")
    return {"apiVersion": MONITORING, "kind": "Prometheus", "metadata": metadata, "spec": body}


def build_operator_prometheus(ctx: ClusterContext, spec: PrometheusSpec, observed: Observed,
                              pod_labels: dict[str, str] | None, *, node_exporter_namespace: str | None,
                              kube_state_metrics: bool) -> list[dict[str, Any]]:
    """The Prometheus, its ServiceMonitors, the PrometheusRule, the Services query and the `prometheus` job use,
    and the Kubernetes jobs (as additional scrape configs) with their read-only ClusterRole."""
    operated = {OPERATOR_NAME_LABEL: NAME}
    objects = [prometheus_resource(ctx, spec, observed, pod_labels)]
    if ctx.tracing:
        attributes = {"cluster": ctx.cluster, "k8s.namespace.name": ctx.namespace,
                      "k8s.statefulset.name": f"prometheus-{NAME}"}  # the operator's name for the StatefulSet
        objects.append({"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(TRACING_SECRET, "prometheus"),
                        "type": "Opaque", "stringData": {
                            TRACING_KEY: yaml.safe_dump(ctx.tracing.thanos_config("thanos-sidecar", attributes))}})
    web = {"apiVersion": "v1", "kind": "Service", "metadata": ctx.metadata(NAME, "prometheus"),
           "spec": {"clusterIP": "None", "selector": operated,
                    "ports": [{"name": "web", "port": PROMETHEUS_PORT, "targetPort": "web", "protocol": "TCP"}]}}
    objects += [web, sidecar_service(ctx, operated)]
    if spec.replicas > 1:  # the Prometheus resource has no disruption budget of its own
        objects.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": ctx.metadata(NAME, "prometheus"),
                        "spec": pdb_spec(operated)})
    interval = spec.scrape_interval
    tenants = observed.tenants is not None
    monitors = [service_monitor(ctx, scrape, interval, tenants=tenants)
                for scrape in [ScrapeJob("prometheus", (NAME,), "web"), *observed.scraped]]
    if kube_state_metrics:
        monitors.append(service_monitor(ctx, ScrapeJob(KSM_NAME, (KSM_NAME,), "metrics"), interval, tenants=tenants))
    if node_exporter_namespace:
        monitors.append(service_monitor(ctx, ScrapeJob(NODE_EXPORTER_NAME, (NODE_EXPORTER_NAME,), "metrics"), interval,
                                        node_exporter_namespace, NODE_EXPORTER_SCRAPE_SECRET, tenants=tenants))
    objects += monitors
    if observed.rule_groups:
        objects.append({"apiVersion": MONITORING, "kind": "PrometheusRule", "metadata": _selected_metadata(ctx, RULE_NAME),
                        "spec": {"groups": list(observed.rule_groups)}})
    if observed.kubernetes or observed.probes:
        jobs = kubernetes_scrape_jobs(observed.own_namespaces or (ctx.namespace,), observed.scrape_limits) \
            if observed.kubernetes else []
        if observed.probes:  # static targets: what a Probe resource would render, without another selector to open
            jobs.append(probe_scrape_job([(ns, module, list(targets)) for ns, module, targets in observed.probes]))
        jobs = with_tenants(jobs, observed.tenants)
        objects.append({"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(ADDITIONAL_SCRAPE_SECRET, "prometheus"),
                        "type": "Opaque", "stringData": {"kubernetes.yaml": yaml.safe_dump(jobs, sort_keys=False)}})
    # The operator turns every ServiceMonitor into kubernetes_sd_configs: Prometheus discovers through the API server
    # whatever it scrapes, so it always mounts its token and holds the read-only discovery role.
    objects += cluster_role(ctx, "thanos-prometheus", "prometheus", discovery_rules(), service_name("prometheus"))
    return objects
