"""The tenant gate behind the entry point: Caddy, which turns who signed in into the tenant a request reads.

oauth2-proxy authenticates and passes the user's groups (one `X-Forwarded-Groups` line per group); with basic auth
the gate checks the password itself. The gate then drops any `THANOS-TENANT` the client sent and:
- an operator (tenancy.operators) goes to the global query, which enforces nothing (every tenant), and to Grafana;
- a reader of one tenant goes to the global query-frontend with `THANOS-TENANT: <tenant>`, which the enforcing query
  behind it turns into a `tenant_id` matcher on every selector;
- a reader of two tenants, or of none, gets 403 (never a guess); only operators reach Grafana (its datasource reads
  every tenant) and the query API paths Thanos does not scope by tenant (rules, alerts, targets, metadata,
  exemplars).
Why Caddy: the mapping from groups to a tenant needs a proxy that matches any one of several header lines and sets a
header, from a declarative file; oauth2-proxy injects only claims or fixed values, Thanos reads the tenant from one
header as sent, and Caddy (a maintained release, built here at the version the plan pins) does it in JSON."""

import json
from typing import Any

import pulumi

from components.observability.grafana import SUB_PATH
from components.platform.common import HTTP_PORT, container, pod_spec, service_name
from components.platform.kube import ClusterContext
from components.platform.names import service_url
from components.platform.workload import workload_objects
from config.tenancy import TENANT_HEADER, TenancySpec
from config.thanos import Compute, Resources

CADDY_IMAGE = "docker.io/library/caddy:2.11.9-alpine"
COMPONENT = "tenant-gate"
NAME = service_name(COMPONENT)
CONFIG_SECRET = "thanos-tenant-gate-config"
CONFIG_DIR = "/etc/caddy"
GROUPS_HEADER = "X-Forwarded-Groups"
"""Where oauth2-proxy puts the signed-in user's groups (`--pass-user-headers`, on by default), joined by commas on one
line (v7.15.6, measured: tests/test_real_tenant_gate.py), so a group name never holds a comma (config refuses it)."""
USER_PLACEHOLDER = "{http.auth.user.id}"
"""The user Caddy's basic auth let in."""
PROBE_PATHS = ["/-/healthy", "/-/ready"]
UNSCOPED_PATHS = ["/api/v1/rules", "/api/v1/alerts", "/api/v1/targets", "/api/v1/targets/*", "/api/v1/metadata",
                  "/api/v1/query_exemplars"]
"""Query API paths `--query.enforce-tenancy` leaves unscoped at v0.42.4 (pkg/api/query/v1.go): a tenant's reader
would see every tenant's rules, alerts or metadata there, so only operators get them."""


def gate_url(namespace: str) -> str:
    """Where the entry point sends every signed-in request when tenants are configured."""
    return service_url("http", NAME, namespace, HTTP_PORT, "/")


def any_group_pattern(groups: list[str]) -> str:
    """An RE2 pattern matching a comma-joined group list that holds any of `groups`, whole."""
    def literal(name: str) -> str:
        return "".join("\\" + c if c in "\\.+*?()|[]{}^$-" else c for c in name)
    return "(^|,)(" + "|".join(literal(g) for g in groups) + ")(,|$)"


def _proxy(address: str) -> dict[str, Any]:
    return {"handler": "reverse_proxy", "upstreams": [{"dial": address}]}


def _refuse(why: str) -> dict[str, Any]:
    return {"handler": "static_response", "status_code": 403, "body": why + "\n"}


def gate_config(tenancy: TenancySpec, *, tenants_upstream: str, operators_upstream: str,
                grafana_upstream: str | None = None, accounts: list[dict[str, str]] | None = None,
                listen: str = f":{HTTP_PORT}") -> dict[str, Any]:
    """Caddy's JSON config. `*_upstream` are host:port; `accounts` (`{username, password: bcrypt hash}`) make the gate
    check basic auth itself and match readers by user name, else readers are matched by the groups oauth2-proxy
    passes."""

    def identity(names: list[str]) -> dict[str, Any]:
        if accounts is not None:
            return {"vars": {USER_PLACEHOLDER: names}}
        return {"header_regexp": {GROUPS_HEADER: {"pattern": any_group_pattern(names)}}}

    grafana_paths = {"path": [SUB_PATH.rstrip("/"), SUB_PATH + "*"]}
    prelude: list[dict[str, Any]] = [{"handler": "headers", "request": {"delete": [TENANT_HEADER]}}]
    if accounts is not None:
        prelude += [{"handler": "authentication", "providers": {"http_basic": {
            "realm": "Thanos", "hash": {"algorithm": "bcrypt"}, "accounts": accounts}}},
            {"handler": "headers", "request": {"delete": ["Authorization"]}}]
    routes: list[dict[str, Any]] = [
        {"match": [{"path": PROBE_PATHS}], "terminal": True,
         "handle": [{"handler": "static_response", "status_code": 200, "body": "OK\n"}]},
        {"handle": prelude}]
    if tenancy.operators:
        everything = [_proxy(operators_upstream)]
        if grafana_upstream:
            everything = [{"handler": "subroute", "routes": [
                {"match": [grafana_paths], "terminal": True, "handle": [_proxy(grafana_upstream)]},
                {"handle": [_proxy(operators_upstream)]}]}]
        routes.append({"match": [identity(tenancy.operators)], "terminal": True, "handle": everything})
    routes.append({"match": [grafana_paths], "terminal": True,
                   "handle": [_refuse("Grafana shows every tenant: only tenancy.operators reach it")]})
    for tenant in tenancy.tenants:
        if not tenant.readers:
            continue
        others = sorted({g for t in tenancy.tenants if t.name != tenant.name for g in t.readers})
        inner: list[dict[str, Any]] = []
        if others:
            inner.append({"match": [identity(others)], "terminal": True, "handle": [_refuse(
                "you read more than one tenant (tenancy.tenants[].readers): ask for one, or for tenancy.operators")]})
        inner.append({"match": [{"path": UNSCOPED_PATHS}], "terminal": True, "handle": [_refuse(
            "Thanos does not scope this path by tenant: only tenancy.operators read it")]})
        inner.append({"handle": [{"handler": "headers", "request": {"set": {TENANT_HEADER: [tenant.name]}}},
                                 _proxy(tenants_upstream)]})
        routes.append({"match": [identity(tenant.readers)], "terminal": True,
                       "handle": [{"handler": "subroute", "routes": inner}]})
    routes.append({"handle": [_refuse("you read no tenant (tenancy.tenants[].readers, tenancy.operators)")]})
    return {"admin": {"disabled": True, "config": {"persist": False}},
            "logging": {"logs": {"default": {"level": "WARN", "encoder": {"format": "json"}}}},
            "apps": {"http": {"servers": {"gate": {"listen": [listen], "automatic_https": {"disable": True},
                                                   "routes": routes}}}}}


def config_text(config: Any) -> Any:
    """The config file's text (an Output when basic-auth hashes are in it)."""
    return pulumi.Output.from_input(config).apply(lambda c: json.dumps(c, indent=1, sort_keys=True))


def build_tenant_gate(ctx: ClusterContext, text: Any, replicas: int = 2) -> list[dict[str, Any]]:
    """Its config Secret (basic-auth hashes may be in it), ServiceAccount, Deployment, Services and PDB. Caddy
    `--watch`es the file (it reads it every second and loads it when its bytes change), so a new reader or password
    applies without a restart, and the Deployment holds nothing computed from the passwords (a first preview judges
    it)."""
    port = {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}
    probes = {"livenessProbe": {"httpGet": {"path": "/-/healthy", "port": "http"}, "periodSeconds": 30},
              "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "http"}, "periodSeconds": 10}}
    # Measured: 52 MiB resident after 200 proxied requests (Caddy v2.11.9, prod's gate config).
    resources = Resources(requests=Compute(cpu="25m", memory="64Mi"), limits=Compute(memory="128Mi"))
    # Caddy keeps state under XDG dirs (none is needed with TLS and the admin API off): a scratch dir, the root
    # filesystem being read-only.
    env = [{"name": "XDG_DATA_HOME", "value": "/tmp"}, {"name": "XDG_CONFIG_HOME", "value": "/tmp"}]
    pod = pod_spec(NAME, [container(
        "caddy", CADDY_IMAGE, ["run", "--config", f"{CONFIG_DIR}/caddy.json", "--watch"], resources, ports=[port],
        env=env, probes=probes, mounts=[{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                                        {"name": "tmp", "mountPath": "/tmp"}]) | {"command": ["caddy"]}],
        selector=ctx.selector(COMPONENT), replicas=replicas, zone_spread=ctx.zone_spread, node_spread=ctx.node_spread,
        volumes=[{"name": "config", "secret": {"secretName": CONFIG_SECRET, "defaultMode": 0o440}},
                 {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}], grace_seconds=30)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(CONFIG_SECRET, COMPONENT),
              "type": "Opaque", "stringData": {"caddy.json": text}}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": ctx.metadata(NAME, COMPONENT),
               "automountServiceAccountToken": False}
    objects = workload_objects(ctx, COMPONENT, f"{NAME}-pods", kind="Deployment", replicas=replicas, pod=pod,
                               ports=[port])
    clients = {"apiVersion": "v1", "kind": "Service", "metadata": ctx.metadata(NAME, COMPONENT), "spec": {
        "selector": ctx.selector(COMPONENT), "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": "http",
                                                         "protocol": "TCP"}]}}
    return [secret, account, *objects, clients]
