"""Memcached pools for the store gateway (index, bucket) and query-frontend (results), and the cache configs."""

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.platform.common import (
    MEMCACHED_EXPORTER_PORT,
    MEMCACHED_PORT,
    container_security_context,
    pdb_spec,
    pod_spec,
    service_spec,
)
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.names import service_address
from config.observability import MEMCACHED_EXPORTER_IMAGE
from config.thanos import MEMCACHED_IMAGE, MemcachedSpec

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
"""The label the StatefulSet controller puts on each of its pods: a Service selects one pod by it."""


def pool_name(pool: str) -> str:
    """Service and workload name of a pool: `thanos-memcached-<pool>`."""
    return f"thanos-memcached-{pool}"


def memcached_addresses(pool: str, namespace: str, spec: MemcachedSpec) -> list[str]:
    """The client addresses: one ClusterIP Service per memcached pod. A Service name resolves (to its virtual IP)
    whether or not its pod is ready, so a client never fails to start for want of a cache: Thanos' memcached
    client refuses to start when no address resolves (`no server address resolved`), which SRV records over a
    headless Service do whenever no cache pod is ready. A fixed list also keeps every key on the same server
    through restarts, where SRV answers change with every pod that comes and goes."""
    return [service_address(f"{pool_name(pool)}-{i}", namespace, MEMCACHED_PORT) for i in range(spec.replicas)]


def memory_limit_mi(spec: MemcachedSpec) -> int:
    """Container memory limit: item memory plus 25% for connections and slab overhead."""
    return int(spec.memory_mb * 1.25) + 32


def client_item_size(spec: MemcachedSpec) -> str:
    """The server's `-I` (`5m`, `512k`) as the byte size Thanos parses (`5MiB`, `512KiB`): a bare number is refused."""
    return spec.max_item_size[:-1] + ("KiB" if spec.max_item_size.endswith("k") else "MiB")


def _client_config(pool: str, namespace: str, spec: MemcachedSpec) -> dict[str, Any]:
    return {"addresses": memcached_addresses(pool, namespace, spec), "timeout": "500ms", "max_idle_connections": 100,
            "max_async_concurrency": 20, "max_async_buffer_size": 10000, "max_get_multi_concurrency": 100,
            "max_get_multi_batch_size": 100, "max_item_size": client_item_size(spec), "dns_provider_update_interval": "10s"}


def index_cache_config(namespace: str, spec: MemcachedSpec) -> dict[str, Any]:
    """`--index-cache.config` for the store gateway."""
    return {"type": "MEMCACHED", "config": _client_config("index", namespace, spec)}


_CACHING_BUCKET_TTLS = {"chunk_subrange_size": 16000, "max_chunks_get_range_requests": 3,
                        "chunk_object_attrs_ttl": "24h", "chunk_subrange_ttl": "24h", "blocks_iter_ttl": "5m",
                        "metafile_exists_ttl": "2h", "metafile_doesnt_exist_ttl": "15m",
                        "metafile_content_ttl": "24h", "metafile_max_size": "1MiB"}
OWN_BUCKET_CACHE = "128MiB"
"""The in-memory caching bucket of a store gateway over another bucket than its cluster's (a DR copy)."""


def caching_bucket_config(namespace: str, spec: MemcachedSpec) -> dict[str, Any]:
    """`--store.caching-bucket.config` for the store gateway (chunks, metadata, iteration). Its keys do not name
    the bucket (`iter:` is the block listing), so every store on the pool must read the same bucket."""
    return {"type": "MEMCACHED", "config": _client_config("bucket", namespace, spec), **_CACHING_BUCKET_TTLS}


def own_caching_bucket_config(spec: MemcachedSpec) -> dict[str, Any]:
    """The caching bucket of a store over another bucket: in memory, so its block listing never answers for the
    cluster's own bucket (or the other way round) through the shared pool."""
    return {"type": "IN-MEMORY", "config": {"max_size": OWN_BUCKET_CACHE, "max_item_size": client_item_size(spec)},
            **_CACHING_BUCKET_TTLS}


def results_cache_config(namespace: str, spec: MemcachedSpec) -> dict[str, Any]:
    """`--query-range.response-cache-config` / `--labels.response-cache-config` for the query-frontend."""
    return {"type": "MEMCACHED", "config": {**_client_config("query-results", namespace, spec), "expiration": "24h"}}


def build_memcached(ctx: ClusterContext, pool: str, spec: MemcachedSpec) -> list[dict[str, Any]]:
    """StatefulSet (memcached and its exporter, no claims), its headless Service (the exporter's scrape target), a
    ClusterIP Service per pod (the clients' addresses) and a PDB of one pool."""
    name = pool_name(pool)
    component = f"memcached-{pool}"
    selector = ctx.selector(component)
    port = {"name": "memcached", "containerPort": MEMCACHED_PORT, "protocol": "TCP"}
    probe = {"tcpSocket": {"port": "memcached"}, "periodSeconds": 10, "timeoutSeconds": 3}
    memcached = {
        "name": "memcached", "image": MEMCACHED_IMAGE, "imagePullPolicy": "IfNotPresent",
        "args": [f"-m{spec.memory_mb}", f"-I{spec.max_item_size}", f"-c{spec.connection_limit}", "-v"],
        "ports": [port],
        "resources": {"requests": {"cpu": spec.cpu, "memory": f"{memory_limit_mi(spec)}Mi"},
                      "limits": {"memory": f"{memory_limit_mi(spec)}Mi"}},
        "securityContext": container_security_context(),
        "livenessProbe": {**probe, "failureThreshold": 6}, "readinessProbe": {**probe, "failureThreshold": 3},
    }
    metrics = {"name": "metrics", "containerPort": MEMCACHED_EXPORTER_PORT, "protocol": "TCP"}
    exporter = {
        "name": "exporter", "image": MEMCACHED_EXPORTER_IMAGE, "imagePullPolicy": "IfNotPresent",
        "args": [f"--memcached.address=localhost:{MEMCACHED_PORT}", f"--web.listen-address=:{MEMCACHED_EXPORTER_PORT}"],
        "ports": [metrics],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": container_security_context(),
        "livenessProbe": {"httpGet": {"path": "/", "port": "metrics"}, "periodSeconds": 30},
        "readinessProbe": {"httpGet": {"path": "/", "port": "metrics"}, "periodSeconds": 10},
    }
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Service", "metadata": ctx.metadata(name, component),
         "spec": service_spec(selector, [port, metrics], headless=True)},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": ctx.metadata(name, component),
         "spec": {"replicas": spec.replicas, "selector": {"matchLabels": selector}, "serviceName": name,
                  "podManagementPolicy": "Parallel", "updateStrategy": {"type": "RollingUpdate"},
                  "template": {"metadata": {"labels": ctx.labels(component)},
                               "spec": pod_spec("thanos-memcached", [memcached, exporter], selector=selector,
                                                replicas=spec.replicas, grace_seconds=30,
                                                zone_spread=ctx.zone_spread, node_spread=ctx.node_spread)}}},
    ]
    for i in range(spec.replicas):
        objects.append({"apiVersion": "v1", "kind": "Service", "metadata": ctx.metadata(f"{name}-{i}", component),
                        "spec": service_spec({**selector, POD_NAME_LABEL: f"{name}-{i}"}, [port], headless=False)})
    if spec.replicas > 1:
        objects.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                        "metadata": ctx.metadata(name, component), "spec": pdb_spec(selector)})
    return objects


@dataclass(frozen=True)
class MemcachedPoolArgs:
    """What one memcached pool is built from."""

    ctx: ClusterContext
    """The cluster it runs in."""
    pool: str
    """Which pool: `index`, `bucket` or `query-results`."""
    spec: MemcachedSpec
    """Its settings."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What each of its objects waits for, besides the objects it uses (default nothing)."""


class MemcachedPool(ManifestComponent):
    """One memcached pool in a cluster."""

    def __init__(self, name: str, args: MemcachedPoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:k8s:MemcachedPool", name, build_memcached(args.ctx, args.pool, args.spec), opts,
                         args.depends_on)
