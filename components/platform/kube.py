"""Register manifest dicts as typed pulumi-kubernetes resources, and the context every builder receives."""

import weakref
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.platform.common import image_version, labels, selector_labels
from config.tracing import TracingSpec


@dataclass(frozen=True)
class ClusterContext:
    """What a component's builders need to know about where they run."""

    cluster: str
    """Cluster name (the `cluster` external label)."""
    region: str
    """Region name (the `region` external label)."""
    namespace: str
    """Namespace of every Thanos object."""
    image: str
    """The Thanos image."""
    zones: tuple[str, ...] = ()
    """The cluster's zones (`topology.kubernetes.io/zone` values) when known: receive places ingestors per zone."""
    zone_spread: str = "DoNotSchedule"
    """`whenUnsatisfiable` of every zone spread constraint."""
    node_spread: str = "DoNotSchedule"
    """Whether replicas may share a node (`ScheduleAnyway`: preferred anti-affinity only)."""
    cloud: str = ""
    """The provider of the region's storage (aws, gcp, azure, in-cluster): which identity endpoints its pods need."""
    instance: str = ""
    """The `app.kubernetes.io/instance` label when it is not the cluster name: the name the cluster was created with
    (its oldest `renamed-from`), since workload selectors carry it and cannot change."""
    copy: str = ""
    """The bucket copy in use (primary or DR) when it can change: pods carry it, so a switch restarts them (Thanos
    reads the objstore config only at start)."""
    tracing: TracingSpec | None = None
    """Where every Thanos container sends its spans (`--tracing.config`); default none (no tracing)."""

    @property
    def version(self) -> str:
        """The Thanos version tag."""
        return image_version(self.image)

    @property
    def instance_label(self) -> str:
        """The `app.kubernetes.io/instance` value of the cluster's objects."""
        return self.instance or self.cluster

    def labels(self, component: str) -> dict[str, str]:
        """Full labels of a component's objects."""
        return labels(component, self.instance_label, self.version)

    def selector(self, component: str) -> dict[str, str]:
        """Selector labels of a component's pods."""
        return selector_labels(component, self.instance_label)

    def metadata(self, name: str, component: str, **extra: Any) -> dict[str, Any]:
        """metadata with an explicit name (DNS known before deploy), namespace and labels."""
        return {"name": name, "namespace": self.namespace, "labels": self.labels(component), **extra}


_KINDS = {
    ("v1", "Namespace"): lambda: k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): lambda: k8s.core.v1.ServiceAccount,
    ("v1", "Service"): lambda: k8s.core.v1.Service,
    ("v1", "ConfigMap"): lambda: k8s.core.v1.ConfigMap,
    ("v1", "PersistentVolumeClaim"): lambda: k8s.core.v1.PersistentVolumeClaim,
    ("apps/v1", "Deployment"): lambda: k8s.apps.v1.Deployment,
    ("apps/v1", "StatefulSet"): lambda: k8s.apps.v1.StatefulSet,
    ("apps/v1", "DaemonSet"): lambda: k8s.apps.v1.DaemonSet,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): lambda: k8s.rbac.v1.ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): lambda: k8s.rbac.v1.ClusterRoleBinding,
    ("policy/v1", "PodDisruptionBudget"): lambda: k8s.policy.v1.PodDisruptionBudget,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): lambda: k8s.autoscaling.v2.HorizontalPodAutoscaler,
    ("networking.k8s.io/v1", "NetworkPolicy"): lambda: k8s.networking.v1.NetworkPolicy,
    ("batch/v1", "Job"): lambda: k8s.batch.v1.Job,
    ("batch/v1", "CronJob"): lambda: k8s.batch.v1.CronJob,
    ("networking.k8s.io/v1", "Ingress"): lambda: k8s.networking.v1.Ingress,
}
# Custom resources pulumi-kubernetes has no typed class for (their schemas are in reference/schemas/).
CUSTOM_KINDS = {("cert-manager.io/v1", "Issuer"), ("cert-manager.io/v1", "Certificate"),
                ("gateway.networking.k8s.io/v1", "Gateway"), ("gateway.networking.k8s.io/v1", "HTTPRoute"),
                ("monitoring.coreos.com/v1", "Prometheus"), ("monitoring.coreos.com/v1", "ServiceMonitor"),
                ("monitoring.coreos.com/v1", "PrometheusRule"), ("monitoring.coreos.com/v1", "ThanosRuler")}


class CustomObject(pulumi.CustomResource):
    """A custom resource whose `status` the program reads (a Gateway's address): pulumi-kubernetes' CustomResource
    only exposes the properties it was given."""

    status: pulumi.Output[Any]
    """What the controller reports."""

    def __init__(self, name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions):
        super().__init__(f"kubernetes:{manifest['apiVersion']}:{manifest['kind']}", name,
                         {**manifest, "status": None}, opts)


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")

_REGISTERED: "weakref.WeakKeyDictionary[pulumi.ProviderResource, dict[tuple[str, str, str], pulumi.CustomResource]]" = (
    weakref.WeakKeyDictionary())
"""Per Kubernetes provider (one cluster): every object registered so far by (namespace, kind, name)."""


class SecretObject(pulumi.CustomResource):
    """A Secret whose keys stay known when a value is not (a generated key or password during a first preview): the
    SDK's Secret class makes the whole `stringData` one secret value, unknown as soon as any key's value is, so
    nothing (a policy, a reviewer) can see even which keys it has. Each value is a secret here instead."""

    def __init__(self, name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions):
        props = {**manifest, "stringData": {key: pulumi.Output.secret(value)
                                            for key, value in (manifest.get("stringData") or {}).items()}}
        super().__init__("kubernetes:core/v1:Secret", name, props, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["data", "stringData"])))


def pod_references(manifest: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of the ServiceAccount, Secrets, ConfigMaps and claims a workload's pods need to start."""
    spec = manifest.get("spec") or {}
    template = (spec.get("jobTemplate", {}).get("spec", {}) if manifest["kind"] == "CronJob" else spec).get("template")
    pod = (template or {}).get("spec") or {}
    found = {("ServiceAccount", pod["serviceAccountName"])} if pod.get("serviceAccountName") else set()
    for volume in pod.get("volumes") or []:
        if "secret" in volume:
            found.add(("Secret", volume["secret"]["secretName"]))
        if "configMap" in volume:
            found.add(("ConfigMap", volume["configMap"]["name"]))
        if "persistentVolumeClaim" in volume:
            found.add(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "secret" in source:
                found.add(("Secret", source["secret"]["name"]))
            if "configMap" in source:
                found.add(("ConfigMap", source["configMap"]["name"]))
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        for env in container.get("env") or []:
            ref = env.get("valueFrom") or {}
            if "secretKeyRef" in ref:
                found.add(("Secret", ref["secretKeyRef"]["name"]))
            if "configMapKeyRef" in ref:
                found.add(("ConfigMap", ref["configMapKeyRef"]["name"]))
        for source in container.get("envFrom") or []:
            if "secretRef" in source:
                found.add(("Secret", source["secretRef"]["name"]))
            if "configMapRef" in source:
                found.add(("ConfigMap", source["configMapRef"]["name"]))
    return found


def register(manifests: list[dict[str, Any]], prefix: str, parent: pulumi.Resource,
             depends_on: list[pulumi.Resource] | None = None, *,
             protect: bool = False) -> dict[str, pulumi.CustomResource]:
    """Create one typed resource per manifest, named `<prefix>-<kind>-<name>`; returns them by `<kind>/<name>`.

    Each namespaced object depends on its Namespace, and each workload on the ServiceAccount, Secrets, ConfigMaps
    and claims its pods use, when this program registered them earlier or in the same call (workloads go last):
    otherwise a controller creates pods before their ServiceAccount exists and the rollout stalls in FailedCreate.
    `protect`: protected and retained on delete (`pulumi destroy` stops at them and leaves them)."""
    # The cluster is the kubernetes provider the parent passes down (the SDK keeps it in `_providers`).
    provider = parent._providers.get("kubernetes")  # noqa: SLF001
    known = _REGISTERED.setdefault(provider, {}) if provider is not None else {}
    created: dict[str, pulumi.CustomResource] = {}
    for manifest in sorted(manifests, key=lambda m: m["kind"] in WORKLOAD_KINDS):
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
        name, namespace = body["metadata"]["name"], body["metadata"].get("namespace", "")
        needs = [("", "Namespace", namespace)] if namespace else []
        if kind in WORKLOAD_KINDS:
            needs += [(namespace, k, n) for k, n in sorted(pod_references(manifest))]
        after = [*(depends_on or []), *(known[need] for need in needs if need in known)]
        claims = (body.get("spec") or {}).get("volumeClaimTemplates") if kind == "StatefulSet" else None
        # A StatefulSet's claim templates are immutable: the provider would replace the StatefulSet for a bigger
        # volume. The templates keep their first size; each replica's claim is grown in place instead (below).
        opts = pulumi.ResourceOptions(parent=parent, depends_on=after, protect=protect, retain_on_delete=protect,
                                      ignore_changes=["spec.volumeClaimTemplates"] if claims else None)
        if (api_version, kind) in CUSTOM_KINDS:
            resource: pulumi.CustomResource = CustomObject(f"{prefix}-{kind.lower()}-{name}", manifest, opts)
        elif (api_version, kind) == ("v1", "Secret"):
            resource = SecretObject(f"{prefix}-{kind.lower()}-{name}", manifest, opts)
        else:
            resource = _KINDS[(api_version, kind)]()(f"{prefix}-{kind.lower()}-{name}", **_python_args(body), opts=opts)
        created[f"{kind}/{name}"] = known[(namespace, kind, name)] = resource
        if claims:
            _claim_sizes(prefix, name, namespace, claims, body["spec"].get("replicas"), resource, parent)
    return created


def _claim_sizes(prefix: str, statefulset: str, namespace: str, claims: list[dict[str, Any]], replicas: int | None,
                 owner: pulumi.CustomResource, parent: pulumi.Resource) -> None:
    """The size of each replica's claim (`<template>-<statefulset>-<ordinal>`, which the StatefulSet controller
    creates), applied to the claim itself: a bigger size grows the volume where its StorageClass allows expansion,
    and is refused by the API server, naming the claim, where it does not. Never a replacement."""
    for claim in claims:
        template, storage = claim["metadata"]["name"], claim["spec"]["resources"]["requests"]["storage"]
        for ordinal in range(replicas or 0):
            claim_name = f"{template}-{statefulset}-{ordinal}"
            k8s.core.v1.PersistentVolumeClaimPatch(
                f"{prefix}-claim-{claim_name}",
                # Forced: the controller that created the claim owns the field until this patch takes it over.
                # Not awaited: the provider counts a claim of a WaitForFirstConsumer class ready only while it is
                # still Pending, so a bound one (as every claim here is) would time out after five minutes.
                metadata={"name": claim_name, "namespace": namespace,
                          "annotations": {"pulumi.com/patchForce": "true", "pulumi.com/skipAwait": "true"}},
                spec={"resources": {"requests": {"storage": storage}}},
                # Retained on delete: the provider will not drop a patch that holds a required field, and the claim
                # keeping its size is what deleting the patch (a scale-down, destroy) should do anyway.
                opts=pulumi.ResourceOptions(parent=parent, depends_on=[owner], retain_on_delete=True))


def _python_args(body: dict[str, Any]) -> dict[str, Any]:
    """Top-level manifest fields as SDK keyword arguments (nested dicts stay camelCase, as on the wire)."""
    renames = {"stringData": "string_data", "automountServiceAccountToken": "automount_service_account_token",
               "roleRef": "role_ref"}
    return {renames.get(k, k): v for k, v in body.items()}


class ManifestComponent(pulumi.ComponentResource):
    """A component whose children are the Kubernetes objects its pure builder returned."""

    objects: dict[str, pulumi.CustomResource]
    """The registered objects by `<kind>/<name>`."""

    def __init__(self, type_token: str, name: str, manifests: list[dict[str, Any]],
                 opts: pulumi.ResourceOptions | None = None, depends_on: list[pulumi.Resource] | None = None):
        super().__init__(type_token, name, {}, opts)
        self.objects = register(manifests, name, self, depends_on)
        self.register_outputs({"objects": sorted(self.objects)})
