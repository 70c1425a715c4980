"""The names other parts of the plan reach a workload by, and how an address is spelled inside a cluster, in one place.

A workload's Service name is also its scrape job (the platform's rules watch `job="thanos-store"`), its dashboard's
key and the first label of its DNS name, so the component module, the rules, the dashboards, the NetworkPolicies and
the wiring read it from here."""

from components.platform.common import GRPC_PORT, HTTP_PORT

CLUSTER_DOMAIN = "svc.cluster.local"
"""The Kubernetes cluster DNS domain under which Services resolve."""

SIDECAR = "thanos-sidecar"
QUERY = "thanos-query"
QUERY_PODS = "thanos-query-pods"
"""The headless Service of the query pods (SRV records for rulers and scrapes)."""
QUERY_FRONTEND = "thanos-query-frontend"
QUERY_TENANTS = "thanos-query-tenants"
"""The global tier's enforcing query (tenants configured): the global query-frontend's downstream."""
QUERY_TENANTS_PODS = "thanos-query-tenants-pods"
"""The enforcing query's headless Service (SRV records for its scrape)."""
QUERY_RULES = "thanos-query-rules"
"""The global tier's query in front of the global ruler (distributed mode): the Query API the global query reads the
ruler through."""
QUERY_RULES_PODS = "thanos-query-rules-pods"
"""Its headless Service (SRV records for its scrape)."""
STORE = "thanos-store"
COMPACTOR = "thanos-compactor"
RULER = "thanos-ruler"
TEAM_RULER = "thanos-team-ruler"
"""The team rulers' headless Service and scrape job (prometheus-operator ThanosRulers, team rules)."""
RECEIVE = "thanos-receive"
"""The ingestors' headless Service."""
RECEIVE_ROUTER = "thanos-receive-router"
BUCKET_WEB = "thanos-bucket-web"
PROMETHEUS = "thanos-prometheus"
MINIO = "thanos-minio"
KUBE_STATE_METRICS = "thanos-kube-state-metrics"


def service_host(service: str, namespace: str) -> str:
    """The in-cluster DNS name of a Service."""
    return f"{service}.{namespace}.{CLUSTER_DOMAIN}"


def service_address(service: str, namespace: str, port: int) -> str:
    """host:port of a Service inside the cluster."""
    return f"{service_host(service, namespace)}:{port}"


def service_url(scheme: str, service: str, namespace: str, port: int, path: str = "") -> str:
    """A URL of a Service inside the cluster."""
    return f"{scheme}://{service_address(service, namespace, port)}{path}"


def pod_host(pod: str, service: str, namespace: str) -> str:
    """The DNS name of one pod under its governing headless Service."""
    return f"{pod}.{service_host(service, namespace)}"


def pod_address(statefulset: str, index: int, service: str, namespace: str, port: int = GRPC_PORT) -> str:
    """host:port of one StatefulSet pod by its stable DNS name under its governing headless Service. Query lists
    StoreAPIs so, each strict: a dead pod stays in the endpoint set and its absence is a warning on the answer (an
    SD-discovered endpoint that fails its health check is silently dropped, and SD names cannot be strict)."""
    return f"{pod_host(f'{statefulset}-{index}', service, namespace)}:{port}"


def srv_record(port_name: str, service: str, namespace: str) -> str:
    """The SRV record of a headless Service's named port (one answer per ready pod)."""
    return f"_{port_name}._tcp.{service_host(service, namespace)}"


def dns_srv(port_name: str, service: str, namespace: str) -> str:
    """A `dnssrv+` address of a headless Service's named port."""
    return f"dnssrv+{srv_record(port_name, service, namespace)}"


def tenant_read_url(global_namespace: str) -> str:
    """Where a tenant's reads go (tenants configured): the global query-frontend, whose downstream query enforces the
    THANOS-TENANT header the entry point sets (no header reads only `default-tenant`)."""
    return service_url("http", QUERY_FRONTEND, global_namespace, HTTP_PORT)


def operators_read_url(global_namespace: str) -> str:
    """Where operators read every tenant: the global query's HTTP, which does not enforce tenancy (the global ruler
    reads through it too)."""
    return service_url("http", QUERY, global_namespace, HTTP_PORT)
