"""The DR read path: a read-only store gateway on a region's DR copy, in a cluster of the DR region, so history stays
queryable when the primary region is down. It has its own reader identity and its own objstore Secret."""

from dataclasses import dataclass
from typing import Any

import pulumi

from components.operations.bucket_jobs import REPLICA_SECRET, copy_maintenance, replicate_cronjob, verify_copy_cronjob
from components.platform.common import (
    OBJSTORE_KEY,
    container,
    http_probes,
    objstore_mount,
    pod_spec,
    thanos_ports,
    volume_claim,
)
from components.platform.kube import ClusterContext, register
from components.platform.namespace import namespace_peer, network_policy, object_storage_egress, tcp_ports
from components.platform.workload import workload_objects
from components.storage.identity import BucketAccess, dr_store_component, service_account
from components.storage.in_cluster import PORT as MINIO_PORT
from components.storage.in_cluster import READ_ACTIONS, WRITE_ACTIONS, bucket_policy, objstore_config, scoped_user_job
from components.thanos.store import DATA_DIR, store_args
from config.stack import replica_bucket_name
from config.storage import InClusterStorage
from config.thanos import BucketVerifySpec, CachesSpec, CompactorSpec, StoreSpec


def dr_store_name(source_region: str) -> str:
    """StatefulSet and Service name of the DR store gateway of a region's copy."""
    return f"thanos-{dr_store_component(source_region)}"


def build_dr_store(ctx: ClusterContext, source_region: str, spec: StoreSpec, caches: CachesSpec,
                   access: BucketAccess, maintenance: CompactorSpec | None = None,
                   verify: BucketVerifySpec | None = None) -> list[dict[str, Any]]:
    """ServiceAccount (reader identity), objstore Secret of the DR copy, one unsharded store StatefulSet over every
    block of the copy, its headless Service and PDB, and its object storage egress. With `maintenance` (a copy made
    by replicate, which never deletes), retention and cleanup CronJobs on the copy with the primary's retention."""
    component = dr_store_component(source_region)
    name, secret = dr_store_name(source_region), f"thanos-objstore-dr-{source_region}"
    whole = spec.model_copy(update={"shards": 1, "time_partitions": []})
    metadata = ctx.metadata(service_account(component), component)
    if access.annotations.get(component):
        metadata["annotations"] = access.annotations[component]
    pod = pod_spec(service_account(component), [container(
        "thanos-store", ctx.image, store_args(ctx, whole, caches, 0, cluster_bucket=False), spec.resources, ports=thanos_ports(),
        mounts=[{"name": "data", "mountPath": DATA_DIR}, objstore_mount()], probes=http_probes(startup_seconds=1800))],
        selector=ctx.selector(component), replicas=spec.replicas, zone_spread=ctx.zone_spread, node_spread=ctx.node_spread,
        volumes=[{"name": "objstore", "secret": {"secretName": secret, "defaultMode": 0o440,
                                                 "items": [{"key": OBJSTORE_KEY, "path": OBJSTORE_KEY}]}}])
    jobs = [verify_copy_cronjob(ctx, verify or BucketVerifySpec(), secret, source_region, service_account(component),
                                access.pod_labels)]
    if maintenance is not None:
        jobs += [*(service_account_object(ctx, c) for c in ("bucket-retention", "bucket-cleanup")),
                *copy_maintenance(ctx, maintenance, secret, source_region)]
    return [*jobs,
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata, "automountServiceAccountToken": False},
            {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(secret, component), "type": "Opaque",
             "stringData": {OBJSTORE_KEY: pulumi.Output.secret(access.objstore_config)}},
            object_storage_egress(ctx, f"{name}-storage-egress", {"matchLabels": ctx.selector(component)}),
            *workload_objects(ctx, component, name, kind="StatefulSet", replicas=spec.replicas, pod=pod,
                              ports=thanos_ports(), claims=[volume_claim("data", spec.storage_size, None)],
                              pod_labels=access.pod_labels)]


def service_account_object(ctx: ClusterContext, component: str) -> dict[str, Any]:
    """A job's ServiceAccount (no API token; in-cluster storage needs no cloud identity)."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": ctx.metadata(service_account(component), component),
            "automountServiceAccountToken": False}


REPLICATE_SOURCE_SECRET = "thanos-objstore-replicate-source"
REPLICATE_USER_SECRET = "thanos-replicate-user"
READ_USER, WRITE_USER = "thanos-replicate-read", "thanos-replicate-write"


def replication_objects(source: ClusterContext, target: ClusterContext, storage: InClusterStorage,
                        password: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(objects in the source namespace, objects in the target's) of a replicate job between two in-cluster servers:
    a user that may only read the source bucket, one that may only read and add to the copy (never delete), the
    job with their two configs, and the two NetworkPolicies that let exactly it reach the target server."""
    copy = storage.model_copy(update={"bucket": replica_bucket_name(storage)})
    job_pods = {"matchLabels": source.selector("bucket-replicate")}
    server = {"matchLabels": target.selector("minio")}
    egress = network_policy(source, "thanos-bucket-replicate-egress", job_pods, egress=[
        {"to": [{**namespace_peer(target.namespace), "podSelector": server}], "ports": tcp_ports(MINIO_PORT)}])
    ingress = network_policy(target, f"thanos-minio-from-{source.cluster}", server, ingress=[
        {"from": [{**namespace_peer(source.namespace), "podSelector": job_pods}], "ports": tcp_ports(MINIO_PORT)}])

    def secret(ctx: ClusterContext, name: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(name, "bucket-replicate"),
                "type": "Opaque", "stringData": {k: pulumi.Output.secret(v) for k, v in data.items()}}

    source_config = pulumi.Output.from_input(password).apply(
        lambda p: objstore_config(storage, source.namespace, READ_USER, p))
    target_config = pulumi.Output.from_input(password).apply(
        lambda p: objstore_config(copy, target.namespace, WRITE_USER, p))
    in_source = [secret(source, REPLICATE_USER_SECRET, {"password": password}),
                 scoped_user_job(source, READ_USER, REPLICATE_USER_SECRET, bucket_policy(storage.bucket, READ_ACTIONS)),
                 secret(source, REPLICATE_SOURCE_SECRET, {OBJSTORE_KEY: source_config}),
                 secret(source, REPLICA_SECRET, {OBJSTORE_KEY: target_config}),
                 service_account_object(source, "bucket-replicate"), egress,
                 replicate_cronjob(source, storage.replicate_schedule, REPLICATE_SOURCE_SECRET)]
    in_target = [secret(target, REPLICATE_USER_SECRET, {"password": password}),
                 scoped_user_job(target, WRITE_USER, REPLICATE_USER_SECRET, bucket_policy(copy.bucket, WRITE_ACTIONS)),
                 ingress]
    return in_source, in_target


@dataclass(frozen=True)
class DrStoreArgs:
    """What the store gateway on one region's DR copy is built from."""

    ctx: ClusterContext
    """The DR cluster it runs in."""
    source_region: str
    """The region whose copy it reads."""
    spec: StoreSpec
    """The stack's store gateway settings (it runs them unsharded)."""
    caches: CachesSpec
    """The memcached pools its caches use."""
    access: BucketAccess
    """Read access to the DR copy."""
    maintenance: CompactorSpec | None = None
    """With a copy made by replicate (which never deletes): the primary's retention, kept on the copy by CronJobs
    (default none)."""
    verify: BucketVerifySpec | None = None
    """The settings of the CronJob verifying the copy (default none: the verify defaults)."""


class DrStore(pulumi.ComponentResource):
    """The read-only store gateway on one region's DR copy (and the maintenance of a copy made by replicate)."""

    def __init__(self, name: str, args: DrStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:dr:Store", name, {}, opts)
        register(build_dr_store(args.ctx, args.source_region, args.spec, args.caches, args.access, args.maintenance,
                                args.verify), name, self)
        self.register_outputs({"store": dr_store_name(args.source_region)})
