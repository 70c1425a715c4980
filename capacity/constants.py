"""Sizing constants and object storage prices, each with its source; every one is an overridable planner input.

Sources are the public measurements and docs summarised in the project's capacity notes (Thanos v0.42.4 docs,
Prometheus docs and issues, Robust Perception, Grafana Mimir's capacity guide). Marked [heuristic] where no public
source gives the number: measure your own and override it (see docs/capacity.md).
"""

from dataclasses import dataclass, field

KIB, MIB, GIB = 1024, 1024**2, 1024**3
GB = 10**9
DAY = 86400


@dataclass(frozen=True)
class Constants:
    """What a sample, a series and a block cost; defaults are the recommended planning values."""

    raw_chunk_bytes_per_sample: float = 1.8
    """Compressed raw chunk bytes per sample, index excluded. Prometheus docs: "an average of only 1-2 bytes per
    sample"; Robust Perception measured 1.77 B/sample on 2h blocks; thanos#4833 2.50 B incl. index on a 2 w block.
    Default 1.8."""
    index_overhead: dict[str, float] = field(default_factory=lambda: {"low": 0.08, "medium": 0.15, "high": 0.30})
    """Index bytes as a fraction of chunk bytes, by series churn. prometheus#5874: indexes converge to 5-8% of
    chunks on compacted blocks; prometheus PR #15214: 22-35% on churny production data (Kubernetes pods). With
    medium churn raw costs 1.8 x 1.15 = 2.07 B/sample, Mimir's 2 B planning constant. Default low 8%, medium 15%,
    high 30%."""
    bytes_per_5m_window: float = 7.0
    """Bytes per series per 5-minute window of a 5m block, index included (five aggregates: count, sum, min, max,
    counter). thanos#8139: 27 MB for 3,866,901 windows = 6.98 B. Range 5-12. Default 7."""
    bytes_per_1h_window: float = 9.0
    """Bytes per series per 1-hour window of a 1h block, index included. [heuristic] (unmeasured: hour aggregates
    compress worse than 5m ones). Range 6-15. Default 9."""
    head_bytes_per_series: int = 8 * KIB
    """Head memory per active series in Prometheus, receive and ruler. prometheus#4553: "8kB per active serie";
    Mimir: 2.5 GB per 300k in-memory series. 3 KB is the optimistic floor (Robust Perception, 2.20+). Default
    8 KiB."""
    base_memory: int = 256 * MIB
    """Memory of a process before its series (Go runtime, caches, buffers). [heuristic] Default 256 MiB."""
    memory_limit_factor: float = 1.5
    """Memory limit over the planned request (queries, compaction, GC headroom). Robust Perception and Mimir: 1.5-2x.
    Default 1.5."""
    wal_bytes_per_sample: float = 13.0 * 0.5
    """WAL bytes per sample: ~13 B per sample record (Robust Perception, Prometheus 2.17), halved by WAL compression
    (on since 2.20, docs/storage.md). Default 6.5."""
    wal_hours: float = 3.0
    """Hours of samples the WAL holds (docs/storage.md: at least 2 h, three 128 MB segments). Default 3."""
    disk_fill: float = 0.8
    """Fraction of a TSDB disk to plan to fill (docs/storage.md: keep retention.size at 80-85% of the disk).
    Default 0.8."""
    block_slack_days: float = 7.0
    """Days a block outlives its retention on average: retention removes whole blocks, which reach 14 d
    (compact.md), so +7 d average and +14 d at worst. Default 7."""
    max_block_days: float = 14.0
    """The largest compacted block (compact.md: the maximum compaction level is 2 weeks). Default 14."""
    store_bytes_per_block: int = 6 * 10**6
    """Store gateway local disk per block (index-header): "an average of 6 MB ... per TSDB block" (store.md).
    Default 6 MB."""
    store_disk_fraction: float = 0.001
    """Index-headers as a fraction of the bucket (Mimir: ~0.10% of block size). Default 0.001."""
    compactor_disk_headroom: float = 1.2
    """Headroom on the compactor's worst case of 2 x 2 weeks of one stream (compact.md). Default 1.2."""
    compactor_disk_floor: int = 100 * GIB
    """Smallest compactor volume: the Thanos docs' 100 GB for a medium bucket (and the policy pack's floor).
    Default 100 GiB."""
    tsdb_disk_floor: int = 10 * GIB
    """Smallest Prometheus, receive, ruler and store volume (room for bursts and block uploads). [heuristic]
    Default 10 GiB."""
    query_memory_per_concurrent_query: int = GIB
    """Query memory per concurrent heavy query (Mimir: 1 GB per 10 QPS at ~100 ms). [heuristic] Default 1 GiB."""
    store_memory_per_concurrent_query: int = GIB // 4
    """Store gateway memory per concurrent query reaching it (Mimir: 1 GB per 10 QPS; ~10% of queries reach the
    store). [heuristic] Default 256 MiB."""
    cache_min_bytes: int = 256 * MIB
    """Smallest memcached pool. [heuristic] Default 256 MiB."""
    results_cache_bytes: int = 512 * MIB
    """Query-frontend results cache (capacity notes: 512 MB-1 GB). [heuristic] Default 512 MiB."""
    uploads_per_block: int = 3
    """Objects per uploaded 2h block (meta.json, index, chunks/000001). Default 3."""


@dataclass(frozen=True)
class Price:
    """Object storage price of one cloud and storage class, in USD."""

    storage_gb_month: float
    """Per GB-month (GB = 10^9 bytes, the conservative reading)."""
    write_per_1000: float
    """Per 1,000 writes (PUT, LIST; Class A)."""
    read_per_1000: float
    """Per 1,000 reads (GET, HEAD; Class B)."""


PRICES_DATED = "2026-03"
"""When the price table was read (AWS us-east-1 "as of March 2026"; GCS us-central1 and Azure Hot LRS from the
public price pages and Retail Prices API figures of the same period)."""

PRICES: dict[str, dict[str, Price]] = {
    "aws": {"STANDARD": Price(0.023, 0.005, 0.0004), "STANDARD_IA": Price(0.0125, 0.01, 0.001),
            "GLACIER_IR": Price(0.004, 0.02, 0.01)},
    "gcp": {"STANDARD": Price(0.020, 0.005, 0.0004), "NEARLINE": Price(0.010, 0.01, 0.001)},
    "azure": {"HOT": Price(0.0184, 0.005, 0.0004), "COOL": Price(0.0115, 0.013, 0.0013)},
    "in-cluster": {"STANDARD": Price(0.0, 0.0, 0.0)},
}
"""USD by cloud and class: S3 us-east-1, GCS us-central1 regional, Azure Blob LRS (write/read per 10,000 divided
by 10). Override them with your negotiated prices."""
