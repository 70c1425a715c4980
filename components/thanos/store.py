"""Thanos Store gateway: serves the bucket's blocks, hash-sharded over __block_id when asked, with caches and limits."""

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.platform.common import (
    GRPC_PORT,
    HTTP_PORT,
    OBJSTORE_FLAG,
    container,
    http_probes,
    inline_config,
    objstore_mount,
    objstore_volume,
    pod_spec,
    service_name,
    thanos_ports,
    volume_claim,
)
from components.platform.names import pod_address
from components.platform import names
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.workload import workload_objects
from components.thanos.flags import thanos_args
from components.thanos.memcached import caching_bucket_config, index_cache_config, own_caching_bucket_config
from config.base import memory_bytes
from config.thanos import CachesSpec, StoreSpec

NAME = names.STORE
DATA_DIR = "/var/thanos/store"


def shards(spec: StoreSpec) -> list[tuple[str, int | None, int]]:
    """(name, time partition or None, hash shard) of every StatefulSet: `thanos-store`, `thanos-store-<h>`,
    `thanos-store-t<t>` or `thanos-store-t<t>-<h>`."""
    times: list[int | None] = list(range(len(spec.time_partitions))) or [None]
    result = []
    for t in times:
        for h in range(spec.shards):
            name = NAME + (f"-t{t}" if t is not None else "") + (f"-{h}" if spec.shards > 1 else "")
            result.append((name, t, h))
    return result


def shard_names(spec: StoreSpec) -> list[str]:
    """The StatefulSet (and Service) name of every shard."""
    return [name for name, _, _ in shards(spec)]


def store_endpoints(spec: StoreSpec, namespace: str) -> list[str]:
    """The StoreAPI addresses Query needs: every replica of every shard, by its pod name."""
    return [pod_address(name, i, name, namespace) for name in shard_names(spec) for i in range(spec.replicas)]


def shard_relabel_config(shard: int, shards: int) -> list[dict[str, Any]]:
    """Keep the blocks whose __block_id hashes to `shard`: the shards together cover every block exactly once."""
    return [{"action": "hashmod", "source_labels": ["__block_id"], "target_label": "shard", "modulus": shards},
            {"action": "keep", "source_labels": ["shard"], "regex": str(shard)}]


def chunk_pool_bytes(spec: StoreSpec) -> int:
    """`--chunk-pool-size` at a quarter of the memory limit, so the pool plus query working memory fit in the limit."""
    return memory_bytes(spec.resources.limits.memory) // 4


def store_args(ctx: ClusterContext, spec: StoreSpec, caches: CachesSpec, shard: int,
               partition: int | None = None, *, cluster_bucket: bool = True) -> list[str]:
    """Store flags: per-request limits, memcached index cache and caching bucket, deletion-mark delay, shard
    selector and time range. A store over another bucket than the cluster's (not `cluster_bucket`: a DR copy)
    caches that bucket in memory: the shared pool's keys do not name the bucket."""
    bucket_cache = caching_bucket_config(ctx.namespace, caches.bucket) if cluster_bucket else \
        own_caching_bucket_config(caches.bucket)
    flags = [f"--grpc-address=0.0.0.0:{GRPC_PORT}", f"--http-address=0.0.0.0:{HTTP_PORT}", "--log.format=logfmt",
             f"--data-dir={DATA_DIR}", OBJSTORE_FLAG,
             f"--index-cache.config={inline_config(index_cache_config(ctx.namespace, caches.index))}",
             f"--store.caching-bucket.config={inline_config(bucket_cache)}",
             f"--chunk-pool-size={chunk_pool_bytes(spec) // 2**20}MiB",
             f"--store.limits.request-series={spec.series_limit}",
             f"--store.limits.request-samples={spec.samples_limit}",
             f"--store.grpc.series-max-concurrency={spec.series_max_concurrency}",
             f"--ignore-deletion-marks-delay={spec.ignore_deletion_marks_delay}",
             "--store.enable-index-header-lazy-reader",
             "--disable-admin-operations"]  # else anyone reaching the HTTP port can mark every block for deletion
    if spec.shards > 1:
        flags.append(f"--selector.relabel-config={inline_config(shard_relabel_config(shard, spec.shards))}")
    if partition is not None:
        part = spec.time_partitions[partition]
        flags += [f"--min-time=-{part.min_time}"] if part.min_time else []
        flags += [f"--max-time=-{part.max_time}"] if part.max_time else []
    return thanos_args("store", flags)


def build_store(ctx: ClusterContext, spec: StoreSpec, caches: CachesSpec,
                pod_labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Per shard: StatefulSet with a PVC, headless Service, PDB."""
    component = "store"
    objects: list[dict[str, Any]] = []
    for name, partition, shard in shards(spec):
        selector = {**ctx.selector(component), "thanos.io/shard": name[len(NAME) + 1:] or "all"}
        pod = pod_spec(service_name(component), [container(
            "thanos-store", ctx.image, store_args(ctx, spec, caches, shard, partition), spec.resources,
            ports=thanos_ports(),
            mounts=[{"name": "data", "mountPath": DATA_DIR}, objstore_mount()],
            probes=http_probes(startup_seconds=1800))], selector=selector, replicas=spec.replicas,
            volumes=[objstore_volume()], zone_spread=ctx.zone_spread, node_spread=ctx.node_spread)
        objects += workload_objects(ctx, component, name, kind="StatefulSet", replicas=spec.replicas, pod=pod,
                                    ports=thanos_ports(), claims=[volume_claim("data", spec.storage_size, None)],
                                    selector=selector, pod_labels=pod_labels)
    return objects


@dataclass(frozen=True)
class StoreArgs:
    """What a store gateway (all its shards) is built from."""

    ctx: ClusterContext
    """The cluster it runs in."""
    spec: StoreSpec
    """Its settings."""
    caches: CachesSpec
    """The memcached pools its index and bucket caches use."""
    pod_labels: dict[str, str] | None = None
    """Labels its pods carry for the bucket's workload identity (default none)."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What each of its objects waits for, besides the objects it uses (default nothing)."""


class Store(ManifestComponent):
    """Thanos Store gateway (all shards)."""

    def __init__(self, name: str, args: StoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:k8s:Store", name, build_store(args.ctx, args.spec, args.caches, args.pod_labels), opts,
                         args.depends_on)
