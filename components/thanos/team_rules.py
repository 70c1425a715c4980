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
from typing import Any, Callable

import pulumi
import yaml

from components.platform import names
from components.platform.common import (
    HTTP_PORT,
    container_security_context,
    inline_config,
    pod_security_context,
    resource_requirements,
    service_name,
    spreading,
)
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.names import service_address
from components.platform.tls import BUNDLE_FILES, CA_MOUNT, CERT_MOUNT, cert_mounts, cert_volumes
from components.thanos.query import build_query
from components.thanos.receive import TENANT_CERTIFICATE_FIELD
from components.thanos.ruler import alertmanagers_config
from config.global_view import GLOBAL_RULER_LABEL
from config.tenancy import TENANT_LABEL, TenancySpec
from config.thanos import RULE_SCOPE_LABEL, TEAM_RULES_COPY_LABEL, QuerySpec, TeamRulesSpec

MONITORING = "monitoring.coreos.com/v1"
COMPONENT = "team-ruler"
NAME = "thanos-team-rules"
GLOBAL_NAME = "thanos-global-team-rules"
CONFIG_SECRET = "thanos-team-rules-config"
SERVICE_ACCOUNT = "thanos-team-ruler"
NAMESPACE_LABEL = "namespace"
"""The label the operator enforces on a team's rules: the PrometheusRule's own namespace."""
OPERATOR_NAME_LABEL = "thanos-ruler"
"""The label prometheus-operator sets on a ThanosRuler's pods: its name."""
GLOBAL_SCOPE = "global"
"""The value of RULE_SCOPE_LABEL that sends a PrometheusRule to the global team rulers in the host (and standby)
cluster, over the global query (global view on); every other one goes to its own cluster's team rulers."""


@dataclass(frozen=True)
class TeamRuler:
    """One ThanosRuler of team rules."""

    name: str
    """The ThanosRuler's name."""
    namespaces: list[str]
    """The namespaces whose PrometheusRules it evaluates."""
    client_secret: str
    """The Secret of its remote-write client certificate (its tenant's, or the platform's writer)."""
    global_scope: bool = False
    """Evaluates the global-scope rules over the global query (default: its cluster's, over the cluster's query)."""


def team_rulers(team: TeamRulesSpec, tenancy: TenancySpec, writer_secret: str, tenant_secret: Callable[[str], str],
                *, global_scope: bool = False) -> list[TeamRuler]:
    """The team rulers of a cluster (none when team rules are off): one per tenant that has namespaces (its own
    certificate), one for team-rules.namespaces (the platform's writer certificate); with `global_scope` (the cluster
    runs the global tier) the same again for the global-scope rules."""
    if not team.enabled:
        return []
    owners = [(t.name, sorted(t.namespaces), tenant_secret(t.name)) for t in tenancy.tenants if t.namespaces]
    if team.namespaces:
        owners.append(("", sorted(team.namespaces), writer_secret))
    rulers = []
    for scope, prefix in ((False, NAME), *(((True, GLOBAL_NAME),) if global_scope else ())):
        rulers += [TeamRuler(f"{prefix}-{tenant}" if tenant else prefix, namespaces, secret, scope)
                   for tenant, namespaces, secret in owners]
    return rulers


TEAM_QUERY = "query-team-rules"
"""With tenants, the query a cluster's team rulers read through (component; `thanos-query-team-rules`)."""
GLOBAL_TEAM_QUERY = "query-global-team-rules"
"""With tenants, the query the global-scope team rulers read through, over the global query's gRPC."""
TEAM_QUERY_TLS_SECRET = "thanos-query-team-rules-tls"
TEAM_QUERY_WEB_CONFIG = "thanos-query-team-rules-web"


def team_query_flags() -> tuple[str, ...]:
    """The enforcing query's tenancy: the tenant is the Subject O of the client certificate the ruler presents (the
    one it writes with; the platform's own is `default-tenant`), never a header, and every selector gets
    `tenant_id="<it>"`; a request without a certificate is refused."""
    return ("--query.enforce-tenancy", f"--query.tenant-certificate-field={TENANT_CERTIFICATE_FIELD}",
            f"--query.tenant-label-name={TENANT_LABEL}")


def team_query_web_config() -> dict[str, Any]:
    """The enforcing query's HTTP: TLS with its server certificate, a client certificate of this cluster's writers CA
    verified when given (the kubelet's probes give none; every query API call needs one, or tenancy refuses it)."""
    return {"tls_server_config": {"cert_file": f"{CERT_MOUNT}/tls.crt", "key_file": f"{CERT_MOUNT}/tls.key",
                                  "client_ca_file": f"{CA_MOUNT}/{BUNDLE_FILES['writers']}",
                                  "client_auth_type": "VerifyClientCertIfGiven", "min_version": "TLS13"}}


def team_query_objects(ctx: ClusterContext, spec: QuerySpec, component: str, sd_config: dict[str, Any],
                       replica_labels: list[str]) -> list[dict[str, Any]]:
    """One enforcing query (`component`): the cluster's StoreAPIs, or the global query's gRPC for the global scope."""
    return build_query(ctx, spec, sd_config, replica_labels, extra_flags=team_query_flags(),
                       tls_secret=TEAM_QUERY_TLS_SECRET, component=component, web_config=TEAM_QUERY_WEB_CONFIG)


def team_query_web_config_map(ctx: ClusterContext) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(TEAM_QUERY_WEB_CONFIG, TEAM_QUERY),
            "data": {"web.yaml": yaml.safe_dump(team_query_web_config(), sort_keys=True)}}


def team_query_address(component: str, namespace: str) -> str:
    """host:port of an enforcing query's HTTPS."""
    return service_address(service_name(component), namespace, HTTP_PORT)


def query_config(query_address: str, tenancy: bool = False) -> list[dict[str, Any]]:
    """`--query.config` entries: a query over HTTP (the address may be a `dnssrv+` name); with `tenancy`, an
    enforcing query over HTTPS with the ruler's client certificate (mounted where cert_mounts puts it)."""
    if not tenancy:
        return [{"static_configs": [query_address], "scheme": "http"}]
    return [{"static_configs": [query_address], "scheme": "https", "http_config": {"tls_config": {
        "cert_file": f"{CERT_MOUNT}/tls.crt", "key_file": f"{CERT_MOUNT}/tls.key", "ca_file": f"{CA_MOUNT}/ca.crt"}}}]


def tracing_key(name: str) -> str:
    """The key of a team ruler's `--tracing.config` in the configuration Secret."""
    return f"tracing-{name}.yaml"


def config_secret(ctx: ClusterContext, query_address: str, global_query_address: str | None, alertmanagers: list[str],
                  rulers: list[TeamRuler], tenancy: bool = False) -> dict[str, Any]:
    """The query (and global query) and Alertmanager configuration the cluster's team rulers read, and when the stack
    traces each ruler's tracing configuration (the ThanosRuler takes them only from a Secret)."""
    data = {"query.yaml": inline_config(query_config(query_address, tenancy)),
            "alertmanagers.yaml": inline_config(alertmanagers_config(alertmanagers))}
    if global_query_address:
        data["global-query.yaml"] = inline_config(query_config(global_query_address, tenancy))
    if ctx.tracing is not None:
        for ruler in rulers:
            attributes = {"cluster": ctx.cluster, "k8s.namespace.name": ctx.namespace,
                          "k8s.statefulset.name": f"thanos-ruler-{ruler.name}"}
            data[tracing_key(ruler.name)] = inline_config(ctx.tracing.thanos_config("thanos-ruler", attributes))
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


def thanos_ruler(ctx: ClusterContext, team: TeamRulesSpec, ruler: TeamRuler, remote_write_url: str,
                 evaluation_interval: str) -> dict[str, Any]:
    """A ThanosRuler evaluating the PrometheusRules of its namespaces that carry team-rules.rule-labels: those of
    its scope (global or its cluster's)."""
    labels = ctx.labels(COMPONENT)
    scope = {"key": RULE_SCOPE_LABEL, "operator": "In" if ruler.global_scope else "NotIn", "values": [GLOBAL_SCOPE]}
    external = ({GLOBAL_RULER_LABEL: "global", TEAM_RULES_COPY_LABEL: ctx.cluster} if ruler.global_scope
                else {"cluster": ctx.cluster, "region": ctx.region})
    spec: dict[str, Any] = {
        "image": ctx.image, "replicas": team.replicas, "resources": resource_requirements(team.resources),
        "evaluationInterval": evaluation_interval, "labels": external,
        **({"alertDropLabels": [TEAM_RULES_COPY_LABEL]} if ruler.global_scope else {}),
        "enforcedNamespaceLabel": NAMESPACE_LABEL,
        "ruleSelector": {"matchLabels": dict(team.rule_labels), "matchExpressions": [scope]},
        "ruleNamespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ruler.namespaces}]},
        "queryConfig": {"name": CONFIG_SECRET, "key": "global-query.yaml" if ruler.global_scope else "query.yaml"},
        "alertmanagersConfig": {"name": CONFIG_SECRET, "key": "alertmanagers.yaml"},
        "remoteWrite": [remote_write(remote_write_url)],
        "volumes": cert_volumes(ruler.client_secret), "volumeMounts": cert_mounts(),
        "serviceAccountName": SERVICE_ACCOUNT,
        **({"tracingConfig": {"name": CONFIG_SECRET, "key": tracing_key(ruler.name)}} if ctx.tracing else {}),
        # The operator sets app.kubernetes.io/name and instance itself; the role and part-of labels are what the
        # namespace's NetworkPolicies select on. No workload identity label: a team ruler never reaches the bucket.
        "podMetadata": {"labels": {"app.kubernetes.io/component": labels["app.kubernetes.io/component"],
                                   "app.kubernetes.io/part-of": labels["app.kubernetes.io/part-of"]}},
        "securityContext": pod_security_context(),
        "containers": [{"name": "thanos-ruler", "securityContext": container_security_context()},
                       {"name": "config-reloader", "securityContext": container_security_context()}],
        **spreading({OPERATOR_NAME_LABEL: ruler.name}, team.replicas, ctx.zone_spread, ctx.node_spread),
    }
    return {"apiVersion": MONITORING, "kind": "ThanosRuler", "metadata": ctx.metadata(ruler.name, COMPONENT),
            "spec": spec}


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


def build_team_rules(ctx: ClusterContext, team: TeamRulesSpec, rulers: list[TeamRuler], *, query_address: str,
                     global_query_address: str | None, alertmanagers: list[str], remote_write_url: str,
                     evaluation_interval: str, enforcing: list[tuple[str, dict[str, Any]]] | None = None,
                     replica_labels: list[str] | None = None) -> list[dict[str, Any]]:
    """A cluster's team rulers (`team_rulers`): their shared configuration Secret, a ServiceAccount without a token,
    the headless Service Prometheus scrapes, and per ruler the ThanosRuler and (replicated) its PodDisruptionBudget.
    With tenants (`enforcing`: (component, StoreAPI SD config) of each enforcing query), the rulers read through
    those queries, each scoping every query to the ruler's tenant; `query_address` and `global_query_address` are
    then theirs."""
    objects = [config_secret(ctx, query_address, global_query_address, alertmanagers, rulers, bool(enforcing)),
               {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": ctx.metadata(SERVICE_ACCOUNT, COMPONENT),
                "automountServiceAccountToken": False}, scrape_service(ctx)]
    for ruler in rulers:
        objects.append(thanos_ruler(ctx, team, ruler, remote_write_url, evaluation_interval))
        if team.replicas > 1:
            objects.append(disruption_budget(ctx, ruler.name, team.replicas))
    if enforcing:
        objects.append(team_query_web_config_map(ctx))
        for component, sd_config in enforcing:
            objects += team_query_objects(ctx, team.query, component, sd_config, replica_labels or [])
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
