"""The namespace of a cluster's Thanos objects: Pod Security restricted, ServiceAccounts, objstore Secret, NetworkPolicies."""

from typing import Any

import pulumi

from components.platform.common import (
    GRPC_PORT,
    HTTP_PORT,
    MEMCACHED_PORT,
    OBJSTORE_KEY,
    OBJSTORE_SECRET,
    PROMETHEUS_PORT,
    REMOTE_WRITE_PORT,
)
from components.platform.kube import ClusterContext, register

# Every ServiceAccount a workload runs as; none of them needs the Kubernetes API, so none gets RBAC or a token.
SERVICE_ACCOUNTS = ("prometheus", "query", "query-frontend", "store", "compactor", "ruler", "receive",
                    "receive-router", "bucket-web", "memcached")
INTERNAL_PORTS = (GRPC_PORT, HTTP_PORT, REMOTE_WRITE_PORT, MEMCACHED_PORT, PROMETHEUS_PORT, 9000, 9533)


def namespace_object(ctx: ClusterContext, environment: str) -> dict[str, Any]:
    """The Namespace, enforcing the Pod Security "restricted" standard."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ctx.namespace, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/warn": "restricted",
        "app.kubernetes.io/part-of": "thanos", "thanos.io/environment": environment}}}


def service_account_objects(ctx: ClusterContext, annotations: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One ServiceAccount per component, annotated with its cloud identity, API token not mounted."""
    objects = []
    for component in SERVICE_ACCOUNTS:
        metadata = ctx.metadata(f"thanos-{component}", component)
        if annotations.get(component):
            metadata["annotations"] = annotations[component]
        objects.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata,
                        "automountServiceAccountToken": False})
    return objects


def objstore_secret(ctx: ClusterContext, config: Any) -> dict[str, Any]:
    """The objstore config as a Secret (mounted as a file; never a ConfigMap, env var or inline flag)."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(OBJSTORE_SECRET, "objstore"),
            "type": "Opaque", "stringData": {OBJSTORE_KEY: config}}


def network_policies(ctx: ClusterContext) -> list[dict[str, Any]]:
    """Deny all ingress, then allow the data path inside the namespace and the two entry points from outside:
    query-frontend's HTTP (users, Grafana) and the receive routers' remote-write."""
    tcp = [{"protocol": "TCP", "port": port} for port in INTERNAL_PORTS]
    metadata = lambda name: ctx.metadata(name, "network-policy")  # noqa: E731
    return [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata("thanos-default-deny"),
         "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata("thanos-data-path"),
         "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "thanos"}}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {}}], "ports": tcp}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata("thanos-query-frontend-ingress"),
         "spec": {"podSelector": {"matchLabels": ctx.selector("query-frontend")}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"namespaceSelector": {}}],
                               "ports": [{"protocol": "TCP", "port": HTTP_PORT}]}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata("thanos-remote-write-ingress"),
         "spec": {"podSelector": {"matchLabels": ctx.selector("receive-router")}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"namespaceSelector": {}}],
                               "ports": [{"protocol": "TCP", "port": REMOTE_WRITE_PORT}]}]}},
    ]


class Namespace(pulumi.ComponentResource):
    """The namespace and what every workload in it shares."""

    namespace: pulumi.CustomResource
    """The Namespace object (everything namespaced depends on it)."""

    def __init__(self, name: str, ctx: ClusterContext, environment: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:k8s:Namespace", name, {}, opts)
        self.namespace = register([namespace_object(ctx, environment)], name, self)[f"Namespace/{ctx.namespace}"]
        self.register_outputs({"namespace": ctx.namespace})

    def add_shared(self, ctx: ClusterContext, objstore_config: Any,
                   annotations: dict[str, dict[str, Any]]) -> dict[str, pulumi.CustomResource]:
        """ServiceAccounts, the objstore Secret and the NetworkPolicies, once the bucket access is known."""
        return register([*service_account_objects(ctx, annotations), objstore_secret(ctx, objstore_config),
                         *network_policies(ctx)], f"{ctx.cluster}-shared", self, [self.namespace])
