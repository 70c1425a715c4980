"""Each cluster's query as a leaf of the global view: gRPC behind server mTLS, published through an internal L4 load
balancer (or a ClusterIP Service when every cluster is a namespace of one Kubernetes cluster), and the names the
global query dials it by."""

from typing import Any

from components.global_view.certificates import Certificate
from components.platform.tls import server_tls_flags, service_names
from components.platform.common import GRPC_PORT
from components.platform.kube import ClusterContext
from components.platform.names import service_address
from config.global_view import GlobalViewSpec

LEAF_SERVICE = "thanos-query-grpc"
LEAF_TLS_SECRET = "thanos-query-grpc-tls"
SRV_SERVICE = "thanos-query"

# Internal (never internet-facing) L4 load balancers that pass TLS through to the pods, per cloud.
INTERNAL_LB_ANNOTATIONS: dict[str, dict[str, str]] = {
    "aws": {"service.beta.kubernetes.io/aws-load-balancer-type": "external",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"},
    # Global access: the global query of another region dials this internal passthrough load balancer.
    "gcp": {"networking.gke.io/load-balancer-type": "Internal",
            "networking.gke.io/internal-load-balancer-allow-global-access": "true"},
    "azure": {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
}


def leaf_host(cluster: str, zone: str) -> str:
    """The DNS name of a cluster's leaf query in the global view's zone."""
    return f"query.{cluster}.{zone}"


def srv_name(zone: str) -> str:
    """The one SRV name listing every leaf."""
    return f"_grpc._tcp.{SRV_SERVICE}.{zone}"


def leaf_address(view: GlobalViewSpec, cluster: str, namespace: str) -> str:
    """host:port the global query dials for one leaf (the name its server certificate carries)."""
    if view.dns:
        return f"{leaf_host(cluster, view.dns.zone)}:{GRPC_PORT}"
    return service_address(LEAF_SERVICE, namespace, GRPC_PORT)


def leaf_certificate(view: GlobalViewSpec, cluster: str, namespace: str) -> Certificate:
    """The leaf's server certificate: its DNS name in the zone and its in-cluster Service names."""
    names = (leaf_host(cluster, view.dns.zone),) if view.dns else ()
    return Certificate(LEAF_TLS_SECRET, f"thanos-query.{cluster}", names + service_names(LEAF_SERVICE, namespace),
                       "server")


def leaf_flags() -> tuple[str, ...]:
    """The leaf query's gRPC server requires a client certificate from the readers CA (the global query's)."""
    return tuple(server_tls_flags("readers"))


def leaf_service(ctx: ClusterContext, view: GlobalViewSpec, cloud: str) -> dict[str, Any]:
    """The Service the global tier reaches the leaf through: only the gRPC port, only from the configured networks."""
    metadata = ctx.metadata(LEAF_SERVICE, "query")
    spec: dict[str, Any] = {"selector": ctx.selector("query"),
                            "ports": [{"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"}]}
    if view.leaf_service == "load-balancer":
        metadata["annotations"] = INTERNAL_LB_ANNOTATIONS[cloud]
        spec.update(type="LoadBalancer", loadBalancerSourceRanges=list(view.network_cidrs))
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}
