"""The capacity planner: from active series and a few settings to the bucket (size over time, monthly cost) and the
size of every volume, memory limit and cache. Pure functions of their inputs, no Pulumi imports.

Formulas follow the capacity notes: bucket = raw + 5m + 1h, each series stream stored once per copy (HA replicas
without offline dedup, receive replicas unless merged), each resolution kept for its retention plus block slack.
"""

import math
from dataclasses import dataclass, field

from .constants import DAY, GB, GIB, MIB, PRICES, PRICES_DATED, Constants, Price

HOUR = 3600
DOWNSAMPLE_5M_AFTER_DAYS = 40 / 24
"""Raw blocks older than 40 h are downsampled to 5m (compact.md)."""
DOWNSAMPLE_1H_AFTER_DAYS = 10.0
"""5m blocks older than 10 d are downsampled to 1h (compact.md)."""


@dataclass(frozen=True)
class Inputs:
    """What the planner needs to know; every default is the stack default."""

    active_series: int
    """Active series per cluster (per Prometheus replica); required."""
    clusters: int = 1
    """Clusters writing to one bucket. Default 1."""
    scrape_interval_s: float = 30
    """Scrape interval in seconds. Default 30."""
    churn: str = "medium"
    """Series churn: low, medium (default) or high (short-lived pods); sets the index overhead."""
    prometheus_replicas: int = 2
    """Prometheus HA replicas per cluster; each uploads its own copy. Default 2."""
    prometheus_dedup: bool = False
    """Prometheus replicas merged offline by the compactor (vertical compaction); default false (this stack never
    merges HA pairs offline: query deduplicates them)."""
    remote_write_series: int = 0
    """Active series per cluster arriving through receive (remote write). Default 0."""
    receive_replication_factor: int = 3
    """Receive replication factor. Default 3."""
    receive_dedup: bool = True
    """Receive replicas merged offline one-to-one by the compactor. Default true."""
    receive_ingestors: int = 4
    """Receive ingestors per cluster. Default 4."""
    ruler_series: int = 0
    """Series the ruler records per cluster (recording rules and ALERTS). Default 0."""
    retention_raw_days: float = 30
    """Compactor raw retention, days (0 = forever is planned as 10 years). Default 30."""
    retention_5m_days: float = 180
    """Compactor 5m retention, days. Default 180."""
    retention_1h_days: float = 730
    """Compactor 1h retention, days. Default 730."""
    downsampling: bool = True
    """5m and 1h blocks are produced. Default true."""
    delete_delay_hours: float = 48
    """Compactor --delete-delay: deleted blocks stay this long. Default 48."""
    prometheus_retention_hours: float = 24
    """Prometheus local retention. Default 24."""
    receive_retention_hours: float = 48
    """Receive --tsdb.retention. Default 48."""
    ruler_retention_hours: float = 48
    """Ruler --tsdb.retention. Default 48."""
    compaction_concurrency: int = 1
    """--compact.concurrency. Default 1."""
    concurrent_queries: int = 2
    """Heavy queries running at once per query replica (sizes query and store memory). Default 2."""
    queries_per_day: int = 10_000
    """Queries reaching the store gateways per day (read requests). [heuristic] Default 10000."""
    cloud: str = "aws"
    """aws, gcp, azure or in-cluster (prices). Default aws."""
    replicated: bool = False
    """A DR copy in another region (S3 replication, Azure object replication) stores every byte a second time
    (inter-region transfer fees not included). Default false."""
    storage_class: str = ""
    """The storage class priced; default the cloud's standard class."""
    constants: Constants = field(default_factory=Constants)
    """The sizing constants (sources in capacity/constants.py)."""


@dataclass(frozen=True)
class Resolution:
    """One resolution of the bucket."""

    name: str
    """raw, 5m or 1h."""
    retention_days: float
    """Its retention."""
    bytes_per_series_day: float
    """Bytes one series stream adds per day at this resolution."""
    bytes: float
    """Steady-state bytes in the bucket (retention plus average block slack)."""
    peak_bytes: float
    """Bytes when every block is at its largest slack."""


@dataclass(frozen=True)
class BucketPlan:
    """The bucket of one region."""

    streams: float
    """Series streams stored (clusters x copies), as series-weighted stream count."""
    resolutions: list[Resolution]
    """raw, 5m, 1h."""
    transient_bytes: float
    """Deleted blocks kept for --delete-delay, plus replica copies waiting for offline dedup."""
    blocks_per_stream: float
    """Blocks per stream at steady state (store gateway disk)."""

    @property
    def total_bytes(self) -> float:
        """Steady-state bucket size."""
        return sum(r.bytes for r in self.resolutions) + self.transient_bytes

    @property
    def peak_bytes(self) -> float:
        """Worst-case bucket size."""
        return sum(r.peak_bytes for r in self.resolutions) + self.transient_bytes


@dataclass(frozen=True)
class Cost:
    """Monthly object storage cost."""

    cloud: str
    storage_class: str
    storage_usd: float
    requests_usd: float
    writes_per_month: float
    reads_per_month: float
    prices_dated: str

    @property
    def total_usd(self) -> float:
        return self.storage_usd + self.requests_usd


@dataclass(frozen=True)
class Sizes:
    """Volumes and memory of one cluster's components, in bytes (requests; limits = request x limit factor)."""

    prometheus_memory: int
    prometheus_disk: int
    receive_memory: int
    receive_disk: int
    ruler_memory: int
    ruler_disk: int
    compactor_disk: int
    store_disk: int
    store_memory: int
    query_memory: int
    cache_index: int
    cache_bucket: int
    cache_query_results: int


@dataclass(frozen=True)
class Plan:
    """The whole answer for one bucket and the clusters writing to it."""

    inputs: Inputs
    bucket: BucketPlan
    cost: Cost
    sizes: Sizes


def raw_bytes_per_sample(inputs: Inputs) -> float:
    """Raw bytes per sample with the index overhead of the input's churn."""
    c = inputs.constants
    if inputs.churn not in c.index_overhead:
        raise ValueError(f"churn must be one of {', '.join(c.index_overhead)}, not {inputs.churn!r}")
    return c.raw_chunk_bytes_per_sample * (1 + c.index_overhead[inputs.churn])


def _forever(days: float) -> float:
    return 3650.0 if days == 0 else days


def streams(inputs: Inputs) -> float:
    """Series-weighted block streams per bucket: each cluster's Prometheus copies plus its receive copies, in units of
    `active_series` (so raw bytes = streams x active_series x bytes per series)."""
    prom = 1 if inputs.prometheus_dedup else inputs.prometheus_replicas
    recv = 1 if inputs.receive_dedup else inputs.receive_replication_factor
    per_cluster = prom + (recv * inputs.remote_write_series + inputs.ruler_series) / inputs.active_series
    return inputs.clusters * per_cluster


def bucket_plan(inputs: Inputs) -> BucketPlan:
    """The bucket at steady state."""
    c = inputs.constants
    samples_per_day = DAY / inputs.scrape_interval_s
    per_day = {"raw": samples_per_day * raw_bytes_per_sample(inputs), "5m": 288 * c.bytes_per_5m_window,
               "1h": 24 * c.bytes_per_1h_window}
    retention = {"raw": _forever(inputs.retention_raw_days), "5m": _forever(inputs.retention_5m_days),
                 "1h": _forever(inputs.retention_1h_days)}
    n = streams(inputs) * inputs.active_series
    resolutions = []
    for name in ("raw", "5m", "1h"):
        if name != "raw" and not inputs.downsampling:
            continue
        days = retention[name]
        resolutions.append(Resolution(name, days, per_day[name], n * per_day[name] * (days + c.block_slack_days),
                                      n * per_day[name] * (days + c.max_block_days)))
    raw_day = n * per_day["raw"]
    transient = raw_day * inputs.delete_delay_hours / 24
    # Replicas merged by offline dedup stay separate copies for their last ~2 days of raw, until it has run.
    series_day = inputs.clusters * per_day["raw"]
    if inputs.prometheus_dedup:
        transient += series_day * inputs.active_series * (inputs.prometheus_replicas - 1) * 2
    if inputs.receive_dedup:
        transient += series_day * inputs.remote_write_series * (inputs.receive_replication_factor - 1) * 2
    blocks = sum(days / c.max_block_days + 10 for days in (r.retention_days for r in resolutions))
    return BucketPlan(streams(inputs), resolutions, transient, blocks)


def bucket_bytes_over_time(inputs: Inputs, days: list[float]) -> dict[str, list[float]]:
    """Bytes per resolution `d` days after the first upload (for the plot): each resolution fills from the day
    downsampling first produces it, until its retention (plus average slack) is reached."""
    plan = bucket_plan(inputs)
    starts = {"raw": 0.0, "5m": DOWNSAMPLE_5M_AFTER_DAYS, "1h": DOWNSAMPLE_1H_AFTER_DAYS}
    n = plan.streams * inputs.active_series
    slack = inputs.constants.block_slack_days
    return {r.name: [n * r.bytes_per_series_day * max(0.0, min(d - starts[r.name], r.retention_days + slack))
                     for d in days] for r in plan.resolutions}


def price_of(inputs: Inputs) -> tuple[str, Price]:
    """The storage class and its price."""
    table = PRICES.get(inputs.cloud)
    if table is None:
        raise ValueError(f"cloud must be one of {', '.join(PRICES)}, not {inputs.cloud!r}")
    storage_class = inputs.storage_class or next(iter(table))
    if storage_class not in table:
        raise ValueError(f"storage class of {inputs.cloud} must be one of {', '.join(table)}, not {storage_class!r}")
    return storage_class, table[storage_class]


def monthly_cost(inputs: Inputs, bucket: BucketPlan) -> Cost:
    """Storage at the steady-state size, plus requests: uploads and compaction writes, block syncs (one LIST and a
    HEAD per block every 15 min by each store, every 5 min by the compactor) and store reads for queries
    ([heuristic] five range reads per block touched, ten blocks per query)."""
    storage_class, price = price_of(inputs)
    c = inputs.constants
    stream_count = max(1.0, math.ceil(bucket.streams))
    blocks = bucket.blocks_per_stream * stream_count
    writes = stream_count * (24 / 2) * c.uploads_per_block * 2 * 30 + (30 * 24 * 60 / 15 + 30 * 24 * 60 / 5)
    reads = blocks * (30 * 24 * 60 / 15 + 30 * 24 * 60 / 5) + inputs.queries_per_day * 30 * 10 * 5
    copies = 2 if inputs.replicated else 1
    return Cost(inputs.cloud, storage_class, copies * bucket.total_bytes / GB * price.storage_gb_month,
                writes / 1000 * price.write_per_1000 + reads / 1000 * price.read_per_1000, writes, reads, PRICES_DATED)


def _tsdb_disk(inputs: Inputs, series: float, retention_hours: float) -> int:
    c = inputs.constants
    samples_per_s = series / inputs.scrape_interval_s
    blocks = (retention_hours + 2) * HOUR * samples_per_s * raw_bytes_per_sample(inputs)
    wal = c.wal_hours * HOUR * samples_per_s * c.wal_bytes_per_sample
    return max(c.tsdb_disk_floor, int((blocks + wal) / c.disk_fill))


def component_sizes(inputs: Inputs, bucket: BucketPlan) -> Sizes:
    """Every volume and memory request of a cluster's components."""
    c = inputs.constants
    head = c.head_bytes_per_series
    in_memory_receive = inputs.remote_write_series * inputs.receive_replication_factor / max(1, inputs.receive_ingestors)
    one_stream_14d = inputs.active_series * DAY / inputs.scrape_interval_s * raw_bytes_per_sample(inputs) * 14
    one_day_raw = inputs.clusters * inputs.active_series * DAY / inputs.scrape_interval_s * raw_bytes_per_sample(inputs)
    blocks = bucket.blocks_per_stream * max(1.0, math.ceil(bucket.streams))
    bucket_cache = max(c.cache_min_bytes, int(one_day_raw))
    return Sizes(
        prometheus_memory=c.base_memory + inputs.active_series * head,
        prometheus_disk=_tsdb_disk(inputs, inputs.active_series, inputs.prometheus_retention_hours),
        receive_memory=c.base_memory + int(in_memory_receive * head),
        receive_disk=_tsdb_disk(inputs, in_memory_receive, inputs.receive_retention_hours),
        ruler_memory=c.base_memory + inputs.ruler_series * head,
        ruler_disk=_tsdb_disk(inputs, inputs.ruler_series, inputs.ruler_retention_hours),
        compactor_disk=max(c.compactor_disk_floor, int(inputs.compaction_concurrency * 2 * one_stream_14d
                                                       * c.compactor_disk_headroom)),
        store_disk=max(c.tsdb_disk_floor, int(max(blocks * c.store_bytes_per_block,
                                                  c.store_disk_fraction * bucket.total_bytes) * 2)),
        store_memory=GIB + inputs.concurrent_queries * c.store_memory_per_concurrent_query,
        query_memory=c.base_memory + inputs.concurrent_queries * c.query_memory_per_concurrent_query,
        cache_index=max(c.cache_min_bytes, bucket_cache // 4),
        cache_bucket=bucket_cache,
        cache_query_results=c.results_cache_bytes,
    )


def plan(inputs: Inputs) -> Plan:
    """The bucket, its monthly cost and every component's size."""
    if inputs.active_series < 1 or inputs.clusters < 1 or inputs.scrape_interval_s <= 0:
        raise ValueError("active_series and clusters must be at least 1 and the scrape interval positive")
    bucket = bucket_plan(inputs)
    return Plan(inputs, bucket, monthly_cost(inputs, bucket), component_sizes(inputs, bucket))


def gib(value: float) -> int:
    """Whole GiB, rounded up (what a Kubernetes quantity of this size needs)."""
    return max(1, math.ceil(value / GIB))


def mib(value: float) -> int:
    """Whole MiB, rounded up."""
    return max(1, math.ceil(value / MIB))
