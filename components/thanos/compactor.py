"""Thanos Compactor: the single writer per bucket that compacts, downsamples, applies retention and deletes."""

from typing import Any

from components.platform.common import (
    HTTP_PORT,
    OBJSTORE_FLAG,
    container,
    http_probes,
    objstore_mount,
    objstore_volume,
    pod_spec,
    service_name,
    thanos_ports,
    volume_claim,
)
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.workload import workload_objects
from components.thanos.flags import thanos_args
from config.thanos import CompactorSpec

NAME = "thanos-compactor"
DATA_DIR = "/var/thanos/compact"


def compactor_args(spec: CompactorSpec, dedup_replica_labels: list[str]) -> list[str]:
    """Compactor flags: keep running (--wait), retention per resolution, delete delay, offline dedup of
    byte-identical receive replicas (one-to-one merge, correct only for those) when replicated receive is on."""
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
    return thanos_args("compact", flags)


def build_compactor(ctx: ClusterContext, spec: CompactorSpec, dedup_replica_labels: list[str],
                    pod_labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """A one-replica StatefulSet with a PVC and a headless Service: never scaled, never autoscaled, no PDB (a PDB
    on a singleton would block every node drain)."""
    component = "compactor"
    ports = thanos_ports(grpc=False)
    pod = pod_spec(service_name(component), [container(
        "thanos-compactor", ctx.image, compactor_args(spec, dedup_replica_labels), spec.resources, ports=ports,
        mounts=[{"name": "data", "mountPath": DATA_DIR}, objstore_mount()], probes=http_probes(startup_seconds=600))],
        selector=ctx.selector(component), replicas=1, volumes=[objstore_volume()], grace_seconds=300)
    return workload_objects(ctx, component, NAME, kind="StatefulSet", replicas=1, pod=pod, ports=ports,
                            claims=[volume_claim("data", spec.storage_size, None)], pod_labels=pod_labels)


class Compactor(ManifestComponent):
    """Thanos Compactor, one per bucket."""

    def __init__(self, name: str, ctx: ClusterContext, spec: CompactorSpec, dedup_replica_labels: list[str],
                 pod_labels: dict[str, str] | None = None, opts=None, depends_on=None):
        super().__init__("thanos:k8s:Compactor", name, build_compactor(ctx, spec, dedup_replica_labels, pod_labels),
                         opts, depends_on)
