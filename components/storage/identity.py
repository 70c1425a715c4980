"""Who may do what in the bucket: one identity per Thanos component, least privilege by role."""

import hashlib
from dataclasses import dataclass, field

import pulumi

READER, WRITER, DELETER = "reader", "writer", "deleter"

# Readers list and read; writers also upload new objects; only the compactor deletes (compaction, retention).
COMPONENT_ROLES = {
    "prometheus": WRITER,   # the sidecar uploads Prometheus blocks
    "ruler": WRITER,
    "receive": WRITER,
    "store": READER,
    "bucket-web": READER,
    "bucket-verify": READER,  # the scheduled `tools bucket verify` (never --repair: that needs delete)
    "compactor": DELETER,
}


MARKER_SUFFIX = "-mark.json"
"""How Thanos' block markers end (deletion-mark.json, no-compact-mark.json, no-downsample-mark.json). The compactor
deletes a block `--delete-delay` after its deletion mark appears, so a writer able to write marks could have every
block deleted (and on AWS the deletes replicate to the DR copy): only the compactor writes them."""

DR_STORE = "store-dr"


def dr_store_component(source_region: str) -> str:
    """The component (and `thanos-<component>` ServiceAccount) of the read-only store gateway on a region's DR copy."""
    return f"{DR_STORE}-{source_region}"


def role_of(component: str) -> str:
    """reader, writer or deleter: a DR store gateway only reads."""
    return READER if component.startswith(f"{DR_STORE}-") else COMPONENT_ROLES[component]


def components_in(compactor_here: bool, receive: bool, bucket_web: bool) -> list[str]:
    """The components of a cluster that need bucket access."""
    wanted = {"prometheus", "ruler", "store"} | ({"compactor", "bucket-verify"} if compactor_here else set()) \
        | ({"receive"} if receive else set()) | ({"bucket-web"} if bucket_web else set())
    return [c for c in COMPONENT_ROLES if c in wanted]


def service_account(component: str) -> str:
    """The Kubernetes ServiceAccount of a component."""
    return f"thanos-{component}"


def subject(namespace: str, component: str) -> str:
    """The OIDC `sub` of a component's ServiceAccount token."""
    return f"system:serviceaccount:{namespace}:{service_account(component)}"


@dataclass
class ClusterIdentity:
    """What a cloud backend needs to know about a cluster to give its components identities."""

    name: str
    """Cluster name."""
    oidc_issuer: pulumi.Input[str] | None
    """The cluster's OIDC issuer URL (AWS, Azure)."""
    components: list[str]
    """Components that need bucket access in this cluster."""
    workload_identity_pool: str | None = None
    """GKE Workload Identity pool, when it is not the bucket project's."""
    namespace: str | None = None
    """Namespace of the cluster's ServiceAccounts, when it is not the stack's."""
    environment: str = ""
    """The stack's environment: cloud identity names carry it, so two stacks in one account never collide."""
    created_as: str = ""
    """The name the cluster was created with, when it was renamed: identity names keep it, so a rename replaces no
    identity."""

    def identity_name(self, component: str, limit: int) -> str:
        """`thanos-<environment>-<cluster>-<component>`, shortened with a digest of the whole when over `limit`."""
        return identity_name(self.environment, self.created_as or self.name, component, limit)


@dataclass
class BucketAccess:
    """What a cluster receives from its region's object store."""

    objstore_config: pulumi.Input[str]
    """The objstore YAML for the `thanos-objstore` Secret."""
    annotations: dict[str, dict[str, pulumi.Input[str]]]
    """ServiceAccount annotations by component (workload identity bindings)."""
    pod_labels: dict[str, str]
    """Labels every bucket-using pod needs (Azure workload identity)."""
    copy: str = ""
    """The bucket (or account) in use: a switch to the DR copy changes it, and pods restart to read the new config."""
    switch_after: list = field(default_factory=list)
    """Resources the compactor waits for when the copy in use changes (the replication stream stopping first)."""


def identity_name(environment: str, cluster: str, component: str, limit: int) -> str:
    """A cloud identity's name for one component of one cluster of one environment, at most `limit` characters:
    the full name when it fits, else a prefix and a digest of the full name (still unique)."""
    full = "-".join(part for part in ("thanos", environment, cluster, component) if part)
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:6]
    return f"{full[:limit - 7].rstrip('-')}-{digest}"
