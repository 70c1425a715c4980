"""The namespace of a cluster's Thanos objects: Pod Security restricted, ServiceAccounts, objstore Secret, NetworkPolicies."""

from dataclasses import dataclass
from typing import Any

import pulumi

from components.platform.common import (
    ALERTMANAGER_MESH_PORT,
    ALERTMANAGER_PORT,
    GRAFANA_PORT,
    KSM_PORT,
    MEMCACHED_EXPORTER_PORT,
    TLS_PROBE_PORT,
    GRPC_PORT,
    HTTP_PORT,
    MEMCACHED_PORT,
    OBJSTORE_KEY,
    OBJSTORE_SECRET,
    PROMETHEUS_PORT,
    RELOADER_PORT,
    REMOTE_WRITE_PORT,
)
from components.platform import names
from components.platform.kube import ClusterContext, register
from config.global_view import EntryPointSpec, GlobalViewSpec
from config.stack import StackConfig

# Every ServiceAccount a workload runs as; none of them needs the Kubernetes API, so none gets RBAC or a token.
SERVICE_ACCOUNTS = ("prometheus", "query", "query-frontend", "store", "compactor", "ruler", "receive",
                    "receive-router", "bucket-web", "bucket-verify", "memcached", "oauth2-proxy", "alertmanager",
                    "grafana", "kube-state-metrics", "tls-probe")
INTERNAL_PORTS = (GRPC_PORT, HTTP_PORT, REMOTE_WRITE_PORT, MEMCACHED_PORT, PROMETHEUS_PORT, 9000, RELOADER_PORT,
                  ALERTMANAGER_PORT, ALERTMANAGER_MESH_PORT, GRAFANA_PORT, KSM_PORT, MEMCACHED_EXPORTER_PORT, TLS_PROBE_PORT)


def namespace_object(ctx: ClusterContext, environment: str) -> dict[str, Any]:
    """The Namespace, enforcing the Pod Security "restricted" standard."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ctx.namespace, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/warn": "restricted",
        "app.kubernetes.io/part-of": "thanos", "thanos.io/environment": environment}}}


def service_account_objects(ctx: ClusterContext, annotations: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One ServiceAccount per component, annotated with its cloud identity, API token not mounted."""
    objects = []
    for component in SERVICE_ACCOUNTS:
        metadata = ctx.metadata(f"thanos-{component}", component)
        if annotations.get(component):
            metadata["annotations"] = annotations[component]
        objects.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata,
                        "automountServiceAccountToken": False})
    return objects


def objstore_secret(ctx: ClusterContext, config: Any) -> dict[str, Any]:
    """The objstore config as a Secret (mounted as a file; never a ConfigMap, env var or inline flag)."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(OBJSTORE_SECRET, "objstore"),
            "type": "Opaque", "stringData": {OBJSTORE_KEY: config}}


BUCKET_USERS = ("prometheus", "store", "compactor", "ruler", "receive", "bucket-web", "bucket-verify")
"""Components that read or write object storage (their egress reaches the cloud's storage and identity endpoints)."""
OAUTH2_PROXY_PORT = 4180
LINK_LOCAL = "169.254.0.0/16"
"""Instance metadata (AWS, Azure, GCE), the EKS Pod Identity agent: the node's credentials. No open egress reaches it."""
# Only GKE's Workload Identity goes through the metadata server (the address pods dial, and where Dataplane V2 sends
# it); IRSA and Azure workload identity read a projected token and call STS or Entra ID over HTTPS.
GKE_METADATA_SERVER = [("169.254.169.254/32", 80), ("169.254.169.252/32", 988)]


GKE_L7_PROXY_RANGES = ("35.191.0.0/16", "130.211.0.0/22")
"""Google's front ends and health checkers: where a GKE L7 load balancer's requests (global classes) and every GKE
health check come from. They are not pods, so no namespace selector admits them."""


def gke_l7_sources(cloud: str, entry: EntryPointSpec, network_cidrs: list[str]) -> list[dict[str, Any]]:
    """NetworkPolicy peers of a GKE L7 load balancer (Gateway classes gke-l7-*, Ingress classes gce and gce-internal),
    which sends to the pods themselves (container-native load balancing): Google's ranges, and for the regional
    classes the region's proxy-only subnet, which `global-view.network-cidrs` must cover."""
    name = entry.class_name
    if cloud != "gcp" or not (name.startswith("gke-l7-") if entry.kind == "gateway" else name in ("gce", "gce-internal")):
        return []
    regional = "rilb" in name or "regional" in name or name == "gce-internal"
    if regional and not network_cidrs:
        raise ValueError(f"global-view.entry-point.class {name} is a regional GKE load balancer: its proxies connect "
                         "from the region's proxy-only subnet; list a range covering it in global-view.network-cidrs")
    return [{"ipBlock": {"cidr": cidr}} for cidr in (*GKE_L7_PROXY_RANGES, *(network_cidrs if regional else ()))]


def anywhere() -> dict[str, Any]:
    """A NetworkPolicy peer: every address but link-local."""
    return {"ipBlock": {"cidr": "0.0.0.0/0", "except": [LINK_LOCAL]}}


def network_policy(ctx: ClusterContext, name: str, selector: dict[str, Any],
                   ingress: list[dict[str, Any]] | None = None,
                   egress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A NetworkPolicy over the selected pods; a direction given (even empty) is restricted to its rules."""
    spec: dict[str, Any] = {"podSelector": selector, "policyTypes": []}
    if ingress is not None:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = ingress
    if egress is not None:
        spec["policyTypes"].append("Egress")
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": ctx.metadata(name, "network-policy"), "spec": spec}


def tcp_ports(*ports: int) -> list[dict[str, Any]]:
    """NetworkPolicy ports, TCP."""
    return [{"protocol": "TCP", "port": port} for port in ports]


def namespace_peer(name: str) -> dict[str, Any]:
    """A NetworkPolicy peer: every pod of one namespace (add a podSelector to narrow it)."""
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _components(components: tuple[str, ...]) -> dict[str, Any]:
    return {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In",
                                  "values": sorted(f"thanos-{c}" for c in components)}]}


def alertmanager_namespaces(urls: list[str]) -> list[str]:
    """Namespaces named in in-cluster Alertmanager URLs (`...<service>.<namespace>.svc...`)."""
    found = set()
    for url in urls:
        host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        parts = host.split(".")
        if "svc" in parts and parts.index("svc") >= 2:
            found.add(parts[parts.index("svc") - 1])
    return sorted(found)


def roles(*names: str) -> dict[str, Any]:
    """A pod selector: the namespace's pods of these roles (`app.kubernetes.io/component`, see component_role)."""
    return {"matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": sorted(names)}]}


@dataclass(frozen=True)
class Flow:
    """Connections inside a namespace that a server accepts: from which clients, on which ports."""

    name: str
    """The NetworkPolicy's name is `thanos-<name>-ingress`."""
    servers: dict[str, Any]
    """Pod selector of the servers."""
    clients: tuple[str, ...]
    """Roles of the pods that may connect (empty: every pod of the namespace)."""
    ports: tuple[int, ...]
    """TCP ports."""


SCRAPED_PORTS = (HTTP_PORT, PROMETHEUS_PORT, MEMCACHED_EXPORTER_PORT, ALERTMANAGER_PORT, TLS_PROBE_PORT)
"""The ports Prometheus scrapes (Thanos' HTTP, its own web, the memcached exporter, Alertmanager's web, the TLS
probe's)."""
BUCKET_CLIENTS = ("prometheus", "store", "compactor", "ruler", "receive", "bucket-web", "bucket-verify", "bucket-replicate",
                  "bucket-cleanup", "bucket-retention", "minio-setup")
"""Roles that reach the in-cluster object store."""


def cluster_flows(writers: bool, grafana: bool = False, team_rules: bool = False, tenants: bool = False) -> list[Flow]:
    """A cluster namespace's data path, server by server (`grafana`: Grafana runs here, beside the query-frontend it
    reads, as it does without a global view; `team_rules`: the team rulers read the query and send alerts, and with
    `tenants` read through the enforcing queries instead, which read the StoreAPIs). What no flow names is closed
    even inside the namespace: Prometheus' lifecycle, the ingestors' remote-write and gRPC (only the routers forward),
    the caches (only their own clients), Alertmanager (only what sends alerts); Prometheus' API only to the routers
    (their head-series limits)."""
    rulers = ("ruler", *(("team-ruler",) * team_rules))
    enforcing = team_rules and tenants
    team_queries = ("query-team-rules", "query-global-team-rules") if enforcing else ()
    flows = [
        Flow("storeapi", roles("store", "prometheus", "receive", "ruler"), ("query", *("query-team-rules",) * enforcing),
             (GRPC_PORT,)),
        Flow("receive-forward", roles("receive"), ("receive-router",), (GRPC_PORT,)),
        Flow("query-http", roles("query"), ("query-frontend", *rulers, "validate"), (HTTP_PORT,)),
        Flow("validated", roles("ruler", "bucket-web"), ("validate",), (HTTP_PORT,)),
        Flow("store-caches", {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In",
                                                    "values": ["thanos-memcached-bucket", "thanos-memcached-index"]}]},
             ("store",), (MEMCACHED_PORT,)),
        Flow("results-cache", {"matchLabels": {"app.kubernetes.io/name": "thanos-memcached-query-results"}},
             ("query-frontend",), (MEMCACHED_PORT,)),
        Flow("alerts", roles("alertmanager"), ("prometheus", *rulers, "validate"), (ALERTMANAGER_PORT,)),
        Flow("object-store", roles("minio"), BUCKET_CLIENTS, (9000,)),
        Flow("scraped", {"matchLabels": {"app.kubernetes.io/part-of": "thanos"}}, ("prometheus",), SCRAPED_PORTS),
    ]
    if writers:  # a writer's client certificate is checked by the routers (mTLS): any pod of the namespace may try
        flows.append(Flow("remote-write", roles("receive-router"), (), (REMOTE_WRITE_PORT,)))
        # The routers' head-series limits: each tenant's series as the cluster's Prometheus counts them.
        flows.append(Flow("meta-monitoring", roles("prometheus"), ("receive-router",), (PROMETHEUS_PORT,)))
    if grafana:
        flows.append(Flow("query-frontend-http", roles("query-frontend"), ("grafana",), (HTTP_PORT,)))
    if team_queries:
        flows.append(Flow("team-query-http", roles(*team_queries), ("team-ruler",), (HTTP_PORT,)))
    return flows


def global_flows(grafana: bool, oauth2_proxy: bool, tenants: bool = False, gated: bool = False,
                 rules_query: bool = False) -> list[Flow]:
    """The global tier's data path: the global query reads the global ruler, the front-end and the ruler read the
    query, the front-end its cache, Grafana (and the oauth2-proxy) the front-end; Grafana only from the proxy. With
    `tenants` the front-end reads the enforcing query instead, and only that reads the global query's gRPC; Grafana
    (operators only) reads the global query. With an entry point too (`gated`) the tenant gate stands where the proxy
    stood and reads the global query (the operators' path); the gate alone is reached from the proxy, and trusts its
    X-Forwarded-Groups. With `rules_query` (distributed mode) the global query reads the ruler through the query in
    front of it, and only that query reads the ruler's StoreAPI."""
    readers = ("grafana",) * (grafana and not tenants) + (("tenant-gate",) if gated else ("oauth2-proxy",) * oauth2_proxy)
    query_readers = (("ruler", "validate", *(("tenant-gate",) * gated), *(("grafana",) * grafana)) if tenants
                     else ("query-frontend", "ruler", "validate"))
    flows = [Flow("storeapi", roles("ruler"), ("query-rules" if rules_query else "query", "tls-probe"), (GRPC_PORT,)),
             Flow("query-http", roles("query"), query_readers, (HTTP_PORT,)),
             Flow("validated", roles("ruler"), ("validate",), (HTTP_PORT,)),
             Flow("results-cache", roles("memcached"), ("query-frontend",), (MEMCACHED_PORT,))]
    if rules_query:
        flows.append(Flow("rules-queryapi", roles("query-rules"), ("query",), (GRPC_PORT,)))
    if tenants:
        flows += [Flow("tenants-http", roles("query-tenants"), ("query-frontend",), (HTTP_PORT,)),
                  Flow("tenants-storeapi", roles("query"), ("query-tenants",), (GRPC_PORT,))]
    if readers:
        flows.append(Flow("query-frontend-http", roles("query-frontend"), readers, (HTTP_PORT,)))
    if grafana and (oauth2_proxy or gated):  # it trusts the proxy's X-Forwarded-Email: only the proxy may reach it
        flows.append(Flow("grafana", roles("grafana"), ("tenant-gate" if gated else "oauth2-proxy",), (GRAFANA_PORT,)))
    if gated and oauth2_proxy:
        flows.append(Flow("tenant-gate", roles("tenant-gate"), ("oauth2-proxy",), (HTTP_PORT,)))
    return flows


def flow_policies(ctx: ClusterContext, flows: list[Flow]) -> list[dict[str, Any]]:
    """One ingress NetworkPolicy per flow (Kubernetes adds up every policy that selects a pod)."""
    return [network_policy(ctx, f"thanos-{flow.name}-ingress", flow.servers, ingress=[
        {"from": [{"podSelector": roles(*flow.clients) if flow.clients else {}}], "ports": tcp_ports(*flow.ports)}])
        for flow in flows]


def baseline_policies(ctx: ClusterContext, alertmanager_urls: list[str], flows: list[Flow],
                      extra_ports: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    """Deny everything in and out, then: DNS (UDP and TCP 53: SRV answers that truncate are retried over TCP) to
    kube-dns, egress between the namespace's own pods on the ports they serve, each server's `flows` in, and the
    rulers' Alertmanagers."""
    internal = tcp_ports(*INTERNAL_PORTS, *extra_ports)
    policies = [
        network_policy(ctx, "thanos-default-deny", {}, ingress=[], egress=[]),
        network_policy(ctx, "thanos-dns-egress", {}, egress=[{"to": [{**namespace_peer("kube-system"), "podSelector": {
            "matchLabels": {"k8s-app": "kube-dns"}}}], "ports": [{"protocol": "UDP", "port": 53},
                                                                 {"protocol": "TCP", "port": 53}]}]),
        network_policy(ctx, "thanos-data-path", {"matchLabels": {"app.kubernetes.io/part-of": "thanos"}},
                       egress=[{"to": [{"podSelector": {}}], "ports": internal}]),
        *flow_policies(ctx, flows),
    ]
    if ctx.tracing is not None:
        policies.append(tracing_egress(ctx, ctx.tracing.endpoint))
    namespaces = alertmanager_namespaces(alertmanager_urls)
    if namespaces:
        policies.append(network_policy(ctx, "thanos-alertmanager-egress", {"matchLabels": ctx.selector("ruler")},
                                egress=[{"to": [namespace_peer(ns) for ns in namespaces], "ports": tcp_ports(9093)}]))
    return policies


def tracing_egress(ctx: ClusterContext, endpoint: str) -> dict[str, Any]:
    """The Thanos pods' spans to the OTLP collector's port: into its namespace when the endpoint is an in-cluster
    Service name (`<service>.<namespace>.svc`), else to any address but link-local (NetworkPolicy has no host names)."""
    host, port = endpoint.rsplit(":", 1)
    labels = host.split(".")
    peer = namespace_peer(labels[1]) if len(labels) >= 3 and labels[2] == "svc" else anywhere()
    return network_policy(ctx, "thanos-tracing-egress", {"matchLabels": {"app.kubernetes.io/part-of": "thanos"}},
                          egress=[{"to": [peer], "ports": tcp_ports(int(port))}])


def object_storage_egress(ctx: ClusterContext, name: str, selector: dict[str, Any]) -> dict[str, Any]:
    """HTTPS to object storage and the identity endpoints (NetworkPolicy has no host names: any address but
    link-local), and on GKE its metadata server, through which Workload Identity hands out tokens."""
    egress = [{"to": [anywhere()], "ports": tcp_ports(443)}]
    if ctx.cloud == "gcp":
        egress += [{"to": [{"ipBlock": {"cidr": cidr}}], "ports": tcp_ports(port)} for cidr, port in GKE_METADATA_SERVER]
    return network_policy(ctx, name, selector, egress=egress)


def _name(name: str) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/name": name}}


def observability_policies(ctx: ClusterContext, stack: StackConfig) -> list[dict[str, Any]]:
    """Alertmanager gossip (UDP too) and its receivers (anywhere: webhook URLs are secrets, ports unknown);
    Prometheus discovering through the API and scraping anything in the cluster; kube-state-metrics reaching the
    API server and scraped by any namespace's Prometheus (simulated clusters share one kube-state-metrics)."""
    observability = stack.observability
    scraped = [anywhere(), {"namespaceSelector": {}}]
    policies = []
    if observability.alertmanager.enabled:
        mesh = [{"protocol": protocol, "port": ALERTMANAGER_MESH_PORT} for protocol in ("TCP", "UDP")]
        alertmanager = ctx.selector("alertmanager")
        policies += [network_policy(ctx, "thanos-alertmanager-mesh", {"matchLabels": alertmanager},
                                    ingress=[{"from": [{"podSelector": {"matchLabels": alertmanager}}], "ports": mesh}],
                                    egress=[{"to": [{"podSelector": {"matchLabels": alertmanager}}], "ports": mesh}]),
                     network_policy(ctx, "thanos-alertmanager-receivers", {"matchLabels": alertmanager},
                                    egress=[{"to": [anywhere()]}])]
        view = stack.global_view
        home = [c for c in (view.host_cluster, view.standby_cluster) if c] if view and view.ruler.enabled else []
        if view and ctx.cluster in home:
            policies.append(network_policy(ctx, "thanos-alertmanager-global-ruler", {"matchLabels": alertmanager},
                                           ingress=[{"from": [{**namespace_peer(view.namespace), "podSelector": _name(
                                               names.RULER)}], "ports": tcp_ports(ALERTMANAGER_PORT)}]))
    collection = observability.collection
    if collection.kubernetes:
        policies.append(network_policy(ctx, "thanos-prometheus-scrape-egress", {"matchLabels": ctx.selector("prometheus")},
                                       egress=[{"to": scraped}]))
    if collection.kube_state_metrics and stack.owns_cluster_wide(ctx.cluster):
        policies.append(network_policy(ctx, "thanos-kube-state-metrics", _name("kube-state-metrics"),
                                       ingress=[{"from": [{"namespaceSelector": {}, "podSelector": _name(names.PROMETHEUS)}],
                                                 "ports": tcp_ports(KSM_PORT)}],
                                       egress=[{"to": [anywhere()], "ports": tcp_ports(443, 6443)}]))
    return policies


def network_policies(ctx: ClusterContext, stack: StackConfig, alertmanagers: list[str]) -> list[dict[str, Any]]:
    """A cluster's namespace: the baseline (with egress to the Alertmanagers its rulers send to), object storage for
    the components that use it, remote-write from the namespaces allowed to write (mTLS on top), the leaf query's gRPC
    from the global tier only, and what observing the cluster needs."""
    team_rules = stack.thanos.ruler.team_rules.enabled
    policies = baseline_policies(ctx, alertmanagers,
                                 cluster_flows(stack.thanos.receive.enabled,
                                               grafana=stack.observability.grafana.enabled and stack.global_view is None,
                                               team_rules=team_rules, tenants=stack.tenancy.enabled))
    if team_rules and alertmanager_namespaces(alertmanagers):
        policies.append(network_policy(ctx, "thanos-team-ruler-alertmanager-egress", roles("team-ruler"), egress=[
            {"to": [namespace_peer(ns) for ns in alertmanager_namespaces(alertmanagers)], "ports": tcp_ports(9093)}]))
    view = stack.global_view
    if team_rules and view and ctx.cluster in (view.host_cluster, view.standby_cluster):
        # The global-scope team rulers read the global query beside them (with tenants, through the enforcing query
        # here, which reads its gRPC).
        if stack.tenancy.enabled:
            policies.append(network_policy(ctx, "thanos-team-query-global-query-egress", roles("query-global-team-rules"),
                                           egress=[{"to": [{**namespace_peer(view.namespace), "podSelector": roles("query")}],
                                                    "ports": tcp_ports(GRPC_PORT)}]))
        else:
            policies.append(network_policy(ctx, "thanos-team-ruler-global-query-egress", roles("team-ruler"), egress=[
                {"to": [{**namespace_peer(view.namespace), "podSelector": roles("query")}], "ports": tcp_ports(HTTP_PORT)}]))
    policies += observability_policies(ctx, stack)
    policies.append(object_storage_egress(ctx, "thanos-object-storage-egress", _components(BUCKET_USERS)))
    writers = [*stack.thanos.receive.remote_write_namespaces,
               *(ns for ns in stack.tenancy.namespaces() if ns not in stack.thanos.receive.remote_write_namespaces)]
    if stack.thanos.receive.enabled and writers:
        policies.append(network_policy(ctx, "thanos-remote-write-namespaces-ingress", {"matchLabels": ctx.selector("receive-router")},
                                ingress=[{"from": [namespace_peer(ns) for ns in writers], "ports": tcp_ports(REMOTE_WRITE_PORT)}]))
    view = stack.global_view
    if view is not None:
        if view.leaf_service == "load-balancer":
            sources = [{"ipBlock": {"cidr": cidr}} for cidr in view.network_cidrs]
        else:
            sources = [{**namespace_peer(view.namespace), "podSelector": _name(name)}
                       for name in (names.QUERY, "thanos-tls-probe")]
        policies.append(network_policy(ctx, "thanos-leaf-grpc-ingress", {"matchLabels": ctx.selector("query")},
                                ingress=[{"from": sources, "ports": tcp_ports(GRPC_PORT)}]))
    return policies


def global_network_policies(ctx: ClusterContext, view: GlobalViewSpec, stack: StackConfig, alertmanagers: list[str],
                            home_namespace: str) -> list[dict[str, Any]]:
    """The global tier's namespace: the baseline (the global ruler reaching `alertmanagers`), scraping by the
    Prometheus of the cluster it runs in (`home_namespace`), the global query's gRPC to the leaves only, and the
    entry point reachable from the gateway or ingress controller only (oauth2-proxy may also reach the identity
    provider; Grafana too behind basic auth)."""
    entry = view.entry_point
    proxied = entry is not None and entry.auth == "oauth2-proxy"
    gated = entry is not None and entry.gated(stack.tenancy.enabled)
    policies = baseline_policies(ctx, alertmanagers, global_flows(stack.observability.grafana.enabled, proxied,
                                                                  stack.tenancy.enabled, gated,
                                                                  view.ruler.enabled and view.mode == "distributed"),
                                 (OAUTH2_PROXY_PORT,))
    if stack.thanos.ruler.team_rules.enabled:
        # The global-scope team rulers run in the cluster's namespace and read the global query (with tenants, through
        # the enforcing query beside them, over gRPC).
        client, port = ("query-global-team-rules", GRPC_PORT) if stack.tenancy.enabled else ("team-ruler", HTTP_PORT)
        policies.append(network_policy(ctx, "thanos-team-ruler-query-ingress", {"matchLabels": ctx.selector("query")},
                                       ingress=[{"from": [{**namespace_peer(home_namespace), "podSelector": roles(client)}],
                                                 "ports": tcp_ports(port)}]))
    policies.append(network_policy(ctx, "thanos-scraped-by-prometheus", {"matchLabels": {"app.kubernetes.io/part-of": "thanos"}},
                                   ingress=[{"from": [{**namespace_peer(home_namespace), "podSelector": _name(names.PROMETHEUS)}],
                                             "ports": tcp_ports(HTTP_PORT, MEMCACHED_EXPORTER_PORT, TLS_PROBE_PORT)}]))
    if view.leaf_service == "load-balancer":
        leaves = [{"ipBlock": {"cidr": cidr}} for cidr in view.network_cidrs]
    else:
        leaves = [{**namespace_peer(stack.namespace_of(c)), "podSelector": _name(names.QUERY)}
                  for r in stack.regions for c in r.clusters]
    policies.append(network_policy(ctx, "thanos-global-query-egress", {"matchLabels": ctx.selector("query")},
                            egress=[{"to": leaves, "ports": tcp_ports(GRPC_PORT)}]))
    # The TLS probe dials each leaf as the global query does, with its certificate.
    policies.append(network_policy(ctx, "thanos-tls-probe-egress", {"matchLabels": ctx.selector("tls-probe")},
                                   egress=[{"to": leaves, "ports": tcp_ports(GRPC_PORT)}]))
    if entry is not None:
        selector = ctx.selector("oauth2-proxy" if proxied else "tenant-gate" if gated else "query-frontend")
        # The tier runs in the host or standby cluster: the provider of their regions (ctx.cloud is the leaves').
        clouds = {region.storage.provider for region in stack.regions
                  if {c.name for c in region.clusters} & {view.host_cluster, view.standby_cluster}}
        sources = [namespace_peer(entry.controller),
                   *(peer for cloud in sorted(clouds) for peer in gke_l7_sources(cloud, entry, view.network_cidrs))]
        policies.append(network_policy(ctx, "thanos-entry-point-ingress", {"matchLabels": selector},
                                ingress=[{"from": sources,
                                          "ports": tcp_ports(OAUTH2_PROXY_PORT if proxied else HTTP_PORT)}]))
        if not proxied and not gated and stack.observability.grafana.enabled:
            policies.append(network_policy(ctx, "thanos-grafana-ingress", {"matchLabels": ctx.selector("grafana")},
                                           ingress=[{"from": [namespace_peer(entry.controller)],
                                                     "ports": tcp_ports(GRAFANA_PORT)}]))
        if proxied:
            policies.append(network_policy(ctx, "thanos-oauth2-proxy-egress", {"matchLabels": selector},
                                    egress=[{"to": [anywhere()], "ports": tcp_ports(443)}]))
    return policies


@dataclass(frozen=True)
class NamespaceArgs:
    """What a namespace is made from."""

    ctx: ClusterContext
    """The cluster and namespace name."""
    environment: str
    """The stack's environment, a label on the namespace."""
    holds_data: bool = False
    """Protected and retained on delete, since deleting a namespace deletes every claim in it (which the StatefulSets
    themselves retain): blocks not yet uploaded by Prometheus, receive and the ruler, and dev's in-cluster S3 server's
    blocks (default False)."""


class Namespace(pulumi.ComponentResource):
    """The namespace and what every workload in it shares."""

    namespace: pulumi.CustomResource
    """The Namespace object (everything namespaced depends on it)."""

    def __init__(self, name: str, args: NamespaceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:k8s:Namespace", name, {}, opts)
        ctx = args.ctx
        self.namespace = register([namespace_object(ctx, args.environment)], name, self,
                                  protect=args.holds_data)[f"Namespace/{ctx.namespace}"]
        self.register_outputs({"namespace": ctx.namespace})

    def add_shared(self, ctx: ClusterContext, objstore_config: Any, annotations: dict[str, dict[str, Any]],
                   stack: StackConfig, alertmanagers: list[str]) -> dict[str, pulumi.CustomResource]:
        """ServiceAccounts, the objstore Secret and the NetworkPolicies, once the bucket access is known."""
        return register([*service_account_objects(ctx, annotations), objstore_secret(ctx, objstore_config),
                         *network_policies(ctx, stack, alertmanagers)], f"{ctx.cluster}-shared", self, [self.namespace])
