"""Thanos Compactor: the single writer per bucket that compacts, downsamples, applies retention and deletes."""

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.platform.common import (
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
from components.platform import names
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.workload import workload_objects
from components.thanos.flags import thanos_args
from config.thanos import CompactorSpec

NAME = names.COMPACTOR
RECEIVE_SHARD = "thanos-compactor-receive"
"""The compactor of receive's replicated streams, beside the one of every other stream, when receive replicas are
deduplicated offline."""
DATA_DIR = "/var/thanos/compact"


RECEIVE_TENANT_LABEL = "tenant_id"
"""The external label receive puts on every block it writes (`--receive.tenant-label-name`, default tenant_id) and no
other producer does: what tells receive's streams apart. Not its replica label: a compactor hides its deduplication
labels from its own selector."""


def shard_selector(receive: bool) -> list[dict[str, Any]]:
    """`--selector.relabel-config` of one compactor shard: the blocks receive wrote (`receive`), or every other block.
    Together they cover every block once, and each shard compacts and downsamples its own streams through."""
    return [{"action": "keep" if receive else "drop", "source_labels": [RECEIVE_TENANT_LABEL], "regex": ".+"}]


def compactor_args(spec: CompactorSpec, dedup_replica_labels: list[str], selector: list[dict[str, Any]] | None = None) -> list[str]:
    """Compactor flags: keep running (--wait), retention per resolution, delete delay, offline dedup of
    byte-identical receive replicas (one-to-one merge, correct only for those) on the shard that owns them, and
    that shard's block selector."""
    retention = spec.retention
    flags = ["--wait", "--wait-interval=5m", f"--http-address=0.0.0.0:{HTTP_PORT}", "--log.format=logfmt",
             f"--data-dir={DATA_DIR}", OBJSTORE_FLAG,
             f"--retention.resolution-raw={retention.raw}", f"--retention.resolution-5m={retention.res_5m}",
             f"--retention.resolution-1h={retention.res_1h}", f"--delete-delay={spec.delete_delay}",
             f"--consistency-delay={spec.consistency_delay}", f"--compact.concurrency={spec.concurrency}",
             "--downsample.concurrency=1",
             "--disable-admin-operations"]  # else anyone reaching the HTTP port can mark every block for deletion
    if not retention.downsampling:
        flags.append("--downsampling.disable")
    flags += [f"--deduplication.replica-label={label}" for label in dedup_replica_labels]
    if selector:
        flags.append(f"--selector.relabel-config={inline_config(selector)}")
    return thanos_args("compact", flags)


def build_compactor(ctx: ClusterContext, spec: CompactorSpec, dedup_replica_labels: list[str],
                    pod_labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """A one-replica StatefulSet with a PVC and a headless Service: never scaled, never autoscaled, no PDB (a PDB
    on a singleton would block every node drain). With offline deduplication of receive replicas, two: a
    deduplication label turns vertical compaction on for every stream the compactor sees, so an accidental overlap
    in a Prometheus or ruler stream would be merged silently instead of halting; one shard owns receive's streams
    (deduplicated), the other every other stream (overlaps halt)."""
    shards: list[tuple[str, str, list[str], list[dict[str, Any]] | None]]
    shards = [(NAME, "compactor", [], shard_selector(receive=False) if dedup_replica_labels else None)]
    if dedup_replica_labels:
        shards.append((RECEIVE_SHARD, "compactor-receive", dedup_replica_labels, shard_selector(receive=True)))
    objects: list[dict[str, Any]] = []
    ports = thanos_ports(grpc=False)
    for name, component, labels, selector in shards:
        pod = pod_spec(service_name("compactor"), [container(
            "thanos-compactor", ctx.image, compactor_args(spec, labels, selector), spec.resources, ports=ports,
            mounts=[{"name": "data", "mountPath": DATA_DIR}, objstore_mount()], probes=http_probes(startup_seconds=600))],
            selector=ctx.selector(component), replicas=1, volumes=[objstore_volume()], grace_seconds=300)
        objects += workload_objects(ctx, component, name, kind="StatefulSet", replicas=1, pod=pod, ports=ports,
                                    claims=[volume_claim("data", spec.storage_size, None)], pod_labels=pod_labels)
    return objects


@dataclass(frozen=True)
class CompactorArgs:
    """What the compactor of one bucket is built from."""

    ctx: ClusterContext
    """The cluster it runs in."""
    spec: CompactorSpec
    """Its settings."""
    dedup_replica_labels: list[str]
    """Replica labels it merges offline (byte-identical receive replicas only; none otherwise)."""
    pod_labels: dict[str, str] | None = None
    """Labels its pods carry for the bucket's workload identity (default none)."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What each of its objects waits for, besides the objects it uses (default nothing)."""


class Compactor(ManifestComponent):
    """Thanos Compactor, one per bucket."""

    def __init__(self, name: str, args: CompactorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:k8s:Compactor", name,
                         build_compactor(args.ctx, args.spec, args.dedup_replica_labels, args.pod_labels), opts,
                         args.depends_on)
