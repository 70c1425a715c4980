"""Alertmanager in a cluster: an HA StatefulSet whose replicas gossip over a headless Service, its configuration
built from the stack config, rendered with the receivers' credentials into a Secret (never a ConfigMap)."""

from dataclasses import dataclass, field
from typing import Any

import pulumi
import yaml

from components.platform.common import (
    ALERTMANAGER_MESH_PORT,
    ALERTMANAGER_PORT,
    config_reloader,
    container,
    pod_spec,
    service_name,
    volume_claim,
)
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.names import pod_address, srv_record
from components.platform.workload import workload_objects
from config.observability import SEVERITIES, AlertmanagerSpec, ReceiverSpec
from config.stack import StackConfig

NAME = "thanos-alertmanager"
CONFIG_SECRET = "thanos-alertmanager-config"
CONFIG_KEY = "alertmanager.yml"
CONFIG_DIR = "/etc/alertmanager/config"
DATA_DIR = "/alertmanager"
DISCARD = "discard"


def split_url(url: str) -> tuple[str, str, str, str]:
    """(discovery: "", "dns" or "dnssrv"; scheme; host[:port]; path prefix) of a ruler-style Alertmanager URL,
    `[dns+|dnssrv+]http[s]://host[:port][/prefix]`."""
    discovery, _, rest = url.partition("+") if url.split("://", 1)[0].count("+") else ("", "", url)
    scheme, _, location = rest.partition("://")
    host, _, prefix = location.partition("/")
    return discovery, scheme, host, f"/{prefix}" if prefix else ""


def alertmanager_srv(namespace: str) -> str:
    """The SRV record of every replica's web port (how Prometheus finds them)."""
    return srv_record("web", NAME, namespace)


def alertmanager_url(namespace: str) -> str:
    """How rulers find every replica (`--alertmanagers.url` form)."""
    return f"dnssrv+http://{alertmanager_srv(namespace)}"


def cluster_alertmanagers(stack: StackConfig, namespace: str, extra: list[str] | None = None) -> list[str]:
    """Where a ruler in a cluster whose Alertmanager lives in `namespace` sends: the configured URLs (`extra`, by
    default the cluster ruler's) and that Alertmanager."""
    urls = list(stack.thanos.ruler.alertmanagers if extra is None else extra)
    if stack.observability.alertmanager.enabled:
        urls.append(alertmanager_url(namespace))
    return urls


def _integration(receiver: ReceiverSpec, credentials: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The `<kind>_configs` entry of a receiver, its secret read from `credentials` (Pulumi secret key -> value)."""
    if receiver.slack:
        return "slack_configs", {
            "api_url": credentials[receiver.slack.api_url_secret], "channel": receiver.slack.channel,
            "send_resolved": True,
            "title": '[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.cluster }})',
            "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.description }}\n"
                    "Runbook: {{ .Annotations.runbook_url }}\n{{ end }}"}
    if receiver.pagerduty:
        return "pagerduty_configs", {"routing_key": credentials[receiver.pagerduty.routing_key_secret],
                                     "send_resolved": True}
    if receiver.email:
        email = receiver.email
        return "email_configs", {"to": email.to, "from": email.sender, "smarthost": email.smarthost,
                                 "auth_username": email.username, "auth_password": credentials[email.password_secret],
                                 "require_tls": True, "send_resolved": True}
    assert receiver.webhook
    return "webhook_configs", {"url": credentials[receiver.webhook.url_secret], "send_resolved": True}


def _matchers(label: str, values: list[str]) -> list[str]:
    return [f'{label}=~"{"|".join(values)}"'] if values else []


def alertmanager_config(spec: AlertmanagerSpec, credentials: dict[str, str]) -> dict[str, Any]:
    """alertmanager.yml: routes by severity and cluster (first match wins), criticals inhibiting the lesser alerts of
    the same cluster and job, one receiver per configured integration plus `discard`."""
    routes = []
    for route in spec.routes:
        entry: dict[str, Any] = {"receiver": route.receiver,
                                 "matchers": _matchers("severity", list(route.severities)) +
                                 _matchers("cluster", list(route.clusters))}
        if route.continue_matching:
            entry["continue"] = True
        routes.append(entry)
    root: dict[str, Any] = {"receiver": spec.root_receiver, "group_by": list(spec.group_by),
                            "group_wait": spec.group_wait, "group_interval": spec.group_interval,
                            "repeat_interval": spec.repeat_interval}
    if routes:
        root["routes"] = routes
    receivers: list[dict[str, Any]] = [{"name": DISCARD}]
    for receiver in spec.receivers:
        kind, config = _integration(receiver, credentials)
        receivers.append({"name": receiver.name, kind: [config]})
    inhibit = [{"source_matchers": [f'severity="{stronger}"'],
                "target_matchers": [f'severity=~"{"|".join(SEVERITIES[i + 1:])}"'], "equal": ["cluster", "job"]}
               for i, stronger in enumerate(SEVERITIES[:-1])]
    return {"global": {"resolve_timeout": "5m"}, "route": root, "inhibit_rules": inhibit, "receivers": receivers}


def render_config(spec: AlertmanagerSpec, credentials: dict[str, str]) -> str:
    """The configuration file's text."""
    return yaml.safe_dump(alertmanager_config(spec, credentials), sort_keys=False)


def alertmanager_args(ctx: ClusterContext, spec: AlertmanagerSpec) -> list[str]:
    """Flags: the config from the Secret, silences and notification log on the PVC, and one peer per replica (a
    single replica runs without clustering)."""
    args = [f"--config.file={CONFIG_DIR}/{CONFIG_KEY}", f"--storage.path={DATA_DIR}",
            f"--web.listen-address=:{ALERTMANAGER_PORT}", "--data.retention=120h"]
    if spec.replicas == 1:
        return args + ["--cluster.listen-address="]
    return args + [f"--cluster.listen-address=0.0.0.0:{ALERTMANAGER_MESH_PORT}", "--cluster.reconnect-timeout=5m",
                   *(f"--cluster.peer={pod_address(NAME, i, NAME, ctx.namespace, ALERTMANAGER_MESH_PORT)}"
                     for i in range(spec.replicas))]


def build_alertmanager(ctx: ClusterContext, spec: AlertmanagerSpec, config_text: Any) -> list[dict[str, Any]]:
    """The config Secret, the StatefulSet with its reloader, a headless Service (web, and the gossip mesh on TCP and
    UDP) and the PDB."""
    component = "alertmanager"
    web = {"name": "web", "containerPort": ALERTMANAGER_PORT, "protocol": "TCP"}
    mesh = [{"name": "mesh-tcp", "containerPort": ALERTMANAGER_MESH_PORT, "protocol": "TCP"},
            {"name": "mesh-udp", "containerPort": ALERTMANAGER_MESH_PORT, "protocol": "UDP"}]
    ports = [web, *(mesh if spec.replicas > 1 else [])]
    probes = {"livenessProbe": {"httpGet": {"path": "/-/healthy", "port": "web"}, "periodSeconds": 30},
              "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "web"}, "periodSeconds": 10}}
    main = container("alertmanager", spec.image, alertmanager_args(ctx, spec), spec.resources, ports=ports,
                     mounts=[{"name": "data", "mountPath": DATA_DIR},
                             {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}], probes=probes)
    pod = pod_spec(service_name(component), [main, config_reloader("config", CONFIG_DIR, ALERTMANAGER_PORT)],
                   selector=ctx.selector(component), replicas=spec.replicas, zone_spread=ctx.zone_spread, node_spread=ctx.node_spread,
                   volumes=[{"name": "config", "secret": {"secretName": CONFIG_SECRET, "defaultMode": 0o440}}],
                   grace_seconds=60)
    objects = workload_objects(ctx, component, NAME, kind="StatefulSet", replicas=spec.replicas, pod=pod,
                               ports=[web], claims=[volume_claim("data", spec.storage_size, None)])
    service = next(o for o in objects if o["kind"] == "Service")["spec"]
    service["ports"] += [{"name": p["name"], "port": ALERTMANAGER_MESH_PORT, "targetPort": ALERTMANAGER_MESH_PORT,
                          "protocol": p["protocol"]} for p in ports[1:]]
    # Peers must find each other before they are ready: gossip is what makes them ready.
    service["publishNotReadyAddresses"] = True
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(CONFIG_SECRET, component),
              "type": "Opaque", "stringData": {CONFIG_KEY: config_text}}
    return [secret, *objects]


def receiver_credentials(spec: AlertmanagerSpec) -> pulumi.Output:
    """The receivers' secrets from the stack config (`thanos:<name>`), as one secret Output of a dict."""
    config = pulumi.Config("thanos")
    keys = sorted({key for receiver in spec.receivers for key in receiver.secret_keys})
    return pulumi.Output.secret(pulumi.Output.all(*(config.require_secret(k) for k in keys)).apply(
        lambda values: dict(zip(keys, values, strict=True))))


@dataclass(frozen=True)
class AlertmanagerArgs:
    """What a cluster's Alertmanager is built from."""

    ctx: ClusterContext
    """The cluster it runs in."""
    spec: AlertmanagerSpec
    """Its settings (receivers, routes)."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What each of its objects waits for, besides the objects it uses (default nothing)."""


class Alertmanager(ManifestComponent):
    """Alertmanager of one cluster."""

    def __init__(self, name: str, args: AlertmanagerArgs, opts: pulumi.ResourceOptions | None = None):
        spec = args.spec
        text = receiver_credentials(spec).apply(lambda credentials: render_config(spec, credentials))
        super().__init__("thanos:k8s:Alertmanager", name, build_alertmanager(args.ctx, spec, text), opts, args.depends_on)
