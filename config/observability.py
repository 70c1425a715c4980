"""The observing half of the platform: what each cluster's Prometheus collects, Alertmanager and its routing, Grafana."""

from typing import Literal

from pydantic import Field, model_validator

from .base import Duration, Memory, Name, StrictModel, memory_bytes
from .thanos import Resources, sized

NODE_EXPORTER_IMAGE = "quay.io/prometheus/node-exporter:v1.9.1"
KUBE_STATE_METRICS_IMAGE = "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.16.0"
ALERTMANAGER_IMAGE = "quay.io/prometheus/alertmanager:v0.28.1"
GRAFANA_IMAGE = "docker.io/grafana/grafana:11.6.3"
MEMCACHED_EXPORTER_IMAGE = "quay.io/prometheus/memcached-exporter:v0.15.3"
BLACKBOX_EXPORTER_IMAGE = "quay.io/prometheus/blackbox-exporter:v0.27.0"
SEVERITIES = ("critical", "warning", "info")


class ScrapeLimitsSpec(StrictModel):
    """Limits on every target the opt-in jobs scrape (pods and Services annotated `prometheus.io/scrape`): a target
    over one fails its own scrape (`up` 0, nothing stored from it), the others keep their data."""

    sample_limit: int = Field(default=50_000, ge=0)
    """`sample_limit`: series one target may expose (after relabelling); default 50000 (kube-state-metrics of a
    1,000-pod cluster, scraped by the same job, stays under it; a pod with millions of series no longer exhausts the
    cluster's Prometheus, about 8 KiB of memory each); 0 means none."""
    label_limit: int = Field(default=64, ge=0)
    """`label_limit`: labels on one series; default 64; 0 means none."""
    label_name_length_limit: int = Field(default=256, ge=0)
    """`label_name_length_limit`: characters of a label name; default 256; 0 means none."""
    label_value_length_limit: int = Field(default=2048, ge=0)
    """`label_value_length_limit`: characters of a label value (a URL or a query pasted into a label); default 2048;
    0 means none."""
    body_size_limit: Memory = "32Mi"
    """`body_size_limit`: one scrape's uncompressed body; default 32Mi (50000 series of about 600 bytes); 0 means
    none."""

    def scrape_config(self) -> dict[str, int | str]:
        """The keys of a Prometheus scrape config."""
        return {"sample_limit": self.sample_limit, "label_limit": self.label_limit,
                "label_name_length_limit": self.label_name_length_limit,
                "label_value_length_limit": self.label_value_length_limit,
                "body_size_limit": f"{memory_bytes(self.body_size_limit)}B"}


class CollectionSpec(StrictModel):
    """What each cluster's Prometheus scrapes besides Thanos, and who runs that Prometheus."""

    mode: Literal["managed", "operator"] = "managed"
    """`managed`: this program's Prometheus StatefulSet; `operator`: a prometheus-operator `Prometheus` with
    `spec.thanos`, ServiceMonitors and a PrometheusRule instead (the operator and its CRDs must be installed);
    default managed."""
    kubernetes: bool = True
    """Scrape the cluster through the Kubernetes API (kubelet, cAdvisor, API server, and pods or Services that opt in
    with `prometheus.io/scrape: "true"`), with a read-only ClusterRole; default true."""
    node_exporter: bool = True
    """A node-exporter DaemonSet in its own namespace (the one workload with host access); default true."""
    node_exporter_namespace: Name = "thanos-node-exporter"
    """The namespace of node-exporter (Pod Security privileged, nothing else in it); default thanos-node-exporter."""
    kube_state_metrics: bool = True
    """A kube-state-metrics Deployment (object state: pods, jobs, CronJobs, PVCs); default true."""
    scrape_limits: ScrapeLimitsSpec = Field(default_factory=ScrapeLimitsSpec)
    """Limits on each target of the opt-in pod and Service jobs; default 50000 samples, 64 labels, 32Mi bodies."""


class SlackReceiver(StrictModel):
    """A Slack incoming webhook."""

    channel: str = Field(pattern=r"^[#@][^\s]+$")
    """The channel, e.g. #thanos-alerts; required."""
    api_url_secret: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    """The Pulumi secret (`pulumi config set --secret thanos:<name> <webhook URL>`) holding the webhook URL; required."""


class PagerDutyReceiver(StrictModel):
    """A PagerDuty Events API v2 integration."""

    routing_key_secret: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    """The Pulumi secret holding the integration's routing key; required."""


class EmailReceiver(StrictModel):
    """E-mail through an SMTP relay (STARTTLS required)."""

    to: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    """The address alerts go to; required."""
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", alias="from")
    """The From address; required."""
    smarthost: str = Field(pattern=r"^[^:\s]+:\d+$")
    """The SMTP relay `host:port`; required."""
    username: str
    """The SMTP user; required."""
    password_secret: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    """The Pulumi secret holding the SMTP password; required."""


class WebhookReceiver(StrictModel):
    """A generic webhook (the Alertmanager webhook JSON payload)."""

    url_secret: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    """The Pulumi secret holding the URL (webhook URLs often carry a token); required."""


class ReceiverSpec(StrictModel):
    """One named receiver: exactly one of slack, pagerduty, email or webhook."""

    name: Name
    """The receiver's name, used by routes; required."""
    slack: SlackReceiver | None = None
    """Send to Slack; default none."""
    pagerduty: PagerDutyReceiver | None = None
    """Page through PagerDuty; default none."""
    email: EmailReceiver | None = None
    """Send e-mail; default none."""
    webhook: WebhookReceiver | None = None
    """POST to a webhook; default none."""

    @property
    def kind(self) -> str:
        """Which integration the receiver uses."""
        return next(k for k in ("slack", "pagerduty", "email", "webhook") if getattr(self, k) is not None)

    @property
    def secret_keys(self) -> list[str]:
        """The Pulumi config secrets this receiver reads."""
        integration = getattr(self, self.kind)
        return [getattr(integration, f) for f in type(integration).model_fields if f.endswith("_secret")]

    @model_validator(mode="after")
    def _exactly_one(self) -> "ReceiverSpec":
        chosen = [k for k in ("slack", "pagerduty", "email", "webhook") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(f"receiver {self.name!r} needs exactly one of slack, pagerduty, email, webhook "
                             f"(has {', '.join(chosen) or 'none'})")
        return self


class RouteSpec(StrictModel):
    """A route under the root: alerts matching every given list go to `receiver`; the first match wins."""

    receiver: Name
    """The receiver's name; required."""
    severities: list[Literal["critical", "warning", "info"]] = Field(default_factory=list)
    """Severities this route takes; default every severity."""
    clusters: list[Name] = Field(default_factory=list)
    """Clusters this route takes (the `cluster` label); default every cluster."""
    continue_matching: bool = False
    """Keep matching the routes after this one (send to both); default false."""


class AlertmanagerSpec(StrictModel):
    """Alertmanager in every cluster: an HA StatefulSet gossiping over a headless Service; Prometheus and the rulers
    send to it."""

    enabled: bool = True
    """Deploy Alertmanager (off: alerts go only to ruler.alertmanagers); default true."""
    image: str = ALERTMANAGER_IMAGE
    """Alertmanager image, pinned; default quay.io/prometheus/alertmanager:v0.28.1."""
    replicas: int = Field(default=3, ge=1)
    """Replicas (gossip peers; 3 tolerate one down during a rollout); default 3."""
    storage_size: Memory = "1Gi"
    """PVC for silences and the notification log; default 1Gi."""
    resources: Resources = sized("50m", "128Mi", "256Mi")
    """Default 50m/128Mi requests, 256Mi limit."""
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "cluster", "severity"])
    """Labels alerts are grouped by into one notification; default ["alertname", "cluster", "severity"]."""
    group_wait: Duration = "30s"
    """Wait before the first notification of a new group; default 30s."""
    group_interval: Duration = "5m"
    """Wait before notifying about alerts added to a group; default 5m."""
    repeat_interval: Duration = "4h"
    """Resend a still-firing group after; default 4h."""
    receivers: list[ReceiverSpec] = Field(default_factory=list)
    """Receivers; default none (every alert goes to `discard`, visible in the Alertmanager UI only)."""
    routes: list[RouteSpec] = Field(default_factory=list)
    """Routes by severity and cluster, first match wins; default none (everything to default-receiver)."""
    default_receiver: Name | None = None
    """Where alerts no route takes go; default the first receiver, or `discard` without receivers."""

    @property
    def root_receiver(self) -> str:
        """The root route's receiver."""
        return self.default_receiver or (self.receivers[0].name if self.receivers else "discard")

    @model_validator(mode="after")
    def _receivers_exist(self) -> "AlertmanagerSpec":
        names = [r.name for r in self.receivers]
        problems = [f"receiver {n!r} is defined twice" for n in sorted({n for n in names if names.count(n) > 1})]
        problems += [f"receiver {n!r} is reserved for dropping alerts" for n in names if n == "discard"]
        known = set(names) | {"discard"}
        problems += [f"routes[{i}].receiver {r.receiver!r} is not a receiver ({', '.join(names) or 'none defined'})"
                     for i, r in enumerate(self.routes) if r.receiver not in known]
        if self.default_receiver and self.default_receiver not in known:
            problems.append(f"default-receiver {self.default_receiver!r} is not a receiver "
                            f"({', '.join(names) or 'none defined'})")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class GrafanaSpec(StrictModel):
    """Grafana beside the global query-frontend (or each cluster's without a global view), with a provisioned Thanos
    datasource and the generated dashboards, reached through the authenticated entry point only."""

    enabled: bool = True
    """Deploy Grafana; default true."""
    image: str = GRAFANA_IMAGE
    """Grafana image, pinned; default docker.io/grafana/grafana:11.6.3."""
    replicas: int = Field(default=1, ge=1)
    """Replicas; default 1 (its SQLite database, and so login sessions, is per pod; everything else is provisioned)."""
    resources: Resources = sized("100m", "256Mi", "512Mi")
    """Default 100m/256Mi requests, 512Mi limit."""


class ObservabilitySpec(StrictModel):
    """Collection, alerting and dashboards."""

    collection: CollectionSpec = Field(default_factory=CollectionSpec)
    """What Prometheus collects, and whether this program or prometheus-operator runs it; default managed, all on."""
    alertmanager: AlertmanagerSpec = Field(default_factory=AlertmanagerSpec)
    """Alertmanager and its routing; default 3 replicas, alerts discarded until receivers are configured."""
    grafana: GrafanaSpec = Field(default_factory=GrafanaSpec)
    """Grafana and its dashboards; default on."""
    runbooks: str = "docs/runbooks.md"
    """Where every alert's `runbook_url` points (an anchor per alert is added): set it to the rendered
    docs/runbooks.md of your repository; default docs/runbooks.md."""
