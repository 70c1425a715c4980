"""The one interface of a cloud's object store, and the table of backends: a new cloud is one module and one row.

In-cluster storage (`in_cluster.py`) is not in the table: its server is built inside its cluster (ThanosCluster)."""

import importlib
from dataclasses import dataclass
from typing import Any, Protocol, cast

import pulumi

from components.storage.identity import BucketAccess, ClusterIdentity
from config.stack import RegionSpec, StackConfig


class ObjectStore(Protocol):
    """What a region's cloud object store gives the region and the stack, on every cloud."""

    outputs: dict[str, Any]
    """What the stack exports for the region's storage."""
    access: dict[str, BucketAccess]
    """Bucket access by cluster name."""
    dr_access: BucketAccess | None
    """Read-only access to the DR copy for the DR cluster's store gateway (None without a DR copy)."""


@dataclass(frozen=True)
class RegionStorage:
    """What a region gives its cloud's object store."""

    region: RegionSpec
    """The region: its name and its storage spec."""
    stack: StackConfig
    """The stack: its namespace, protect-data and the compactor's retention."""
    identities: list[ClusterIdentity]
    """Each cluster of the region, whose components get identities on the bucket."""
    provider: pulumi.ProviderResource
    """The region's cloud provider."""
    dr_provider: pulumi.ProviderResource | None = None
    """The cloud provider of the region that holds the DR copy; default none (no replication)."""
    dr_reader: ClusterIdentity | None = None
    """The cluster whose read-only store gateway reads the DR copy; default none."""


class CloudBackend(Protocol):
    """What the module of each cloud in the table defines."""

    def cloud_provider(self, region: RegionSpec, environment: str) -> pulumi.ProviderResource:
        """The region's one explicit provider of this cloud."""
        ...

    def object_store(self, name: str, given: RegionStorage, opts: pulumi.ResourceOptions) -> ObjectStore:
        """The region's object store, its DR copy and the identities of its clusters' components."""
        ...


BACKENDS = {
    "aws": "components.storage.aws",
    "gcp": "components.storage.gcp",
    "azure": "components.storage.azure",
}
"""The module of each cloud's backend by `storage.provider`, imported only for the clouds a stack uses (each loads its
provider SDK)."""


def cloud_backend(provider: str) -> CloudBackend | None:
    """The backend of a cloud (None for in-cluster storage, which lives in its cluster)."""
    module = BACKENDS.get(provider)
    return cast(CloudBackend, importlib.import_module(module)) if module else None
