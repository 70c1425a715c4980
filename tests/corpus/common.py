"""Builders for the third-party corpus: resource records shaped as the engine records them (type token, name,
provider, inputs), written here to reproduce how public deployments look; no file of theirs is copied."""

import base64
from dataclasses import dataclass, field

import yaml

PROVIDER = "urn:pulumi:ext::ext::pulumi:providers:kubernetes::cluster-a"
OTHER_PROVIDER = "urn:pulumi:ext::ext::pulumi:providers:kubernetes::cluster-b"
STS, DEPLOYMENT = "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:Deployment"


@dataclass
class Finding:
    """One expected finding: which policy, on which resource (name; "" for the stack), a part of its message, and
    whether it is a real weakness of that deployment or the pack's opinion (a configurable floor)."""

    policy: str
    resource: str
    message: str
    kind: str
    why: str


@dataclass
class Fixture:
    """A deployment pattern, where it is seen, what the pack must report and what it must not."""

    name: str
    seen_in: str
    resources: list[dict]
    findings: list[Finding] = field(default_factory=list)
    silent: list[tuple[str, str]] = field(default_factory=list)
    """(policy, reason): policies that must not fire on this fixture at all."""
    missed: list[tuple[str, str]] = field(default_factory=list)
    """(resource, weakness): real weaknesses of the deployment no rule catches (what recall counts against)."""


def record(type_token: str, name: str, inputs: dict, provider: str = PROVIDER) -> dict:
    """A resource as the engine records it."""
    return {"type": type_token, "name": name, "urn": f"urn:pulumi:ext::ext::{type_token}::{name}",
            "provider": provider, "inputs": inputs}


def objstore_yaml(bucket: str, kind: str = "S3") -> str:
    config = {"bucket": bucket, "endpoint": "s3.us-east-1.amazonaws.com", "region": "us-east-1"} if kind == "S3" \
        else {"bucket": bucket}
    return yaml.safe_dump({"type": kind, "config": config})


def secret(name: str, key: str, text: str, namespace: str, base64_data: bool = True, provider: str = PROVIDER):
    """A Secret holding one key, as `data` (base64, how charts render it) or `stringData`."""
    body = {"data": {key: base64.b64encode(text.encode()).decode()}} if base64_data else {"stringData": {key: text}}
    return record("kubernetes:core/v1:Secret", f"secret-{name}",
                  {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                   "type": "Opaque", **body}, provider)


def service(name: str, namespace: str, selector: dict, ports=(("grpc", 10901), ("http", 10902)),
            provider: str = PROVIDER):
    return record("kubernetes:core/v1:Service", f"service-{name}",
                  {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
                   "spec": {"selector": selector, "ports": [{"name": n, "port": p} for n, p in ports]}}, provider)


def workload(kind: str, name: str, namespace: str, labels: dict, containers: list[dict], replicas: int = 1,
             pod: dict | None = None, provider: str = PROVIDER, extra_spec: dict | None = None) -> dict:
    """A Deployment or StatefulSet with the given containers and pod-level fields."""
    type_token = DEPLOYMENT if kind == "Deployment" else STS
    spec = {"replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers, **(pod or {})}},
            **(extra_spec or {})}
    return record(type_token, f"{kind.lower()}-{name}",
                  {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
                   "spec": spec}, provider)


def pdb(name: str, namespace: str, labels: dict, max_unavailable: int = 1, provider: str = PROVIDER) -> dict:
    return record("kubernetes:policy/v1:PodDisruptionBudget", f"pdb-{name}",
                  {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                   "metadata": {"name": name, "namespace": namespace},
                   "spec": {"maxUnavailable": max_unavailable, "selector": {"matchLabels": labels}}}, provider)


def probes(port: str = "http") -> dict:
    return {"livenessProbe": {"httpGet": {"path": "/-/healthy", "port": port}},
            "readinessProbe": {"httpGet": {"path": "/-/ready", "port": port}}}


HARDENED = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]}}
SOFT_ANTI_AFFINITY = lambda labels: {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [  # noqa: E731
    {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": labels},
                                        "topologyKey": "kubernetes.io/hostname"}}]}}
HARD_SPREAD = lambda labels: {  # noqa: E731
    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}]}},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                   "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": labels}}]}
