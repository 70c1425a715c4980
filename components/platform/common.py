"""Pure builders every workload shares: labels, hardened security contexts, probes, spreading, PDB, HPA, Services."""

import base64
import hashlib
import hmac
import json
from typing import Any

import bcrypt

from config.base import memory_bytes
from config.thanos import (  # noqa: F401 (re-exported: builders import the labels from here)
    PROMETHEUS_REPLICA_LABEL,
    RECEIVE_REPLICA_LABEL,
    RELOADER_IMAGE,
    REPLICA_LABELS,
    RULER_REPLICA_LABEL,
    Resources,
)

GRPC_PORT = 10901
HTTP_PORT = 10902
REMOTE_WRITE_PORT = 19291
MEMCACHED_PORT = 11211
PROMETHEUS_PORT = 9090
RELOADER_PORT = 9533
ALERTMANAGER_PORT = 9093
ALERTMANAGER_MESH_PORT = 9094
GRAFANA_PORT = 3000
KSM_PORT = 8080
"""kube-state-metrics' metrics port."""
MEMCACHED_EXPORTER_PORT = 9150
TLS_PROBE_PORT = 9115
"""The blackbox exporter's port (the TLS probe)."""

OBJSTORE_SECRET = "thanos-objstore"
OBJSTORE_KEY = "objstore.yml"
OBJSTORE_MOUNT = "/etc/thanos/objstore"
OBJSTORE_FLAG = f"--objstore.config-file={OBJSTORE_MOUNT}/{OBJSTORE_KEY}"


RUN_AS_USER = 65534
ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"


def service_name(component: str) -> str:
    """`thanos-<component>`: the upstream thanos-mixin selects jobs by this string."""
    return f"thanos-{component}"


_BCRYPT_ALPHABET = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                                   b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def stable_bcrypt(purpose: str, password: str, salt_key: str) -> str:
    """`$2b$10$...`: bcrypt with a salt derived from `purpose` and `salt_key` (a generated secret kept in the state),
    so the same password hashes the same on every `pulumi up` (a random salt would rewrite the Secret that holds the
    hash each time). The salt owes nothing to the password: a salt derived from it would let whoever reads the hash
    test guesses with one fast HMAC each, past bcrypt's cost."""
    digest = hmac.new(salt_key.encode(), purpose.encode(), hashlib.sha256).digest()[:16]
    salt = b"$2b$10$" + base64.b64encode(digest).rstrip(b"=").translate(_BCRYPT_ALPHABET)
    return bcrypt.hashpw(password.encode(), salt).decode()


def component_role(component: str) -> str:
    """What a component is, whichever instance: a DR copy's store gateway (`store-dr-<region>`) is a store, a cache
    pool (`memcached-<pool>`) a memcached, a compactor shard (`compactor-receive`) a compactor. NetworkPolicies pick
    peers by it (`app.kubernetes.io/component`)."""
    for prefix, role in (("store-dr-", "store"), ("memcached-", "memcached"), ("compactor-", "compactor")):
        if component.startswith(prefix):
            return role
    return component


def labels(component: str, cluster: str, version: str) -> dict[str, str]:
    """The full label set of a component's objects (not in selectors: added to running workloads in place)."""
    return {**selector_labels(component, cluster), "app.kubernetes.io/component": component_role(component),
            "app.kubernetes.io/part-of": "thanos", "app.kubernetes.io/version": version,
            "app.kubernetes.io/managed-by": "pulumi"}


def selector_labels(component: str, cluster: str) -> dict[str, str]:
    """The labels that select exactly one component's pods (no version: selectors are immutable)."""
    return {"app.kubernetes.io/name": service_name(component), "app.kubernetes.io/instance": cluster}


def split_image(image: str) -> tuple[str, str, str]:
    """(repository, tag, digest) of an image reference (`quay.io/thanos/thanos:v0.42.4@sha256:ab..` ->
    `quay.io/thanos/thanos`, `v0.42.4`, `sha256:ab..`); missing parts are empty."""
    reference, _, digest = image.partition("@")
    repository, tag = reference, ""
    if ":" in reference.rsplit("/", 1)[-1]:
        repository, tag = reference.rsplit(":", 1)
    return repository, tag, digest


def image_version(image: str) -> str:
    """The tag of an image reference (`quay.io/thanos/thanos:v0.42.4` -> `v0.42.4`, with or without a digest)."""
    return split_image(image)[1]


def pod_security_context() -> dict[str, Any]:
    """Pod level: non-root, fixed UID/GID, volumes owned by the group, seccomp RuntimeDefault."""
    return {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER, "fsGroup": RUN_AS_USER,
            "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}


def container_security_context() -> dict[str, Any]:
    """Container level: read-only root, no privilege escalation, every capability dropped (Pod Security restricted)."""
    return {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def resource_requirements(resources: Resources) -> dict[str, Any]:
    """Kubernetes requests/limits from a Resources spec (no CPU limit unless configured)."""
    def compute(c: Any) -> dict[str, str]:
        return {k: v for k, v in (("cpu", c.cpu), ("memory", c.memory)) if v}

    return {"requests": compute(resources.requests), "limits": compute(resources.limits)}


def gomemlimit(resources: Resources) -> str:
    """GOMEMLIMIT at 90% of the memory limit, so Go collects before the kernel kills."""
    return str(int(memory_bytes(resources.limits.memory) * 0.9))


def http_probes(port: str = "http", startup_seconds: int = 0) -> dict[str, Any]:
    """Liveness on /-/healthy and readiness on /-/ready; a startup probe when start can be slow."""
    probes: dict[str, Any] = {
        "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": port}, "periodSeconds": 30,
                          "timeoutSeconds": 5, "failureThreshold": 4},
        "readinessProbe": {"httpGet": {"path": "/-/ready", "port": port}, "periodSeconds": 10,
                           "timeoutSeconds": 5, "failureThreshold": 3},
    }
    if startup_seconds:
        probes["startupProbe"] = {"httpGet": {"path": "/-/ready", "port": port}, "periodSeconds": 10,
                                  "timeoutSeconds": 5, "failureThreshold": max(1, startup_seconds // 10)}
    return probes


def thanos_ports(*, grpc: bool = True, remote_write: bool = False) -> list[dict[str, Any]]:
    """Container ports: http always, grpc for StoreAPI servers, remote-write for receive."""
    ports = [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}]
    if grpc:
        ports.append({"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"})
    if remote_write:
        ports.append({"name": "remote-write", "containerPort": REMOTE_WRITE_PORT, "protocol": "TCP"})
    return ports


def downward_env() -> list[dict[str, Any]]:
    """POD_NAME and POD_NAMESPACE from the downward API (replica labels, local endpoints)."""
    return [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]


def container(name: str, image: str, args: list[str], resources: Resources, *, ports: list[dict[str, Any]],
              mounts: list[dict[str, Any]] | None = None, env: list[dict[str, Any]] | None = None,
              probes: dict[str, Any] | None = None, go: bool = True) -> dict[str, Any]:
    """A hardened container with requests, limits, probes and (for Go programs) GOMEMLIMIT."""
    environment = list(env or [])
    if go:
        environment.append({"name": "GOMEMLIMIT", "value": gomemlimit(resources)})
    spec: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                            **({"args": args} if args else {}), "ports": ports,
                            "resources": resource_requirements(resources),
                            "securityContext": container_security_context(),
                            "terminationMessagePolicy": "FallbackToLogsOnError"}
    if environment:
        spec["env"] = environment
    if mounts:
        spec["volumeMounts"] = mounts
    spec.update(probes or {})
    return spec


def config_reloader(volume: str, directory: str, port: int) -> dict[str, Any]:
    """configmap-reload: calls the program's /-/reload on `port` when the mounted ConfigMap or Secret changes."""
    return {"name": "config-reloader", "image": RELOADER_IMAGE, "imagePullPolicy": "IfNotPresent",
            "args": [f"--volume-dir={directory}", f"--webhook-url=http://localhost:{port}/-/reload",
                     f"--web.listen-address=:{RELOADER_PORT}"],
            "ports": [{"name": "reloader", "containerPort": RELOADER_PORT, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
            "securityContext": container_security_context(),
            "volumeMounts": [{"name": volume, "mountPath": directory, "readOnly": True}],
            "livenessProbe": {"httpGet": {"path": "/metrics", "port": "reloader"}, "periodSeconds": 30},
            "readinessProbe": {"httpGet": {"path": "/metrics", "port": "reloader"}, "periodSeconds": 10}}


def spreading(selector: dict[str, str], replicas: int, zone_spread: str = "DoNotSchedule",
              node_spread: str = "DoNotSchedule") -> dict[str, Any]:
    """Pod anti-affinity on nodes (`DoNotSchedule`: hard; `ScheduleAnyway`: preferred, for a one-node cluster) and a
    zone spread (`DoNotSchedule`: never two replicas in one zone while another zone has none; `ScheduleAnyway`: best
    effort) for a multi-replica workload; nothing for a singleton."""
    if replicas < 2:
        return {}
    term: dict[str, Any] = {"labelSelector": {"matchLabels": selector}, "topologyKey": HOST_KEY}
    anti_affinity = ({"requiredDuringSchedulingIgnoredDuringExecution": [term]} if node_spread == "DoNotSchedule" else
                     {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]})
    return {
        "affinity": {"podAntiAffinity": anti_affinity},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": ZONE_KEY, "whenUnsatisfiable": zone_spread,
                                       "labelSelector": {"matchLabels": selector}}],
    }


def pod_spec(service_account: str, containers: list[dict[str, Any]], *, selector: dict[str, str], replicas: int,
             volumes: list[dict[str, Any]] | None = None, grace_seconds: int = 120,
             zone_spread: str = "DoNotSchedule", node_spread: str = "DoNotSchedule") -> dict[str, Any]:
    """The pod spec every Thanos workload shares."""
    spec: dict[str, Any] = {"serviceAccountName": service_account, "automountServiceAccountToken": False,
                            "securityContext": pod_security_context(), "terminationGracePeriodSeconds": grace_seconds,
                            "nodeSelector": {"kubernetes.io/os": "linux"}, "containers": containers,
                            **spreading(selector, replicas, zone_spread, node_spread)}
    if volumes:
        spec["volumes"] = volumes
    return spec


def objstore_volume() -> dict[str, Any]:
    """The objstore Secret as a read-only file volume (never an env var or inline flag)."""
    return {"name": "objstore", "secret": {"secretName": OBJSTORE_SECRET, "defaultMode": 0o440,
                                           "items": [{"key": OBJSTORE_KEY, "path": OBJSTORE_KEY}]}}


def objstore_mount() -> dict[str, Any]:
    """Where the objstore Secret is mounted."""
    return {"name": "objstore", "mountPath": OBJSTORE_MOUNT, "readOnly": True}


def volume_claim(name: str, size: str, storage_class: str | None) -> dict[str, Any]:
    """A ReadWriteOnce volumeClaimTemplate."""
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"metadata": {"name": name}, "spec": spec}


def service_spec(selector: dict[str, str], ports: list[dict[str, Any]], *, headless: bool) -> dict[str, Any]:
    """A Service over the given container ports; headless ones publish per-pod DNS and SRV records."""
    spec: dict[str, Any] = {"selector": selector,
                            "ports": [{"name": p["name"], "port": p["containerPort"], "targetPort": p["name"],
                                       "protocol": "TCP"} for p in ports]}
    if headless:
        spec.update(clusterIP="None", publishNotReadyAddresses=False)
    return spec


def pdb_spec(selector: dict[str, str], max_unavailable: int = 1) -> dict[str, Any]:
    """A PodDisruptionBudget that lets a drain take `max_unavailable` pods at a time."""
    return {"maxUnavailable": max_unavailable, "selector": {"matchLabels": selector},
            "unhealthyPodEvictionPolicy": "AlwaysAllow"}


def hpa_spec(kind: str, name: str, minimum: int, maximum: int, cpu_utilization: int) -> dict[str, Any]:
    """A HorizontalPodAutoscaler on average CPU utilisation."""
    return {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": name},
            "minReplicas": minimum, "maxReplicas": max(minimum, maximum),
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": cpu_utilization}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}}


def inline_config(config: Any) -> str:
    """A config passed inline in a flag: one line of JSON (a YAML subset Thanos parses), keys sorted."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))
