"""What a cluster's Prometheus collects besides Thanos: the Kubernetes API server, kubelets and cAdvisor, and pods or
Services that opt in; node-exporter and kube-state-metrics; the read-only RBAC discovery needs.

Opt-in convention (pods and Services alike): the annotation `prometheus.io/scrape: "true"`, optionally
`prometheus.io/port`, `prometheus.io/path` and `prometheus.io/scheme`. The job is the object's
`app.kubernetes.io/name` label (its name for a Service without one), so rules and dashboards select exact jobs.
"""

from typing import Any

import pulumi

from components.platform.common import KSM_PORT, container_security_context, pod_security_context, resource_requirements
from components.platform.kube import ClusterContext
from components.platform.names import KUBE_STATE_METRICS
from config.observability import KUBE_STATE_METRICS_IMAGE, NODE_EXPORTER_IMAGE, ScrapeLimitsSpec
from config.tenancy import DEFAULT_TENANT, TENANT_LABEL
from config.thanos import Compute, Resources

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
NODE_EXPORTER_PORT = 9100
KSM_TELEMETRY_PORT = 8081
KSM_NAME = "kube-state-metrics"
NODE_EXPORTER_NAME = "node-exporter"
NODE_EXPORTER_USER = 65532
"""node-exporter's UID and GID, not the Thanos pods' (65534): with the host's PID namespace and root mounted, the
same UID could read their environments (/proc/<pid>/environ) and the same GID their group-readable secret volumes."""
SCRAPE_ANNOTATIONS = {"prometheus.io/scrape": "true"}
NODE_EXPORTER_WEB_SECRET = "node-exporter-web-config"
"""node-exporter's web config (exporter-toolkit): the one user that may scrape it, as a bcrypt hash."""
NODE_EXPORTER_SCRAPE_SECRET = "thanos-node-exporter-scrape"
"""In the Prometheus namespace that scrapes node-exporter: that user's name and password."""
NODE_EXPORTER_USERNAME = "prometheus"
NODE_EXPORTER_PASSWORD_DIR = "/etc/prometheus/node-exporter"
NODE_EXPORTER_WEB_DIR = "/etc/node-exporter"


def _in_cluster_https(verified_name: str | None = None) -> dict[str, Any]:
    """HTTPS with the pod's token, verified against the cluster CA as `verified_name`. Without a name (kubelets):
    their serving certificates are self-signed on most distributions (no serverTLSBootstrap), so the connection is
    encrypted and the token authenticates, but the kubelet's name cannot be verified."""
    tls: dict[str, Any] = {"ca_file": f"{SA_DIR}/ca.crt"}
    if verified_name:
        tls["server_name"] = verified_name
    else:
        tls["insecure_skip_verify"] = True
    return {"scheme": "https", "authorization": {"credentials_file": f"{SA_DIR}/token"}, "tls_config": tls}


def _opt_in(role: str, meta: str, own_namespaces: tuple[str, ...]) -> list[dict[str, Any]]:
    """Relabelling shared by annotated pods and Services: keep opted-in targets, honour port/path/scheme, name the
    job after app.kubernetes.io/name, keep namespace and pod. Outside `own_namespaces` the job is
    `<namespace>/<name>`: the platform's alerts watch jobs by name (`absent(up{job="thanos-store"} == 1)`), and a pod
    elsewhere labelled like a Thanos component would otherwise stand in for it and mask the alert."""
    prefix = f"__meta_kubernetes_{meta}_annotation_prometheus_io_"
    name_label = f"__meta_kubernetes_{meta}_label_app_kubernetes_io_name"
    relabel: list[dict[str, Any]] = [
        {"source_labels": [f"{prefix}scrape"], "action": "keep", "regex": "true"},
        {"source_labels": [f"{prefix}scheme"], "action": "replace", "regex": "(https?)", "target_label": "__scheme__"},
        {"source_labels": [f"{prefix}path"], "action": "replace", "regex": "(.+)", "target_label": "__metrics_path__"},
        {"source_labels": ["__address__", f"{prefix}port"], "action": "replace",
         "regex": r"([^:]+)(?::\d+)?;(\d+)", "replacement": "$1:$2", "target_label": "__address__"},
        {"source_labels": [f"__meta_kubernetes_{meta}_name" if meta == "service" else "__meta_kubernetes_pod_name"],
         "target_label": "job" if meta == "service" else "pod"},
        {"source_labels": [name_label], "regex": "(.+)", "target_label": "job"},
        {"source_labels": ["__meta_kubernetes_namespace", "job"], "regex": f"({'|'.join(own_namespaces)});(.*)",
         "target_label": "__tmp_own_job", "replacement": "$2"},
        {"source_labels": ["__meta_kubernetes_namespace", "job"], "regex": "(.+);(.+)", "target_label": "job",
         "replacement": "$1/$2"},
        {"source_labels": ["__tmp_own_job"], "regex": "(.+)", "target_label": "job"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    ]
    if role == "endpointslice":
        relabel.append({"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"})
    return relabel


def kubernetes_scrape_jobs(own_namespaces: tuple[str, ...],
                           limits: ScrapeLimitsSpec | None = None) -> list[dict[str, Any]]:
    """kubernetes_sd jobs: API server, kubelet, cAdvisor, opted-in pods (not through a Service) and Services (by
    EndpointSlices: the v1 Endpoints API is deprecated since Kubernetes 1.33); only `own_namespaces` name their
    jobs. The opt-in jobs scrape workloads anyone may deploy: each target is held to `limits` (default
    ScrapeLimitsSpec's), so one over them fails its own scrape instead of exhausting Prometheus."""
    workload_limits = (limits or ScrapeLimitsSpec()).scrape_config()
    return [
        # The API server's certificate names its Service on every distribution (in-cluster clients verify it so).
        {"job_name": "apiserver", "kubernetes_sd_configs": [{"role": "endpointslice", "namespaces": {"names": ["default"]}}],
         **_in_cluster_https("kubernetes.default.svc"),
         "relabel_configs": [{"source_labels": ["__meta_kubernetes_service_name",
                                                "__meta_kubernetes_endpointslice_port_name"],
                              "action": "keep", "regex": "kubernetes;https"}]},
        {"job_name": "kubelet", "kubernetes_sd_configs": [{"role": "node"}], **_in_cluster_https(),
         "relabel_configs": [{"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"}]},
        {"job_name": "cadvisor", "kubernetes_sd_configs": [{"role": "node"}], **_in_cluster_https(),
         "metrics_path": "/metrics/cadvisor",
         "relabel_configs": [{"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"}]},
        {"job_name": "kubernetes-pods", "kubernetes_sd_configs": [{"role": "pod"}], **workload_limits,
         "relabel_configs": [{"source_labels": ["__meta_kubernetes_pod_phase"], "action": "keep", "regex": "Running"},
                             *_opt_in("pod", "pod", own_namespaces)]},
        {"job_name": "kubernetes-services", "kubernetes_sd_configs": [{"role": "endpointslice"}], **workload_limits,
         "relabel_configs": _opt_in("endpointslice", "service", own_namespaces)},
    ]


WORKLOAD_JOBS = ("kubernetes-pods", "kubernetes-services")
"""The jobs that scrape workloads (opted-in pods and Services of any namespace): their series carry the tenant owning
the namespace."""


def tenant_relabelling(job_name: str, tenants: dict[str, str]) -> list[dict[str, Any]]:
    """The relabelling that sets a job's `tenant_id`: the default tenant, and on a workload job the tenant owning the
    target's namespace (`tenants`: namespace -> tenant). It runs last and sets the label from discovery alone; the
    jobs keep honor_labels off, so a target exposing its own `tenant_id` gets it renamed `exported_tenant_id`."""
    rules: list[dict[str, Any]] = [{"target_label": TENANT_LABEL, "replacement": DEFAULT_TENANT}]
    if job_name in WORKLOAD_JOBS:
        owned: dict[str, list[str]] = {}
        for namespace, tenant in tenants.items():
            owned.setdefault(tenant, []).append(namespace)
        rules += [{"source_labels": ["__meta_kubernetes_namespace"], "regex": "|".join(sorted(namespaces)),
                   "target_label": TENANT_LABEL, "replacement": tenant} for tenant, namespaces in sorted(owned.items())]
    return rules


def with_tenants(jobs: list[dict[str, Any]], tenants: dict[str, str] | None) -> list[dict[str, Any]]:
    """Every job with its tenant relabelling (`tenants`: namespace -> tenant); unchanged without tenants (None)."""
    if tenants is None:
        return jobs
    return [{**job, "relabel_configs": [*job.get("relabel_configs", []), *tenant_relabelling(job["job_name"], tenants)]}
            for job in jobs]


def node_exporter_scrape_job(namespace: str) -> dict[str, Any]:
    """node-exporter's own job: its Service's endpoints, with the scrape user's password (it answers 401 without),
    the node's name as `node`."""
    return {"job_name": NODE_EXPORTER_NAME,
            "kubernetes_sd_configs": [{"role": "endpointslice", "namespaces": {"names": [namespace]}}],
            "basic_auth": {"username": NODE_EXPORTER_USERNAME, "password_file": f"{NODE_EXPORTER_PASSWORD_DIR}/password"},
            "relabel_configs": [{"source_labels": ["__meta_kubernetes_service_name"], "action": "keep",
                                 "regex": NODE_EXPORTER_NAME},
                                {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"}]}


def node_exporter_scrape_secret(ctx: ClusterContext, password: Any) -> dict[str, Any]:
    """The scrape user's credentials, in the namespace of the Prometheus that scrapes node-exporter."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(NODE_EXPORTER_SCRAPE_SECRET, "prometheus"),
            "type": "Opaque", "stringData": {"username": NODE_EXPORTER_USERNAME, "password": password}}


def node_exporter_web_config(password_hash: str) -> str:
    """exporter-toolkit's web config: basic auth for the scrape user only (bcrypt)."""
    return f"basic_auth_users:\n  {NODE_EXPORTER_USERNAME}: {password_hash}\n"


def discovery_rules() -> list[dict[str, Any]]:
    """What Prometheus' discovery and the kubelet's authorisation of its token need, read-only."""
    return [{"apiGroups": [""], "resources": ["nodes", "nodes/metrics", "services", "pods"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
            {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]


def cluster_role(ctx: ClusterContext, name: str, component: str, rules: list[dict[str, Any]],
                 service_account: str) -> list[dict[str, Any]]:
    """A ClusterRole and its binding to one ServiceAccount (named after the namespace: cluster-scoped names must not
    collide when several stack clusters share one Kubernetes cluster)."""
    role_name = f"{name}-{ctx.namespace}"
    labels = ctx.labels(component)
    return [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": role_name, "labels": labels}, "rules": rules},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": role_name, "labels": labels},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
             "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": ctx.namespace}]}]


def _small(cpu: str, memory: str, limit: str) -> Resources:
    return Resources(requests=Compute(cpu=cpu, memory=memory), limits=Compute(memory=limit))


def _scraped_service(name: str, namespace: str, labels: dict[str, str], selector: dict[str, str],
                     port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels,
                         "annotations": {**SCRAPE_ANNOTATIONS, "prometheus.io/port": str(port)}},
            "spec": {"clusterIP": "None", "selector": selector,
                     "ports": [{"name": "metrics", "port": port, "targetPort": port, "protocol": "TCP"}]}}


def build_kube_state_metrics(ctx: ClusterContext) -> list[dict[str, Any]]:
    """kube-state-metrics in the Thanos namespace: read-only list/watch on the objects it reports, hardened."""
    component = KSM_NAME
    labels = {**ctx.labels(component), "app.kubernetes.io/name": KSM_NAME}
    selector = {"app.kubernetes.io/name": KSM_NAME, "app.kubernetes.io/instance": ctx.instance_label}
    probe = {"httpGet": {"path": "/livez", "port": "metrics"}, "periodSeconds": 30}
    ksm = {"name": KSM_NAME, "image": KUBE_STATE_METRICS_IMAGE, "imagePullPolicy": "IfNotPresent",
           "args": [f"--port={KSM_PORT}", f"--telemetry-port={KSM_TELEMETRY_PORT}",
                    "--resources=cronjobs,daemonsets,deployments,jobs,nodes,persistentvolumeclaims,pods,"
                    "statefulsets,poddisruptionbudgets,horizontalpodautoscalers"],
           "ports": [{"name": "metrics", "containerPort": KSM_PORT, "protocol": "TCP"},
                     {"name": "telemetry", "containerPort": KSM_TELEMETRY_PORT, "protocol": "TCP"}],
           "resources": resource_requirements(_small("50m", "128Mi", "512Mi")),
           "securityContext": container_security_context(), "livenessProbe": probe,
           "readinessProbe": {"httpGet": {"path": "/readyz", "port": "telemetry"}, "periodSeconds": 10}}
    pod = {"serviceAccountName": KUBE_STATE_METRICS, "automountServiceAccountToken": True,
           "securityContext": pod_security_context(), "nodeSelector": {"kubernetes.io/os": "linux"},
           "containers": [ksm]}
    watched = [("", ["nodes", "pods", "persistentvolumeclaims"]),
               ("apps", ["daemonsets", "deployments", "statefulsets"]), ("batch", ["cronjobs", "jobs"]),
               ("policy", ["poddisruptionbudgets"]), ("autoscaling", ["horizontalpodautoscalers"])]
    rules = [{"apiGroups": [group], "resources": resources, "verbs": ["list", "watch"]} for group, resources in watched]
    return [
        *cluster_role(ctx, KUBE_STATE_METRICS, component, rules, KUBE_STATE_METRICS),
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {**ctx.metadata(KSM_NAME, component), "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                  "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                  "template": {"metadata": {"labels": {**labels, **selector}}, "spec": pod}}},
        _scraped_service(KSM_NAME, ctx.namespace, labels, selector, KSM_PORT),
    ]


def build_node_exporter(ctx: ClusterContext, namespace: str, password_hash: Any) -> list[dict[str, Any]]:
    """node-exporter, the one workload with host access, alone in a Pod Security `privileged` namespace: host
    network and PID namespace (real network and process statistics), the host's root read-only, no capabilities,
    non-root, no service account token. On the host network no NetworkPolicy applies, so :9100 answers only the scrape
    user (basic auth, `password_hash` a bcrypt hash); its probes are TCP."""
    labels = {**ctx.labels(NODE_EXPORTER_NAME), "app.kubernetes.io/name": NODE_EXPORTER_NAME}
    selector = {"app.kubernetes.io/name": NODE_EXPORTER_NAME}
    exporter = {
        "name": NODE_EXPORTER_NAME, "image": NODE_EXPORTER_IMAGE, "imagePullPolicy": "IfNotPresent",
        "args": ["--path.rootfs=/host/root", "--path.procfs=/host/root/proc", "--path.sysfs=/host/root/sys",
                 f"--web.listen-address=:{NODE_EXPORTER_PORT}", f"--web.config.file={NODE_EXPORTER_WEB_DIR}/web-config.yml",
                 "--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|run/containerd/.+|var/lib/kubelet/.+)($|/)"],
        "ports": [{"name": "metrics", "containerPort": NODE_EXPORTER_PORT, "protocol": "TCP"}],
        "resources": resource_requirements(_small("50m", "64Mi", "128Mi")),
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "root", "mountPath": "/host/root", "readOnly": True, "mountPropagation": "HostToContainer"},
                         {"name": "web-config", "mountPath": NODE_EXPORTER_WEB_DIR, "readOnly": True}],
        "livenessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 30},
        "readinessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 10},
    }
    pod = {"automountServiceAccountToken": False, "hostNetwork": True, "hostPID": True,
           # fsGroup: the web config Secret's files are group-readable by it (fsGroup never touches hostPath volumes).
           "securityContext": {"runAsNonRoot": True, "runAsUser": NODE_EXPORTER_USER, "runAsGroup": NODE_EXPORTER_USER,
                               "fsGroup": NODE_EXPORTER_USER, "seccompProfile": {"type": "RuntimeDefault"}},
           "nodeSelector": {"kubernetes.io/os": "linux"}, "tolerations": [{"operator": "Exists"}],
           "priorityClassName": "system-node-critical", "containers": [exporter],
           "volumes": [{"name": "root", "hostPath": {"path": "/"}},
                       {"name": "web-config", "secret": {"secretName": NODE_EXPORTER_WEB_SECRET, "defaultMode": 0o440}}]}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {
            "pod-security.kubernetes.io/enforce": "privileged", "app.kubernetes.io/part-of": "thanos"}}},
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": NODE_EXPORTER_WEB_SECRET, "namespace": namespace, "labels": labels}, "type": "Opaque",
         "stringData": {"web-config.yml": pulumi.Output.from_input(password_hash).apply(node_exporter_web_config)}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet",
         "metadata": {"name": NODE_EXPORTER_NAME, "namespace": namespace, "labels": labels},
         "spec": {"selector": {"matchLabels": selector},
                  "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
                  "template": {"metadata": {"labels": labels}, "spec": pod}}},
        # No scrape annotation: the opt-in jobs would scrape it without the password; its own job does.
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NODE_EXPORTER_NAME, "namespace": namespace,
                                                            "labels": labels},
         "spec": {"clusterIP": "None", "selector": selector, "ports": [
             {"name": "metrics", "port": NODE_EXPORTER_PORT, "targetPort": NODE_EXPORTER_PORT, "protocol": "TCP"}]}},
    ]
