"""The objects every Thanos workload is made of: a Service, the workload, its PDB and (for some) an HPA."""

from typing import Any

from components.platform.common import hpa_spec, inline_config, pdb_spec, service_spec
from components.platform.kube import ClusterContext


def traced(ctx: ClusterContext, kind: str, name: str, pod: dict[str, Any]) -> dict[str, Any]:
    """The pod with `--tracing.config` on each Thanos container (the stack's Thanos image) when the stack traces:
    one place, so every Thanos workload, present or added later, sends its spans. The service name is the
    container's (thanos-query, thanos-sidecar, ...); the cluster, namespace and workload are resource attributes."""
    if ctx.tracing is None:
        return pod
    attributes = {"cluster": ctx.cluster, "k8s.namespace.name": ctx.namespace, f"k8s.{kind.lower()}.name": name}
    containers = [{**c, "args": [*c["args"], f"--tracing.config={inline_config(ctx.tracing.thanos_config(c['name'], attributes))}"]}
                  if c.get("image") == ctx.image and c.get("args") else c for c in pod["containers"]]
    return {**pod, "containers": containers}


def workload_objects(ctx: ClusterContext, component: str, name: str, *, kind: str, replicas: int,
                     pod: dict[str, Any], ports: list[dict[str, Any]], claims: list[dict[str, Any]] | None = None,
                     max_unavailable: int = 1, autoscale: tuple[int, int] | None = None,
                     selector: dict[str, str] | None = None, extra_labels: dict[str, str] | None = None,
                     pod_labels: dict[str, str] | None = None,
                     pod_annotations: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """A headless Service (DNS SRV discovery and scraping), the Deployment or StatefulSet, a PDB when there is more
    than one replica, and an HPA when `autoscale` is (max replicas, CPU %)."""
    selector = selector or ctx.selector(component)
    metadata = ctx.metadata(name, component)
    if extra_labels:
        metadata["labels"] = {**metadata["labels"], **extra_labels}
    template_labels = {**metadata["labels"], **selector, **(pod_labels or {})}
    template_metadata: dict[str, Any] = {"labels": template_labels}
    annotations = {**({"thanos.io/objstore-copy": ctx.copy} if ctx.copy else {}), **(pod_annotations or {})}
    if annotations:
        template_metadata["annotations"] = annotations
    spec: dict[str, Any] = {"replicas": replicas, "selector": {"matchLabels": selector},
                            "template": {"metadata": template_metadata, "spec": traced(ctx, kind, name, pod)}}
    if kind == "StatefulSet":
        # Parallel at every replica count: podManagementPolicy is immutable, so one that followed the count would
        # make scaling 1 -> 2 replace the StatefulSet.
        spec.update(serviceName=name, podManagementPolicy="Parallel",
                    updateStrategy={"type": "RollingUpdate"},
                    persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain", "whenScaled": "Retain"})
        if claims:
            spec["volumeClaimTemplates"] = claims
    else:
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    if autoscale:
        del spec["replicas"]  # the HPA owns the replica count; a fixed one would fight it on every update
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Service", "metadata": metadata,
         "spec": service_spec(selector, ports, headless=True)},
        {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata, "spec": spec},
    ]
    if replicas > 1:
        objects.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": metadata,
                        "spec": pdb_spec(selector, max_unavailable)})
    if autoscale:
        objects.append({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": metadata,
                        "spec": hpa_spec(kind, name, replicas, *autoscale)})
    return objects
