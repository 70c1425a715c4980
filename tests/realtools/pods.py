"""What Kubernetes would run for a planned container: its pod, resolved env and args, and the files of its volumes.

Follows the kubelet: `$(VAR)` in env values, command and args expands from the env declared before it (`$$` escapes,
an unknown name stays as written); `fieldRef` and `secretKeyRef`/`configMapKeyRef` resolve from the pod and the
plan's objects; a Secret or ConfigMap volume holds its keys (or its `items`) as files with `defaultMode`, and
Kubernetes mounts those read-only whatever the mount says."""

import base64
import re
from dataclasses import dataclass, field
from typing import Any


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


@dataclass
class Volume:
    """One volume as a container sees it: files (path -> bytes, mode) for Secrets and ConfigMaps; None for a
    writable directory (a claim or an emptyDir) or a folder of the host (`host_path`)."""

    name: str
    files: dict[str, tuple[bytes, int]] | None
    host_path: str | None = None


@dataclass
class Mount:
    """A volumeMount: the volume, where it is mounted, and whether writes are refused."""

    volume: Volume
    path: str
    read_only: bool
    sub_path: str = ""


@dataclass
class PlannedContainer:
    """One container of one pod (replica 0) of a planned workload, resolved as the kubelet would run it."""

    stack: str
    cluster: str
    namespace: str
    kind: str
    workload: str
    pod: str
    name: str
    image: str
    command: list[str]
    args: list[str]
    env: dict[str, str]
    mounts: list[Mount]
    run_as_user: int
    run_as_group: int
    fs_group: int | None
    labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    """Named container ports -> numbers (what SRV records and named target ports resolve to)."""
    subdomain: str | None = None
    """A StatefulSet pod's governing Service (its DNS name is `<pod>.<service>...`)."""
    init: bool = False
    tcp_readiness: bool = False
    """Its readiness probe is a TCP connect (node-exporter, whose HTTP answers only its scrape user)."""
    grace_seconds: int = 30
    """The pod's terminationGracePeriodSeconds (Kubernetes' default: 30)."""

    @property
    def id(self) -> str:
        """stack/cluster/namespace/kind-workload/container, with the pod after the workload for every replica but
        the first: unique in a plan."""
        replica = "" if self.pod in (pod_name({"kind": self.kind, "metadata": {"name": self.workload}}),) else f"/{self.pod}"
        return f"{self.stack}/{self.cluster}/{self.namespace}/{self.kind.lower()}-{self.workload}{replica}/{self.name}"

    @property
    def runs_to_completion(self) -> bool:
        """Jobs, CronJobs and init containers exit; everything else serves until stopped."""
        return self.init or self.kind in ("Job", "CronJob")

    @property
    def is_thanos(self) -> bool:
        """The container runs the Thanos image."""
        return self.image.split("@")[0].rsplit(":", 1)[0].endswith("/thanos/thanos")


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined names expand, `$$` is a literal `$`, unknown references stay."""
    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)
    return _REFERENCE.sub(substitute, text)


class Objects:
    """The plan's objects of one cluster, found by kind, namespace and name."""

    def __init__(self, objects: list[dict[str, Any]]):
        self._by_key = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects}

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self._by_key[(kind, namespace, name)]
        except KeyError:
            raise LookupError(f"{kind} {namespace}/{name} is not in the plan") from None

    def data(self, kind: str, namespace: str, name: str) -> dict[str, bytes]:
        """A Secret's or ConfigMap's keys as bytes (stringData over data, as the API server merges them)."""
        obj = self.get(kind, namespace, name)
        values = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()} if kind == "Secret" else \
            {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        values.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        values.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
        return values


def pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template of a workload object, or None for other kinds."""
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    if obj["kind"] in WORKLOAD_KINDS:
        return obj["spec"]["template"]
    return None


def pod_name(obj: dict[str, Any], replica: int = 0) -> str:
    """A replica's name: `<name>-<ordinal>` for a StatefulSet, a generated-looking name for the rest."""
    name = obj["metadata"]["name"]
    return f"{name}-{replica}" if obj["kind"] == "StatefulSet" else f"{name}-7d9f8b6c5d-x2k4{replica}"


POD_IP_VARIABLE = "$(harness.pod-ip)"
"""status.podIP before the harness gives the pod its loopback address (it replaces this in env and args)."""


def _field(path: str, pod: str, namespace: str, labels: dict[str, str]) -> str:
    if path == "metadata.name":
        return pod
    if path == "metadata.namespace":
        return namespace
    if path in ("status.podIP", "status.hostIP"):
        return POD_IP_VARIABLE
    if path == "spec.nodeName":
        return "kind-control-plane"
    match = re.fullmatch(r"metadata\.labels\['(.+)'\]", path)
    if match:
        return labels.get(match.group(1), "")
    raise ValueError(f"fieldRef {path} is not supported by the harness")


def resolved_env(container: dict[str, Any], pod: str, namespace: str, labels: dict[str, str],
                 objects: Objects) -> dict[str, str]:
    """The container's environment as the kubelet builds it."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "secretRef" in source:
            values = objects.data("Secret", namespace, source["secretRef"]["name"])
        else:
            values = objects.data("ConfigMap", namespace, source["configMapRef"]["name"])
        env.update({prefix + k: v.decode() for k, v in values.items()})
    for var in container.get("env") or []:
        if "valueFrom" not in var:
            env[var["name"]] = expand(var.get("value", ""), env)
            continue
        ref = var["valueFrom"]
        if "fieldRef" in ref:
            env[var["name"]] = _field(ref["fieldRef"]["fieldPath"], pod, namespace, labels)
        elif "secretKeyRef" in ref:
            env[var["name"]] = objects.data("Secret", namespace, ref["secretKeyRef"]["name"])[
                ref["secretKeyRef"]["key"]].decode()
        elif "configMapKeyRef" in ref:
            env[var["name"]] = objects.data("ConfigMap", namespace, ref["configMapKeyRef"]["name"])[
                ref["configMapKeyRef"]["key"]].decode()
        else:
            raise ValueError(f"env {var['name']}: {sorted(ref)} is not supported by the harness")
    return env


def _volume(spec: dict[str, Any], namespace: str, objects: Objects) -> Volume:
    name = spec["name"]
    for kind, key, ref in (("Secret", "secret", "secretName"), ("ConfigMap", "configMap", "name")):
        if key not in spec:
            continue
        source = spec[key]
        values = objects.data(kind, namespace, source[ref])
        mode = source.get("defaultMode", 0o644)
        if source.get("items"):
            files = {item["path"]: (values[item["key"]], item.get("mode", mode)) for item in source["items"]}
        else:
            files = {k: (v, mode) for k, v in values.items()}
        return Volume(name, files)
    if "emptyDir" in spec:
        return Volume(name, None)
    if "persistentVolumeClaim" in spec:
        return Volume(name, None)
    if "hostPath" in spec:
        return Volume(name, None, host_path=spec["hostPath"]["path"])
    raise ValueError(f"volume {name}: {sorted(k for k in spec if k != 'name')} is not supported by the harness")


def containers_of(stack: str, cluster: str, obj: dict[str, Any], objects: Objects,
                  replica: int = 0) -> list[PlannedContainer]:
    """Every container (init containers first) of one replica of a workload object."""
    template = pod_template(obj)
    if template is None:
        return []
    namespace = obj["metadata"]["namespace"]
    pod = pod_name(obj, replica)
    spec = template["spec"]
    labels = (template.get("metadata") or {}).get("labels") or {}
    if obj["kind"] == "StatefulSet":  # what the StatefulSet controller adds to each of its pods
        labels = {**labels, "statefulset.kubernetes.io/pod-name": pod, "apps.kubernetes.io/pod-index": str(replica)}
    volumes = {v["name"]: _volume(v, namespace, objects) for v in spec.get("volumes") or []}
    for claim in (obj["spec"].get("volumeClaimTemplates") or []) if obj["kind"] == "StatefulSet" else []:
        volumes[claim["metadata"]["name"]] = Volume(claim["metadata"]["name"], None)
    pod_security = spec.get("securityContext") or {}
    result = []
    for init, container in [(True, c) for c in spec.get("initContainers") or []] + \
                           [(False, c) for c in spec["containers"]]:
        security = {**pod_security, **(container.get("securityContext") or {})}
        env = resolved_env(container, pod, namespace, labels, objects)
        mounts = []
        for m in container.get("volumeMounts") or []:
            volume = volumes[m["name"]]
            mounts.append(Mount(volume, m["mountPath"], bool(m.get("readOnly")) or volume.files is not None,
                                m.get("subPath", "")))
        result.append(PlannedContainer(
            stack=stack, cluster=cluster, namespace=namespace, kind=obj["kind"], workload=obj["metadata"]["name"],
            pod=pod, name=container["name"], image=container["image"],
            command=[expand(a, env) for a in container.get("command") or []],
            args=[expand(a, env) for a in container.get("args") or []],
            env=env, mounts=mounts, run_as_user=int(security.get("runAsUser", 0)),
            run_as_group=int(security.get("runAsGroup", security.get("runAsUser", 0))),
            fs_group=pod_security.get("fsGroup"), labels=labels,
            ports={p["name"]: p["containerPort"] for p in container.get("ports") or [] if p.get("name")},
            subdomain=obj["spec"].get("serviceName") if obj["kind"] == "StatefulSet" else None, init=init,
            tcp_readiness="tcpSocket" in (container.get("readinessProbe") or {}),
            grace_seconds=int(spec.get("terminationGracePeriodSeconds", 30))))
    return result


def planned_containers(stack: str, objects: list[tuple[str, dict[str, Any]]],
                       all_replicas: bool = False) -> list[PlannedContainer]:
    """Every container of every workload of a plan: replica 0 of each, or with `all_replicas` every replica a
    StatefulSet or Deployment asks for."""
    per_cluster: dict[str, list[dict[str, Any]]] = {}
    for cluster, obj in objects:
        per_cluster.setdefault(cluster, []).append(obj)
    result = []
    for cluster, cluster_objects in per_cluster.items():
        index = Objects(cluster_objects)
        for obj in cluster_objects:
            replicas = int((obj.get("spec") or {}).get("replicas") or 1) if all_replicas else 1
            for replica in range(replicas):
                result.extend(containers_of(stack, cluster, obj, index, replica))
    return result
