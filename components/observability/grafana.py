"""Grafana beside a query-frontend: the Thanos datasource, the generated dashboards and the Thanos mixin's (folder
"Thanos mixin") provisioned from ConfigMaps, the admin password a generated Pulumi secret. Behind the entry point it
serves `/grafana/`: signed in by oauth2-proxy's user header, or by its own login behind basic auth (which it then
ignores)."""

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_random as random
import yaml

from components.observability.dashboards import DATASOURCE_UID, all_dashboards
from components.observability.mixin_dashboards import JOBS as MIXIN_COMPONENTS
from components.observability.mixin_dashboards import mixin_dashboards
from components.platform.common import GRAFANA_PORT, container, pod_spec, service_name
from components.platform.kube import ClusterContext, register
from components.platform.names import service_url
from components.platform.workload import workload_objects
from components.thanos.query_frontend import query_frontend_url
from config.observability import GrafanaSpec

NAME = "thanos-grafana"
SUB_PATH = "/grafana/"
ADMIN_SECRET = "thanos-grafana-admin"
PROVISIONING = "/etc/grafana/provisioning"
DASHBOARDS_DIR = "/etc/grafana/dashboards"
MIXIN_DASHBOARDS_DIR = "/etc/grafana/dashboards-mixin"
MIXIN_FOLDER = "Thanos mixin"
"""Where the mixin's dashboards show: their titles are the project's own dashboards' too."""


def grafana_url(namespace: str) -> str:
    """Where the entry point proxies `/grafana/` to."""
    return service_url("http", NAME, namespace, GRAFANA_PORT, SUB_PATH)


def datasource_config(namespace: str, scrape_interval: str, query_timeout: str, url: str | None = None) -> dict[str, Any]:
    """The provisioned Thanos datasource: the query-frontend (or `url`), deduplicated, partial responses allowed (one
    dead region is a warning, not an empty dashboard), not editable in the UI."""
    return {"apiVersion": 1, "datasources": [{
        "name": "Thanos", "uid": DATASOURCE_UID, "type": "prometheus", "access": "proxy",
        "url": url or query_frontend_url(namespace), "isDefault": True, "editable": False,
        "jsonData": {"prometheusType": "Thanos", "timeInterval": scrape_interval, "queryTimeout": query_timeout,
                     "httpMethod": "POST", "customQueryParameters": "dedup=true&partial_response=true",
                     "manageAlerts": False}}]}


def dashboard_provider() -> dict[str, Any]:
    """Load every dashboard JSON file of the dashboards ConfigMap, and of the mixin's into their own folder,
    read-only in the UI."""
    def provider(name: str, path: str, folder: str | None = None) -> dict[str, Any]:
        return {"name": name, "type": "file", **({"folder": folder} if folder else {}), "disableDeletion": True,
                "allowUiUpdates": False, "updateIntervalSeconds": 60, "options": {"path": path}}

    return {"apiVersion": 1, "providers": [provider("thanos", DASHBOARDS_DIR),
                                           provider("thanos-mixin", MIXIN_DASHBOARDS_DIR, MIXIN_FOLDER)]}


def grafana_env(auth: str | None, host: str | None) -> list[dict[str, Any]]:
    """Settings: admin from the Secret, no sign-up, no anonymous access, nothing fetched from the internet; behind an
    entry point, the sub-path and the sign-in that fits its authentication."""
    def setting(name: str, value: str) -> dict[str, Any]:
        return {"name": f"GF_{name}", "value": value}

    env = [{"name": "GF_SECURITY_ADMIN_USER", "valueFrom": {"secretKeyRef": {"name": ADMIN_SECRET, "key": "user"}}},
           {"name": "GF_SECURITY_ADMIN_PASSWORD", "valueFrom": {"secretKeyRef": {"name": ADMIN_SECRET, "key": "password"}}},
           setting("PATHS_PROVISIONING", PROVISIONING), setting("PATHS_DATA", "/var/lib/grafana"),
           setting("USERS_ALLOW_SIGN_UP", "false"), setting("AUTH_ANONYMOUS_ENABLED", "false"),
           setting("ANALYTICS_REPORTING_ENABLED", "false"), setting("ANALYTICS_CHECK_FOR_UPDATES", "false"),
           setting("PLUGINS_PREINSTALL_DISABLED", "true"), setting("LOG_MODE", "console"),
           setting("SECURITY_COOKIE_SECURE", "true" if host else "false")]
    if host:
        env += [setting("SERVER_ROOT_URL", f"https://{host}{SUB_PATH}"), setting("SERVER_SERVE_FROM_SUB_PATH", "true")]
    if auth == "oauth2-proxy":
        env += [setting("AUTH_PROXY_ENABLED", "true"), setting("AUTH_PROXY_HEADER_NAME", "X-Forwarded-Email"),
                setting("AUTH_PROXY_HEADER_PROPERTY", "email"), setting("AUTH_PROXY_AUTO_SIGN_UP", "true"),
                setting("USERS_AUTO_ASSIGN_ORG_ROLE", "Viewer")]
    if auth == "basic-auth":
        env.append(setting("AUTH_BASIC_ENABLED", "false"))  # the ingress's Authorization header is not a Grafana user
    return env


def build_grafana(ctx: ClusterContext, spec: GrafanaSpec, *, scrape_interval: str, query_timeout: str,
                  auth: str | None = None, host: str | None = None, admin_password: Any = "",
                  datasource_url: str | None = None,
                  components: Collection[str] = tuple(MIXIN_COMPONENTS)) -> list[dict[str, Any]]:
    """The admin Secret, the datasource, provider and dashboards ConfigMaps (the mixin's of `components` in a second
    one, compact JSON: a ConfigMap holds 1 MiB), the Deployment and its Service."""
    component = "grafana"
    port = {"name": "http", "containerPort": GRAFANA_PORT, "protocol": "TCP"}
    # /healthz answers from the process (liveness); /api/health also needs the database (readiness).
    probes = {"livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 30},
              "readinessProbe": {"httpGet": {"path": "/api/health", "port": "http"}, "periodSeconds": 10}}
    mounts: list[dict[str, Any]] = [{"name": "data", "mountPath": "/var/lib/grafana"}, {"name": "tmp", "mountPath": "/tmp"},
              {"name": "datasources", "mountPath": f"{PROVISIONING}/datasources", "readOnly": True},
              {"name": "providers", "mountPath": f"{PROVISIONING}/dashboards", "readOnly": True},
              {"name": "dashboards", "mountPath": DASHBOARDS_DIR, "readOnly": True},
              {"name": "mixin-dashboards", "mountPath": MIXIN_DASHBOARDS_DIR, "readOnly": True}]
    main = container("grafana", spec.image, [], spec.resources, ports=[port], mounts=mounts,
                     env=grafana_env(auth, host), probes=probes, go=False)
    volumes = [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}},
               {"name": "datasources", "configMap": {"name": f"{NAME}-datasources"}},
               {"name": "providers", "configMap": {"name": f"{NAME}-providers"}},
               {"name": "dashboards", "configMap": {"name": f"{NAME}-dashboards"}},
               {"name": "mixin-dashboards", "configMap": {"name": f"{NAME}-mixin-dashboards"}}]
    pod = pod_spec(service_name(component), [main], selector=ctx.selector(component), replicas=spec.replicas,
                   zone_spread=ctx.zone_spread, node_spread=ctx.node_spread, volumes=volumes, grace_seconds=30)
    dashboards = {f"{uid}.json": json.dumps(board, indent=1, sort_keys=True) for uid, board in all_dashboards().items()}
    mixin = {name: json.dumps(board, separators=(",", ":"), sort_keys=True)
             for name, board in mixin_dashboards(components).items()}

    def config_map(suffix: str, data: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(f"{NAME}-{suffix}", component),
                "data": data}

    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(ADMIN_SECRET, component), "type": "Opaque",
         "stringData": {"user": "admin", "password": admin_password}},
        config_map("datasources", {"thanos.yaml": yaml.safe_dump(datasource_config(ctx.namespace, scrape_interval,
                                                                                   query_timeout, datasource_url), sort_keys=False)}),
        config_map("providers", {"thanos.yaml": yaml.safe_dump(dashboard_provider(), sort_keys=False)}),
        config_map("dashboards", dashboards),
        config_map("mixin-dashboards", mixin),
        *workload_objects(ctx, component, NAME, kind="Deployment", replicas=spec.replicas, pod=pod, ports=[port]),
    ]


@dataclass(frozen=True)
class GrafanaArgs:
    """What a Grafana is built from."""

    ctx: ClusterContext
    """The cluster (or global tier) it runs in."""
    spec: GrafanaSpec
    """Its settings."""
    scrape_interval: str
    """Prometheus' scrape interval: the datasource's smallest step."""
    query_timeout: str
    """The query's timeout: the datasource's too."""
    auth: str | None = None
    """How the entry point in front authenticates: `oauth2-proxy` or `basic-auth` (default none: no entry point)."""
    host: str | None = None
    """The entry point's host name, served under a sub-path there (default none: no entry point)."""
    datasource_url: str | None = None
    """What its datasource reads (default the namespace's query-frontend)."""
    components: frozenset[str] = frozenset(MIXIN_COMPONENTS)
    """The Thanos components (scrape jobs) its datasource sees: the mixin's dashboards of these are provisioned
    (default every one)."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What each of its objects waits for, besides the objects it uses (default nothing)."""


class Grafana(pulumi.ComponentResource):
    """Grafana in one namespace, its admin password generated once and kept in the state as a secret."""

    def __init__(self, name: str, args: GrafanaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:k8s:Grafana", name, {}, opts)
        provider = random.Provider(f"{name}-random", opts=pulumi.ResourceOptions(parent=self))
        password = random.RandomPassword(f"{name}-admin-password", length=32, special=False,
                                         opts=pulumi.ResourceOptions(parent=self, provider=provider))
        self.admin_password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        register(build_grafana(args.ctx, args.spec, scrape_interval=args.scrape_interval, query_timeout=args.query_timeout,
                               auth=args.auth, host=args.host, admin_password=self.admin_password,
                               datasource_url=args.datasource_url, components=args.components), name, self,
                 args.depends_on)
        self.register_outputs({})
