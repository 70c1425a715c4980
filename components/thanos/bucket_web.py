"""`thanos tools bucket web`: a read-only UI of the blocks in the bucket."""

from dataclasses import dataclass, field
from typing import Any

import pulumi

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
)
from components.platform import names
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.workload import workload_objects
from components.thanos.flags import thanos_args
from config.thanos import BucketWebSpec

NAME = names.BUCKET_WEB


def bucket_web_args(spec: BucketWebSpec) -> list[str]:
    """Bucket web flags: read the bucket, refresh the block list, group blocks by cluster."""
    return thanos_args("tools bucket web", [f"--http-address=0.0.0.0:{HTTP_PORT}", "--log.format=logfmt",
                                            OBJSTORE_FLAG, f"--refresh={spec.refresh}", "--timeout=5m",
                                            "--label=cluster", "--disable-admin-operations"])


def build_bucket_web(ctx: ClusterContext, spec: BucketWebSpec,
                     pod_labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One-replica Deployment and headless Service."""
    component = "bucket-web"
    ports = thanos_ports(grpc=False)
    pod = pod_spec(service_name(component), [container(
        "thanos-bucket-web", ctx.image, bucket_web_args(spec), spec.resources, ports=ports,
        mounts=[objstore_mount()], probes=http_probes())], selector=ctx.selector(component), replicas=1,
        volumes=[objstore_volume()])
    return workload_objects(ctx, component, NAME, kind="Deployment", replicas=1, pod=pod, ports=ports,
                            pod_labels=pod_labels)


@dataclass(frozen=True)
class BucketWebArgs:
    """What a bucket web is built from."""

    ctx: ClusterContext
    """The cluster it runs in."""
    spec: BucketWebSpec
    """Its settings."""
    pod_labels: dict[str, str] | None = None
    """Labels its pods carry for the bucket's workload identity (default none)."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What each of its objects waits for, besides the objects it uses (default nothing)."""


class BucketWeb(ManifestComponent):
    """Thanos bucket web."""

    def __init__(self, name: str, args: BucketWebArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:k8s:BucketWeb", name, build_bucket_web(args.ctx, args.spec, args.pod_labels), opts,
                         args.depends_on)
