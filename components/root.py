"""The composition root: the stack-wide wiring (one explicit provider per cloud region, one StackReference per cluster
stack, the stack's CA), every region, the DR read path across regions, and the global view. `__main__.py` calls
`deploy`."""

from typing import Any

import pulumi

from components.global_view.certificates import StackAuthority, StackAuthorityArgs
from components.global_view.view import deploy_global_view
from components.images import pin_image_digests
from components.operations.dr import DrStore, DrStoreArgs, replication_objects
from components.platform.kube import register
from components.region import ThanosRegion, ThanosRegionArgs
from components.renames import keep_state_across_renames
from components.storage.backend import cloud_backend
from components.storage.identity import BucketAccess
from config.stack import RegionSpec, StackConfig, dr_cluster_of, replica_bucket_name
from config.storage import InClusterStorage


def cloud_provider(region: RegionSpec, environment: str) -> pulumi.ProviderResource | None:
    """The one explicit provider of a region's cloud (None for in-cluster storage), from the table of backends: only
    the clouds a stack uses are imported."""
    backend = cloud_backend(region.storage.provider)
    return backend.cloud_provider(region, environment) if backend else None


class StackReferences:
    """One StackReference per referenced cluster stack, however many clusters read it."""

    def __init__(self) -> None:
        self._by_name: dict[str, pulumi.StackReference] = {}

    def output(self, stack: str, name: str) -> pulumi.Output[Any]:
        """A required output of `stack`."""
        if stack not in self._by_name:
            self._by_name[stack] = pulumi.StackReference(stack)
        return self._by_name[stack].require_output(name)


def in_cluster_copy(stack: StackConfig, region: RegionSpec,
                    regions: dict[str, ThanosRegion]) -> tuple[BucketAccess, list[pulumi.Resource]]:
    """Replicate an in-cluster bucket into `<bucket>-dr` on the destination region's server (a single-run CronJob in
    the source namespace, as users scoped to the two buckets); returns the access to that copy for its store gateway
    and maintenance jobs (a user of the copy's own), and the Jobs making that user."""
    import pulumi_random as random

    from components.storage.in_cluster import copy_user, copy_user_objects, objstore_config

    storage, source, target_name = region.storage, regions[region.name], dr_cluster_of(stack, region)
    assert isinstance(storage, InClusterStorage) and storage.replication is not None and target_name is not None
    target = regions[storage.replication.destination]
    source_name = region.clusters[0].name
    source_cluster, target_ctx, target_cluster = source.clusters[source_name], target.contexts[target_name], \
        target.clusters[target_name]
    provider = random.Provider(f"{source_name}-replicate-random", opts=pulumi.ResourceOptions(parent=source_cluster))
    password = random.RandomPassword(f"{source_name}-replicate-password", length=32, special=False,
                                     opts=pulumi.ResourceOptions(parent=source_cluster, provider=provider)).result
    in_source, in_target = replication_objects(source.contexts[source_name], target_ctx, storage,
                                               pulumi.Output.secret(password))
    register(in_source, f"{source_name}-replicate", source_cluster, source_cluster.ready)
    register(in_target, f"{target_name}-replicate-from-{source_name}", target_cluster, target_cluster.ready)
    copy = storage.model_copy(update={"bucket": replica_bucket_name(storage)})
    copy_password: pulumi.Output[str] = pulumi.Output.secret(random.RandomPassword(
        f"{target_name}-copy-{region.name}-password", length=32, special=False,
        opts=pulumi.ResourceOptions(parent=target_cluster, provider=provider)).result)
    user = register(copy_user_objects(target_ctx, region.name, copy.bucket, copy_password),
                    f"{target_name}-copy-{region.name}-user", target_cluster, target_cluster.ready)
    config = copy_password.apply(lambda p: objstore_config(copy, target_ctx.namespace, copy_user(region.name), p))
    return BucketAccess(objstore_config=config, annotations={}, pod_labels={}, copy=copy.bucket), \
        [r for key, r in user.items() if key.startswith("Job/")]


STABLE_OUTPUTS = ("regions", "global", "globalBasicAuth", "caCertificate")
"""The stack outputs by name, a contract for StackReferences: `regions` (region name -> its buckets, identities and
clusters), `global` (the global view's endpoint and leaves), `globalBasicAuth` (secret), `caCertificate`."""


def deploy(stack: StackConfig) -> dict[str, Any]:
    """Every region of the stack, then the global view over their clusters; returns the stack outputs."""
    keep_state_across_renames(stack)
    pin_image_digests(stack)
    providers = {region.name: cloud_provider(region, stack.environment) for region in stack.regions}
    refs = StackReferences()
    # One CA per stack: clusters trust each other through it (remote-write and the global view are mTLS).
    authority = StackAuthority("stack", StackAuthorityArgs(stack.environment, stack.tls)) \
        if stack.thanos.receive.enabled or stack.global_view else None
    regions: dict[str, ThanosRegion] = {}
    for region in stack.regions:
        replication = region.storage.replication
        regions[region.name] = ThanosRegion(region.name, ThanosRegionArgs(
            region=region, stack=stack, stack_output=refs.output, provider=providers[region.name],
            dr_provider=providers[replication.destination] if replication else None, authority=authority))
    outputs: dict[str, Any] = {"regions": {name: region.outputs for name, region in regions.items()}}
    # Until the next release, each region's outputs also stay at the top level under its name (what StackReferences
    # read before `regions`), unless the name is one of the stable outputs.
    outputs.update({name: region.outputs for name, region in regions.items() if name not in STABLE_OUTPUTS})
    for region in stack.regions:  # the DR read path: a store gateway on each DR copy, in a cluster of its region
        store, maintenance = regions[region.name].store, None
        dr_access = store.dr_access if store is not None else None
        setup: list[pulumi.Resource] = []
        if region.storage.provider == "in-cluster" and region.storage.replication:
            (dr_access, setup), maintenance = in_cluster_copy(stack, region, regions), stack.thanos.compactor
        replication, cluster = region.storage.replication, dr_cluster_of(stack, region)
        if dr_access is not None and replication is not None and cluster is not None:
            target = regions[replication.destination]
            DrStore(f"{cluster}-dr-store-{region.name}", DrStoreArgs(
                target.contexts[cluster], region.name, stack.thanos.store, stack.thanos.caches, dr_access, maintenance,
                stack.thanos.bucket_verify), pulumi.ResourceOptions(
                    parent=target.clusters[cluster], depends_on=[*target.clusters[cluster].ready, *setup]))
    if stack.global_view:
        outputs.update(deploy_global_view(stack, regions, providers, authority))
    if authority:
        outputs["caCertificate"] = authority.bundle
    return outputs
