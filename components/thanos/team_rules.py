"""Rules from teams: prometheus-operator `ThanosRuler`s that evaluate the `PrometheusRule` objects of the selected
namespaces (one per tenant with tenants, for its own namespaces; one for `team-rules.namespaces`).

Why the operator and not a sync sidecar: it validates each PrometheusRule on its own and skips an invalid one (an
`InvalidConfiguration` Event, a log line), where a sidecar that copies files hands the ruler one team's broken file,
and Prometheus' rule manager then keeps the old rules of every file (and a restarted ruler exits). No maintained
sidecar syncs PrometheusRules (kiwigrid's k8s-sidecar syncs ConfigMaps and Secrets). Its config-reloader reloads the
ruler when the rendered rules change.

What a team ruler may do: read its namespace's series (`enforcedNamespaceLabel` puts `namespace="<its own>"` into
every selector of a team's rule and onto its alerts), write its results to the cluster's receive with the writer
certificate of its tenant (so they land in that tenant), send alerts to the cluster's Alertmanagers. No bucket and
no Kubernetes API token."""

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.platform import names
from components.platform.common import (
    HTTP_PORT,
    container_security_context,
    inline_config,
    pod_security_context,
    resource_requirements,
    spreading,
)
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.tls import CA_MOUNT, CERT_MOUNT, cert_mounts, cert_volumes
from components.thanos.ruler import alertmanagers_config
from config.tenancy import TenancySpec
from config.thanos import TeamRulesSpec

MONITORING = "monitoring.coreos.com/v1"
COMPONENT = "team-ruler"
NAME = "thanos-team-rules"
CONFIG_SECRET = "thanos-team-rules-config"
SERVICE_ACCOUNT = "thanos-team-ruler"
NAMESPACE_LABEL = "namespace"
"""The label the operator enforces on a team's rules: the PrometheusRule's own namespace."""
OPERATOR_NAME_LABEL = "thanos-ruler"
"""The label prometheus-operator sets on a ThanosRuler's pods: its name."""


def team_ruler_name(tenant: str | None) -> str:
    """The ThanosRuler of a tenant's namespaces, or (None) of team-rules.namespaces."""
    return f"{NAME}-{tenant}" if tenant else NAME


def team_ruler_names(team: TeamRulesSpec, tenancy: TenancySpec) -> list[str]:
    """The ThanosRulers a cluster with `team` rules runs (none when they are off)."""
    return [name for name, _, _ in team_rulers(team, tenancy, "", str)] if team.enabled else []


def team_rulers(team: TeamRulesSpec, tenancy: TenancySpec, writer_secret: str,
                tenant_secret: Any) -> list[tuple[str, list[str], str]]:
    """(ThanosRuler name, the namespaces it selects, the Secret of its remote-write client certificate) for every
    team ruler: one per tenant that has namespaces (its own certificate), one for team-rules.namespaces (the
    platform's writer certificate)."""
    rulers = [(team_ruler_name(t.name), sorted(t.namespaces), tenant_secret(t.name)) for t in tenancy.tenants
              if t.namespaces]
    if team.namespaces:
        rulers.append((team_ruler_name(None), sorted(team.namespaces), writer_secret))
    return rulers


def query_config(query_address: str) -> list[dict[str, Any]]:
    """`--query.config` entries: the cluster's query over HTTP (the address may be a `dnssrv+` name)."""
    return [{"static_configs": [query_address], "scheme": "http"}]


def tracing_key(name: str) -> str:
    """The key of a team ruler's `--tracing.config` in the configuration Secret."""
    return f"tracing-{name}.yaml"


def config_secret(ctx: ClusterContext, query_address: str, alertmanagers: list[str],
                  rulers: list[str]) -> dict[str, Any]:
    """The query and Alertmanager configuration every team ruler of the cluster reads, and when the stack traces
    each ruler's tracing configuration (the ThanosRuler takes them only from a Secret)."""
    data = {"query.yaml": inline_config(query_config(query_address)),
            "alertmanagers.yaml": inline_config(alertmanagers_config(alertmanagers))}
    if ctx.tracing is not None:
        for name in rulers:
            attributes = {"cluster": ctx.cluster, "k8s.namespace.name": ctx.namespace,
                          "k8s.statefulset.name": f"thanos-ruler-{name}"}
            data[tracing_key(name)] = inline_config(ctx.tracing.thanos_config("thanos-ruler", attributes))
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": ctx.metadata(CONFIG_SECRET, COMPONENT),
            "stringData": data}


def remote_write(url: str) -> dict[str, Any]:
    """The ruler's one remote-write: the routers, mTLS with the client certificate mounted at CERT_MOUNT (its
    Subject O is the tenant the routers file the results under) and the namespace's CA bundle at CA_MOUNT.

    By file, not by Secret reference: prometheus-operator v0.85.0 writes a ThanosRuler's remote-write TLS assets
    as /etc/prometheus/certs/... (Prometheus' folder, pkg/prometheus/promcfg.go) but mounts them at
    /etc/thanos/certs (pkg/thanos/statefulset.go), and the ruler exits at start ("unable to read CA cert"; found by
    tests/test_real_team_rules.py)."""
    return {"url": url, "name": "receive", "tlsConfig": {
        "caFile": f"{CA_MOUNT}/ca.crt", "certFile": f"{CERT_MOUNT}/tls.crt", "keyFile": f"{CERT_MOUNT}/tls.key",
        "minVersion": "TLS13"}}


def thanos_ruler(ctx: ClusterContext, team: TeamRulesSpec, name: str, namespaces: list[str], client_secret: str,
                 remote_write_url: str, evaluation_interval: str) -> dict[str, Any]:
    """A ThanosRuler evaluating the PrometheusRules of `namespaces` (those carrying team-rules.rule-labels)."""
    labels = ctx.labels(COMPONENT)
    spec: dict[str, Any] = {
        "image": ctx.image, "replicas": team.replicas, "resources": resource_requirements(team.resources),
        "evaluationInterval": evaluation_interval, "labels": {"cluster": ctx.cluster, "region": ctx.region},
        "enforcedNamespaceLabel": NAMESPACE_LABEL,
        "ruleSelector": {"matchLabels": dict(team.rule_labels)},
        "ruleNamespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]},
        "queryConfig": {"name": CONFIG_SECRET, "key": "query.yaml"},
        "alertmanagersConfig": {"name": CONFIG_SECRET, "key": "alertmanagers.yaml"},
        "remoteWrite": [remote_write(remote_write_url)],
        "volumes": cert_volumes(client_secret), "volumeMounts": cert_mounts(),
        "serviceAccountName": SERVICE_ACCOUNT,
        **({"tracingConfig": {"name": CONFIG_SECRET, "key": tracing_key(name)}} if ctx.tracing else {}),
        # The operator sets app.kubernetes.io/name and instance itself; the role and part-of labels are what the
        # namespace's NetworkPolicies select on. No workload identity label: a team ruler never reaches the bucket.
        "podMetadata": {"labels": {"app.kubernetes.io/component": labels["app.kubernetes.io/component"],
                                   "app.kubernetes.io/part-of": labels["app.kubernetes.io/part-of"]}},
        "securityContext": pod_security_context(),
        "containers": [{"name": "thanos-ruler", "securityContext": container_security_context()},
                       {"name": "config-reloader", "securityContext": container_security_context()}],
        **spreading({OPERATOR_NAME_LABEL: name}, team.replicas, ctx.zone_spread, ctx.node_spread),
    }
    return {"apiVersion": MONITORING, "kind": "ThanosRuler", "metadata": ctx.metadata(name, COMPONENT), "spec": spec}


def scrape_service(ctx: ClusterContext) -> dict[str, Any]:
    """The team rulers' own headless Service, which the cluster's Prometheus scrapes (job thanos-team-ruler). The
    operator's `thanos-ruler-operated` selects every pod named thanos-ruler, the platform's ruler too."""
    selector = {"app.kubernetes.io/name": "thanos-ruler", "app.kubernetes.io/component": COMPONENT}
    return {"apiVersion": "v1", "kind": "Service", "metadata": ctx.metadata(names.TEAM_RULER, COMPONENT),
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": False, "selector": selector,
                     "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": "web", "protocol": "TCP"}]}}


def disruption_budget(ctx: ClusterContext, name: str, replicas: int) -> dict[str, Any]:
    """At most one replica of a team ruler down at a time (the operator makes no PodDisruptionBudget)."""
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": ctx.metadata(name, COMPONENT),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {OPERATOR_NAME_LABEL: name}}}}


def build_team_rules(ctx: ClusterContext, team: TeamRulesSpec, tenancy: TenancySpec, *, query_address: str,
                     alertmanagers: list[str], remote_write_url: str, writer_secret: str, tenant_secret: Any,
                     evaluation_interval: str) -> list[dict[str, Any]]:
    """A cluster's team rulers: their shared configuration Secret, a ServiceAccount without a token, the headless
    Service Prometheus scrapes, and per ruler the ThanosRuler and (replicated) its PodDisruptionBudget."""
    rulers = team_rulers(team, tenancy, writer_secret, tenant_secret)
    objects = [config_secret(ctx, query_address, alertmanagers, [name for name, _, _ in rulers]),
               {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": ctx.metadata(SERVICE_ACCOUNT, COMPONENT),
                "automountServiceAccountToken": False}, scrape_service(ctx)]
    for name, namespaces, secret in rulers:
        objects.append(thanos_ruler(ctx, team, name, namespaces, secret, remote_write_url, evaluation_interval))
        if team.replicas > 1:
            objects.append(disruption_budget(ctx, name, team.replicas))
    return objects


@dataclass(frozen=True)
class TeamRulesArgs:
    """What a cluster's team rulers are registered from."""

    objects: list[dict[str, Any]]
    """Their Kubernetes objects (`build_team_rules`)."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What each of their objects waits for, besides the objects it uses (default nothing)."""


class TeamRules(ManifestComponent):
    """A cluster's team rulers (prometheus-operator ThanosRulers)."""

    def __init__(self, name: str, args: TeamRulesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:k8s:TeamRules", name, args.objects, opts, args.depends_on)
