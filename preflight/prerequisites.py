"""What each cluster must already run for the plan to work: controllers and add-ons the program relies on but does not
install, read from the planned objects themselves (a Service's load balancer annotations, a Gateway's class, the
identity annotations, claims without a class), so the list follows the program as it changes."""

from dataclasses import dataclass
from typing import Any

from .engine import Plan, Resource


@dataclass(frozen=True)
class Prerequisite:
    """One thing a cluster must run, and which planned objects need it."""

    cluster: str
    what: str
    why: str

    def to_json(self) -> dict[str, str]:
        return {"cluster": self.cluster, "what": self.what, "why": self.why}


def _cluster(resource: Resource, providers: dict[str, Resource]) -> str:
    provider = providers.get(resource.provider or "")
    return provider.name.removeprefix("k8s-") if provider else "(default provider)"


def _pod_labels(inputs: dict[str, Any]) -> dict[str, str]:
    spec = inputs.get("spec") or {}
    if "jobTemplate" in spec:
        spec = (spec["jobTemplate"] or {}).get("spec") or {}
    return ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}


def _needs(resource: Resource) -> list[tuple[str, str]]:
    """(what, why) this one planned object needs from its cluster."""
    kind = resource.type.rsplit(":", 1)[-1]
    inputs = resource.inputs
    spec = inputs.get("spec") or {}
    metadata = inputs.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    name = f"{kind} {metadata.get('namespace', '')}/{metadata.get('name', '')}".replace(" /", " ")
    found = []
    if kind == "Service" and spec.get("type") == "LoadBalancer":
        if annotations.get("service.beta.kubernetes.io/aws-load-balancer-type") in ("external", "nlb-ip"):
            found.append(("AWS Load Balancer Controller (v2.5 or later)",
                          f"{name}: an internal NLB with IP targets; without the controller the in-tree provider "
                          "ignores the annotations and the Service never gets an address"))
        elif "networking.gke.io/load-balancer-type" in annotations:
            found.append(("GKE's load balancer controller (built in)", f"{name}: an internal passthrough NLB"))
        elif "service.beta.kubernetes.io/azure-load-balancer-internal" in annotations:
            found.append(("AKS's cloud provider (built in)", f"{name}: an internal Azure load balancer"))
    if kind == "Gateway":
        found.append((f"a Gateway API implementation serving GatewayClass {spec.get('gatewayClassName')}",
                      f"{name} (Gateway API CRDs v1 included)"))
    if kind == "Ingress":
        found.append((f"an ingress controller for class {spec.get('ingressClassName')}",
                      f"{name}: `pulumi up` waits for its address"))
    if kind == "HorizontalPodAutoscaler":
        found.append(("metrics-server", f"{name} scales on CPU"))
    if kind == "NetworkPolicy":
        found.append(("a CNI that enforces NetworkPolicy", "without one every planned NetworkPolicy is silently ignored"))
    if resource.type.startswith("kubernetes:monitoring.coreos.com/"):
        found.append(("prometheus-operator (its CRDs and the operator)", f"{name}"))
    if resource.type.startswith("kubernetes:cert-manager.io/"):
        found.append(("cert-manager", f"{name}"))
    if kind == "ServiceAccount":
        if "eks.amazonaws.com/role-arn" in annotations:
            found.append(("IRSA: the cluster's IAM OIDC provider (EKS runs the pod identity webhook)",
                          f"{name} assumes its role through it"))
        if "iam.gke.io/gcp-service-account" in annotations:
            found.append(("GKE Workload Identity on the cluster and the GKE metadata server on its node pools",
                          f"{name} acts as its Google service account through it"))
    if "azure.workload.identity/use" in _pod_labels(inputs):
        found.append(("AKS workload identity (the OIDC issuer and the workload identity webhook)",
                      f"{name}'s pods get their identity's token from it"))
    claims = list(spec.get("volumeClaimTemplates") or []) + ([{"spec": spec}] if kind == "PersistentVolumeClaim" else [])
    for claim in claims:
        if not (claim.get("spec") or {}).get("storageClassName"):
            found.append(("a default StorageClass whose CSI driver expands volumes",
                          f"{name}: its claims name no class, and the program grows volumes in place "
                          "(allowVolumeExpansion)"))
    return found


CLOUD_BY_IDENTITY = {"eks.amazonaws.com/role-arn": "EKS", "iam.gke.io/gcp-service-account": "GKE",
                     "azure.workload.identity/client-id": "AKS"}
"""The cluster's kind, told by the workload identity annotation the program gives its ServiceAccounts."""
ON_CLOUD = {
    ("EKS", "a CNI that enforces NetworkPolicy"): "the VPC CNI add-on with enableNetworkPolicy, or Calico or Cilium",
    ("GKE", "a CNI that enforces NetworkPolicy"): "Dataplane V2, or network policy enforcement enabled",
    ("AKS", "a CNI that enforces NetworkPolicy"): "--network-policy azure, calico or cilium",
    ("EKS", "a default StorageClass whose CSI driver expands volumes"):
        "the EBS CSI driver add-on and a gp3 class marked default; EKS creates neither",
}
"""How each cloud provides a generic prerequisite."""


def prerequisites(plan: Plan) -> list[Prerequisite]:
    """One entry per cluster and prerequisite, with the first planned object that needs it (and how many do)."""
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    clouds: dict[str, str] = {}
    providers = {r.urn: r for r in plan.resources}
    for resource in plan.resources:
        if not resource.type.startswith("kubernetes:") or not resource.custom:
            continue
        cluster = _cluster(resource, providers)
        for annotation, cloud in CLOUD_BY_IDENTITY.items():
            if annotation in ((resource.inputs.get("metadata") or {}).get("annotations") or {}):
                clouds[cluster] = cloud
        for what, why in _needs(resource):
            first, count = seen.get((cluster, what), (why, 0))
            seen[(cluster, what)] = (first, count + 1)
    found = []
    for (cluster, what), (why, count) in sorted(seen.items()):
        how = ON_CLOUD.get((clouds.get(cluster, ""), what))
        found.append(Prerequisite(cluster, f"{what} ({clouds[cluster]}: {how})" if how else what,
                                  why if count == 1 else f"{why} (and {count - 1} more)"))
    return found


def text(found: list[Prerequisite]) -> str:
    """The preflight's section: per cluster, what must already run there."""
    if not found:
        return "Prerequisites: none outside the program"
    lines = ["Prerequisites (not installed by this program; each cluster must already run them):"]
    cluster = None
    for item in found:
        if item.cluster != cluster:
            cluster = item.cluster
            lines.append(f"  {cluster}:")
        lines.append(f"    - {item.what}: {item.why}")
    return "\n".join(lines)
