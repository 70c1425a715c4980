"""The stevehipwell chart's rendered defaults (stevehipwell/helm-charts charts/thanos 1.24.1, Thanos v0.42.4): only
query (a Deployment) and the store gateway (a StatefulSet) are on, one replica each, `args:` with `--flag=value`, the
objstore config in the chart's Secret (key `config`, mounted with subPath at /etc/thanos/objstore.yaml) left at its
FILESYSTEM placeholder under the store's emptyDir, full container hardening, probes, and `resources: {}`: no requests
or limits. No PDB, no affinity, no store limits, no replica labels. Release `metrics` in namespace `monitoring`."""

import yaml

from .common import Finding, Fixture, secret, service, workload

NS = "monitoring"
FULL = "metrics-thanos"
IMAGE = "quay.io/thanos/thanos:v0.42.4"
SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True,
            "runAsGroup": 65532, "runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}}
POD = {"securityContext": {"fsGroup": 65534, "runAsGroup": 65532, "runAsNonRoot": True, "runAsUser": 65534,
                           "seccompProfile": {"type": "RuntimeDefault"}},
       "serviceAccountName": "", "automountServiceAccountToken": False}
PROBES = {"livenessProbe": {"httpGet": {"path": "/-/healthy", "port": "http"}, "periodSeconds": 30,
                            "failureThreshold": 4},
          "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "http"}, "periodSeconds": 5,
                             "failureThreshold": 20}}
LOG = ["--log.level=info", "--log.format=logfmt", "--grpc-address=0.0.0.0:10901", "--http-address=0.0.0.0:10902"]
OBJSTORE_MOUNT = {"name": "objstore-config", "mountPath": "/etc/thanos/objstore.yaml", "subPath": "config",
                  "readOnly": True}


def component(name: str, args: list[str], mounts: list[dict], volumes: list[dict]) -> tuple[dict, dict]:
    selected = {"app.kubernetes.io/name": "thanos", "app.kubernetes.io/instance": "metrics",
                "app.kubernetes.io/component": name}
    container = {"name": f"thanos-{name}", "image": IMAGE, "imagePullPolicy": "IfNotPresent", "args": args,
                 "securityContext": SECURITY, "resources": {}, "volumeMounts": mounts, **PROBES,
                 "ports": [{"name": "grpc", "containerPort": 10901}, {"name": "http", "containerPort": 10902}]}
    return selected, {**POD, "serviceAccountName": f"{FULL}-{name}", "volumes": volumes, "containers": [container]}


QUERY_LABELS, QUERY_POD = component("query", ["query", *LOG, "--endpoint=dnssrv+_grpc._tcp."
                                              f"{FULL}-store-gateway-headless.{NS}.svc.cluster.local"], [], [])
STORE_LABELS, STORE_POD = component(
    "store-gateway", ["store", *LOG, "--data-dir=/var/thanos/store", "--objstore.config-file=/etc/thanos/objstore.yaml"],
    [{"name": "data", "mountPath": "/var/thanos/store"}, OBJSTORE_MOUNT],
    [{"name": "data", "emptyDir": {}}, {"name": "objstore-config", "secret": {"secretName": f"{FULL}-objstore-config"}}])
PLACEHOLDER = yaml.safe_dump({"type": "FILESYSTEM", "config": {"directory": "/var/thanos/store/s3"}})

FIXTURE = Fixture(
    name="stevehipwell chart defaults",
    seen_in="stevehipwell/helm-charts charts/thanos 1.24.1 (appVersion 0.42.4) values.yaml and templates, commit "
            "8e4dbb7290ba4634e822f4f7aebe7a72b51b9d12",
    resources=[
        secret(f"{FULL}-objstore-config", "config", PLACEHOLDER, NS),
        service(f"{FULL}-query", NS, QUERY_LABELS),
        service(f"{FULL}-store-gateway-headless", NS, STORE_LABELS),
        workload("Deployment", f"{FULL}-query", NS, QUERY_LABELS, QUERY_POD.pop("containers"), pod=QUERY_POD),
        workload("StatefulSet", f"{FULL}-store-gateway", NS, STORE_LABELS, STORE_POD.pop("containers"), pod=STORE_POD,
                 extra_spec={"serviceName": f"{FULL}-store-gateway-headless"}),
    ],
    findings=[
        Finding("thanos-flags-known", f"deployment-{FULL}-query", "thanos query --endpoint is deprecated in v0.42.4",
                "true", "the chart's default discovery; the real v0.42.4 `thanos query --help` marks --endpoint "
                "(Deprecated) in favour of --endpoint.sd-config"),
        Finding("thanos-ha-min-replicas", f"deployment-{FULL}-query", "query has 1 replica(s); at least 2", "true",
                "one query by default: every rollout or node loss is a read outage"),
        Finding("thanos-ha-min-replicas", f"statefulset-{FULL}-store-gateway", "store has 1 replica(s)", "true",
                "one store gateway: history is unreadable while it restarts"),
        Finding("thanos-hardening-pods", f"deployment-{FULL}-query", "container thanos-query needs resource requests "
                "and a memory limit", "true", "`resources: {}`: query is scheduled anywhere and never bounded"),
        Finding("thanos-hardening-pods", f"statefulset-{FULL}-store-gateway", "container thanos-store-gateway needs "
                "resource requests and a memory limit", "true", "`resources: {}` on the store gateway"),
        Finding("thanos-store-limits", f"statefulset-{FULL}-store-gateway", "the store gateway has no memory limit",
                "true", "an unbounded store gateway takes the node down with it"),
        Finding("thanos-store-limits", f"statefulset-{FULL}-store-gateway", "sets no --store.limits.request-series",
                "true", "no per-request series limit: one wide query can OOM the store"),
        Finding("thanos-store-limits", f"statefulset-{FULL}-store-gateway", "sets no --store.limits.request-samples",
                "true", "no per-request sample limit"),
        Finding("thanos-storage-bucket-safety", f"statefulset-{FULL}-store-gateway", f"{FULL}-store-gateway: the "
                "objstore config of thanos store is a FILESYSTEM bucket (/var/thanos/store/s3)", "true",
                "the chart's placeholder: a local directory (here in "
                "the pod's emptyDir) is no shared, durable bucket"),
        Finding("thanos-exposure-admin-api-off", f"statefulset-{FULL}-store-gateway", "thanos store lets anyone who "
                "reaches its HTTP port mark every block for deletion (POST /api/v1/blocks/mark), and the compactor then "
                "deletes them: set --disable-admin-operations.", "true", "the chart leaves the v0.42.4 switch off"),
    ],
    silent=[
        ("thanos-ha-pdb", "one replica each: nothing to keep available during a drain"),
        ("thanos-ha-anti-affinity", "one replica each"),
        ("thanos-wiring-references", "query dials the store gateway's headless Service, which the chart declares"),
        ("thanos-identity-objstore-secret", "the objstore config is a mounted Secret"),
        ("thanos-producers-replica-labels", "no producer in the release: nothing to deduplicate"),
    ],
)
