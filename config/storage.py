"""Object storage per region: a union discriminated on `provider` (aws, gcp, azure, in-cluster)."""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import Cron, Duration, Memory, Name, StrictModel, duration_seconds

MINIO_IMAGE = "quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z"
MINIO_CLIENT_IMAGE = "quay.io/minio/mc:RELEASE.2025-04-16T18-13-26Z"

_S3_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_GCS_BUCKET = r"^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$"


class Replication(StrictModel):
    """Cross-region replication of the bucket to a DR copy in another region of the stack."""

    destination: Name
    """Name of the stack region that holds the DR copy; required."""
    bucket: str | None = None
    """Name of the DR bucket (Azure: storage account); default `<source>-dr`."""
    replicate_deletes: bool = True
    """Replicate delete markers, so the DR copy mirrors compaction and retention instead of keeping
    overlapping pre-compaction blocks forever; versioning on the DR copy keeps every deleted object
    recoverable for `noncurrent-version-expiration`. Default true."""
    paused: bool = False
    """Stop replicating (the rule stays, disabled): the first step of a failback (docs/dr.md); default false."""
    dr_read: Literal["standby", "included"] = "standby"
    """The read-only store gateway on the DR copy: `standby` (running, warm, listed by no query until the region
    switches to the DR copy, so no block is read twice) or `included` (always listed by its cluster's query: history
    stays queryable without a config change, at the cost of reading replicated blocks twice); default standby."""
    dr_cluster: Name | None = None
    """Cluster of the destination region that runs that store gateway; default its first cluster."""


class AwsStorage(StrictModel):
    """An S3 bucket: versioned, encrypted, public access blocked, replicated with RTC to a DR bucket."""

    provider: Literal["aws"]
    """Discriminator."""
    bucket: str = Field(pattern=_S3_BUCKET)
    """Bucket name, globally unique; required."""
    kms_key_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+$")
    """SSE-KMS key of the bucket; default none (SSE-S3)."""
    replica_kms_key_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+$")
    """SSE-KMS key in the DR region for the replica; required with kms-key-arn and replication."""
    noncurrent_version_expiration: Duration = "30d"
    """How long overwritten or deleted object versions are kept; default 30d."""
    infrequent_access_after: Duration | None = None
    """Move current objects to an instantly readable infrequent-access class after this age; default never."""
    infrequent_access_class: Literal["STANDARD_IA", "GLACIER_IR"] = "STANDARD_IA"
    """The class for that transition (never GLACIER or DEEP_ARCHIVE: Thanos cannot read them); default STANDARD_IA."""
    replication: Replication | None = None
    """Replication to a DR bucket; default none."""
    dr_immutable_for: Duration | None = "30d"
    """With replication: every object version replicated into the DR bucket stays undeletable this long (S3 Object
    Lock, governance mode, as the bucket's default retention), so neither a replicated delete nor an identity of the
    source can erase the copy's recent history; default 30d. Object Lock cannot be disabled once on: shortening only
    applies to new versions, and none (allowed only with replicate-deletes false) leaves the lock resource protected
    (remove it with `pulumi state unprotect`, then up)."""
    dr_noncurrent_version_expiration: Duration = "90d"
    """With replication: how long the DR bucket keeps overwritten or deleted object versions. Longer than the
    primary's: a replicated delete (the compactor's, or a forged deletion mark's) of a block older than the Object Lock
    then stays restorable from the copy this long, where the primary forgets it after noncurrent-version-expiration;
    default 90d."""
    active: Literal["primary", "dr"] = "primary"
    """The copy every writer, reader and the compactor use: `dr` switches the region to its DR bucket (replication
    is then disabled, so the one compactor never shares a bucket with a replication stream; docs/dr.md); default
    primary."""

    @model_validator(mode="after")
    def _kms_pair(self) -> "AwsStorage":
        if self.active == "dr" and not self.replication:
            raise ValueError("active: dr needs replication (the DR bucket to switch to)")
        if self.kms_key_arn and self.replication and not self.replica_kms_key_arn:
            raise ValueError("replica-kms-key-arn is required when kms-key-arn and replication are both set")
        if "dr_immutable_for" in self.model_fields_set and self.dr_immutable_for and not self.replication:
            raise ValueError("dr-immutable-for needs replication (it locks the DR bucket's objects)")
        if self.replication and self.replication.replicate_deletes and not self.dr_immutable_for:
            raise ValueError("dr-immutable-for: none with replication.replicate-deletes: the DR copy would mirror every "
                             "delete of the source with nothing locked; keep a lock or set replicate-deletes: false")
        if self.dr_immutable_for and duration_seconds(self.dr_immutable_for) < 86400:
            raise ValueError(f"dr-immutable-for {self.dr_immutable_for} is shorter than a day (Object Lock counts days)")
        if "dr_noncurrent_version_expiration" in self.model_fields_set and not self.replication:
            raise ValueError("dr-noncurrent-version-expiration needs replication (it is the DR bucket's)")
        if self.replication and duration_seconds(self.dr_noncurrent_version_expiration) <= \
                duration_seconds(self.noncurrent_version_expiration):
            raise ValueError(f"dr-noncurrent-version-expiration {self.dr_noncurrent_version_expiration} is not longer "
                             f"than noncurrent-version-expiration {self.noncurrent_version_expiration}: a replicated "
                             "delete would leave the DR copy no later than the primary; keep the copy's versions longer")
        if self.infrequent_access_after and duration_seconds(self.infrequent_access_after) < 30 * 86400:
            raise ValueError("infrequent-access-after must be at least 30d (S3 refuses earlier transitions to IA)")
        return self


class GcpStorage(StrictModel):
    """A GCS bucket: versioned, uniform access, public access prevention, dual-region with turbo replication."""

    provider: Literal["gcp"]
    """Discriminator."""
    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    """GCP project that owns the bucket and the service accounts; required."""
    bucket: str = Field(pattern=_GCS_BUCKET)
    """Bucket name, globally unique; required."""
    location: str = Field(pattern=r"^[A-Z0-9-]+$")
    """Bucket location: a region (US-EAST1), a multi-region (US) for a dual-region placement; required."""
    dual_region: tuple[str, str] | None = None
    """The two regions of a configurable dual-region placement (inside `location`); default none (single region)."""
    turbo_replication: bool = True
    """`rpo=ASYNC_TURBO` (15-minute RPO) on a dual-region bucket; default true."""
    soft_delete: Duration = "30d"
    """Soft delete retention (at most 90d): how long a deleted or overwritten generation, including one a block writer
    deleted (GCS writers need delete to replace a failed upload), can be restored; default 30d."""
    noncurrent_version_expiration: Duration = "30d"
    """How long noncurrent versions are kept; default 30d."""

    @property
    def replication(self) -> None:
        """No DR copy of the stack's: the bucket replicates itself between the regions of its dual-region placement."""
        return None

    @property
    def active(self) -> Literal["primary"]:
        """Always the one bucket: there is no DR copy to switch to."""
        return "primary"

    @model_validator(mode="after")
    def _turbo_needs_dual_region(self) -> "GcpStorage":
        if self.dual_region and self.dual_region[0] == self.dual_region[1]:
            raise ValueError("dual-region needs two different regions")
        return self


class AzureStorage(StrictModel):
    """A StorageV2 account (geo-redundant), a private container, object replication to a DR account."""

    provider: Literal["azure"]
    """Discriminator."""
    resource_group: str = Field(pattern=r"^[-\w._()]{1,90}$")
    """Existing resource group for the account and identities; required."""
    account: str = Field(pattern=r"^[a-z0-9]{3,24}$")
    """Storage account name, globally unique; required."""
    container: str = Field(default="thanos", pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
    """Blob container name; default thanos."""
    sku: Literal["Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_RAGRS",
                 "Standard_GZRS", "Standard_RAGZRS"] = "Standard_RAGZRS"
    """Redundancy SKU; default Standard_RAGZRS (zone- and geo-redundant)."""
    soft_delete: Duration = "30d"
    """Blob and container soft delete retention, and how long previous versions are kept (whole days); default 30d.
    The DR account gets no immutability policy: object replication fails on immutable blobs, and copies no deletes,
    so the identities of the source cannot erase the copy anyway."""
    public_network_access: Literal["Enabled", "Disabled"] = "Enabled"
    """`Disabled` closes the accounts' public endpoint: every client (the clusters, and you) then needs a private
    endpoint in its VNet, which this program does not create. `Enabled` keeps the endpoint reachable, but no request
    gets in without an Entra ID token for a role on the container: shared keys, anonymous access and TLS below 1.2 are
    off; default Enabled."""
    replication: Replication | None = None
    """Object replication to a DR account; default none (never replicates deletes: replicate-deletes is refused)."""
    active: Literal["primary", "dr"] = "primary"
    """The copy every writer, reader and the compactor use: `dr` switches the region to its DR account (replication
    is then paused, so the one compactor never shares an account with a replication stream; docs/dr.md); default
    primary."""

    @model_validator(mode="after")
    def _no_delete_replication(self) -> "AzureStorage":
        if self.active == "dr" and not self.replication:
            raise ValueError("active: dr needs replication (the DR account to switch to)")
        if self.replication and "replicate_deletes" in self.replication.model_fields_set:
            raise ValueError("replication.replicate-deletes is not supported on Azure: object replication copies new "
                             "and changed blobs and never replicates deletes; remove the key")
        return self


class InClusterStorage(StrictModel):
    """An S3-compatible server (MinIO) inside the cluster, for dev: no cloud account needed."""

    provider: Literal["in-cluster"]
    """Discriminator."""
    bucket: str = Field(default="thanos", pattern=_S3_BUCKET)
    """Bucket created at start; default thanos."""
    size: Memory = "20Gi"
    """PVC size of the server; default 20Gi."""
    image: str = MINIO_IMAGE
    """Server image, pinned; default quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z."""
    replication: Replication | None = None
    """A DR copy in another in-cluster region's server, made by `thanos tools bucket replicate` (no native
    replication here), kept by retention and cleanup jobs on the copy; default none."""
    replicate_schedule: Cron = "*/15 * * * *"
    """Cron schedule of the single-run replicate job; default */15 * * * * (every 15 minutes)."""
    noncurrent_version_expiration: Duration = "30d"
    """The buckets are versioned: an overwritten or deleted object stays restorable this long (whole days, MinIO's
    lifecycle rule); default 30d."""

    @property
    def active(self) -> Literal["primary"]:
        """Always the primary: in-cluster storage has no `active` key to switch a region to its DR copy."""
        return "primary"

    @model_validator(mode="after")
    def _whole_days(self) -> "InClusterStorage":
        seconds = duration_seconds(self.noncurrent_version_expiration)
        if seconds < 86400 or seconds % 86400:
            raise ValueError(f"noncurrent-version-expiration {self.noncurrent_version_expiration} must be whole days "
                             "(at least 1d): MinIO expires noncurrent versions by the day")
        return self

    @model_validator(mode="after")
    def _replication_supported(self) -> "InClusterStorage":
        if self.replication is not None and "replicate_deletes" in self.replication.model_fields_set:
            raise ValueError("replication.replicate-deletes does not apply: tools bucket replicate never deletes; "
                             "retention and cleanup jobs on the copy remove what the primary's compactor removed")
        if self.replication and self.replication.paused:
            raise ValueError("replication.paused is for native replication; remove the key (or the replication)")
        return self


Storage = Annotated[AwsStorage | GcpStorage | AzureStorage | InClusterStorage, Field(discriminator="provider")]
"""The object storage of one region, chosen by `provider`."""

STORAGE_PROVIDERS = ("aws", "gcp", "azure", "in-cluster")
