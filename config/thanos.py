"""Specs of the Thanos workloads: one model per component, every default documented and sized in one place."""

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import Cpu, Cron, Duration, Memory, Name, StrictModel, cpu_millicores, duration_seconds, memory_bytes
from .limits import ReceiveWriteLimits

THANOS_IMAGE = "quay.io/thanos/thanos:v0.42.4"
PROMETHEUS_IMAGE = "quay.io/prometheus/prometheus:v3.5.0"
MEMCACHED_IMAGE = "docker.io/library/memcached:1.6.39-alpine"
RELOADER_IMAGE = "ghcr.io/jimmidyson/configmap-reload:v0.15.0"

# Replica labels: the one place they are named, so producers, query and compactor can never disagree.
PROMETHEUS_REPLICA_LABEL = "prometheus_replica"
RULER_REPLICA_LABEL = "rule_replica"
RECEIVE_REPLICA_LABEL = "receive_replica"
TEAM_RULER_REPLICA_LABEL = "thanos_ruler_replica"
"""prometheus-operator puts it on every ThanosRuler's results (team rules); the name is the operator's, not ours."""
TEAM_RULES_COPY_LABEL = "team_rules_cluster"
"""The global team rulers' external label naming the cluster that evaluated (host and standby both do): the global
query deduplicates on it, and it is dropped from alerts so Alertmanager merges the two copies."""
REPLICA_LABELS = (PROMETHEUS_REPLICA_LABEL, RULER_REPLICA_LABEL, RECEIVE_REPLICA_LABEL)

# Thanos refuses to start a compactor whose retention is shorter than the next downsampling pass needs.
MIN_RAW_RETENTION_WITH_DOWNSAMPLING = "40h"
MIN_5M_RETENTION_WITH_DOWNSAMPLING = "10d"


LEAF_STORE_RESPONSE_TIMEOUT = "1m"
"""`--store.response-timeout` of each cluster's query: a store that does not answer within it is left out."""

class Compute(StrictModel):
    """A CPU and memory pair, as in a container's requests or limits."""

    cpu: Cpu | None = None
    """CPU quantity; default none (no CPU limit, which avoids throttling the Go runtime)."""
    memory: Memory
    """Memory quantity; required."""


class Resources(StrictModel):
    """Container requests and limits; limits.memory is required so the OOM killer never picks a neighbour."""

    requests: Compute
    """What the scheduler reserves; required."""
    limits: Compute
    """The ceiling; memory required."""

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> "Resources":
        if memory_bytes(self.limits.memory) < memory_bytes(self.requests.memory):
            raise ValueError(f"limits.memory {self.limits.memory} is below requests.memory {self.requests.memory}")
        if self.limits.cpu and self.requests.cpu and cpu_millicores(self.limits.cpu) < cpu_millicores(self.requests.cpu):
            raise ValueError(f"limits.cpu {self.limits.cpu} is below requests.cpu {self.requests.cpu}")
        return self


def sized(cpu: str, memory: str, memory_limit: str) -> Any:
    """A default `Resources` for a component: the one sizing place every spec draws from."""
    return Field(default_factory=lambda: Resources(requests=Compute(cpu=cpu, memory=memory),
                                                   limits=Compute(memory=memory_limit)))


class Autoscaling(StrictModel):
    """A HorizontalPodAutoscaler for a stateless component."""

    enabled: bool = True
    """Create the HPA; default true."""
    max_replicas: int = Field(default=6, ge=1)
    """Upper bound of replicas; default 6."""
    cpu_utilization: int = Field(default=75, ge=10, le=100)
    """Target average CPU utilisation in percent of requests; default 75."""


class PrometheusSpec(StrictModel):
    """The Prometheus HA pair of every cluster, with the Thanos sidecar that uploads its blocks."""

    image: str = PROMETHEUS_IMAGE
    """Prometheus image, pinned; default quay.io/prometheus/prometheus:v3.5.0."""
    replicas: int = Field(default=2, ge=1)
    """Replicas of the HA group (they differ only in the replica label); default 2."""
    retention: Duration = "24h"
    """Local TSDB retention; default 24h, at least 6h (three 2h blocks) so uploads survive a bucket outage."""
    scrape_interval: Duration = "30s"
    """Global scrape interval; default 30s."""
    storage_size: Memory = "50Gi"
    """PVC size of each replica; default 50Gi."""
    storage_class: str | None = None
    """StorageClass of the PVCs; default the cluster's default class."""
    resources: Resources = sized("500m", "2Gi", "4Gi")
    """Prometheus container; default 500m/2Gi requests, 4Gi limit."""
    sidecar_resources: Resources = sized("100m", "256Mi", "512Mi")
    """Thanos sidecar container; default 100m/256Mi requests, 512Mi limit."""

    @model_validator(mode="after")
    def _retention_covers_three_blocks(self) -> "PrometheusSpec":
        if duration_seconds(self.retention) < 6 * 3600:
            raise ValueError(f"retention {self.retention} is below 6h: the sidecar needs three 2h blocks locally "
                             "to ride out an object storage outage")
        return self


class QuerySpec(StrictModel):
    """Thanos Query: the PromQL entry point that fans out to sidecars, stores, rulers and receivers."""

    replicas: int = Field(default=2, ge=1)
    """Replicas (the HPA minimum when autoscaling is on); default 2."""
    timeout: Duration = "2m"
    """`--query.timeout`; default 2m."""
    max_concurrent: int = Field(default=20, ge=1)
    """`--query.max-concurrent`; default 20."""
    lookback_delta: Duration = "5m"
    """`--query.lookback-delta`; default 5m."""
    promql_engine: Literal["prometheus", "thanos"] = "prometheus"
    """`--query.promql-engine`: `thanos` (the new engine: parallel, distributed mode needs it) or `prometheus`;
    default prometheus: in Thanos v0.42.4 the new engine still has open panics (thanos-io/thanos#7328), is slow with
    many external labels (#8597), and falls back to the Prometheus engine for what it does not implement on every
    range query whatever --query.disable-fallback says, so a query's engine is not what the plan states; opt in per
    query tier (a request's `engine=` parameter overrides it either way)."""
    series_limit: int = Field(default=500_000, ge=0)
    """`--store.limits.request-series`: series one select may gather from every StoreAPI together (beyond it the
    query fails instead of the querier running out of memory); default 500000 (about 1 GiB decoded, the planner's
    memory per heavy query); 0 means none."""
    samples_limit: int = Field(default=50_000_000, ge=0)
    """`--store.limits.request-samples`: samples one select may gather (counted as chunks of 120); default 50000000
    (about 800 MB of decoded points); 0 means none."""
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    """HPA on CPU; default on, up to 6 replicas."""
    resources: Resources = sized("500m", "1Gi", "2Gi")
    """Default 500m/1Gi requests, 2Gi limit."""


class QueryFrontendSpec(StrictModel):
    """Thanos Query-frontend: splits, retries and caches range and label queries in front of Query."""

    replicas: int = Field(default=2, ge=1)
    """Replicas (the HPA minimum when autoscaling is on); default 2."""
    split_interval: Duration = "24h"
    """`--query-range.split-interval` and `--labels.split-interval`; default 24h (must be > 0 with a cache)."""
    max_retries: int = Field(default=5, ge=0)
    """Retries per split request; default 5."""
    log_queries_longer_than: Duration = "10s"
    """`--query-frontend.log-queries-longer-than`; default 10s."""
    max_query_length: Duration = "366d"
    """`--query-range.max-query-length`: the longest range query (end - start) accepted, longer ones refused with 400
    (each split-interval of it is a sub-query); default 366d: a year's view passes, a scan of the whole 2y of 1h data
    does not; 0s means none (labels and series calls have no such limit in Thanos v0.42.4)."""
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    """HPA on CPU; default on, up to 6 replicas."""
    resources: Resources = sized("250m", "512Mi", "1Gi")
    """Default 250m/512Mi requests, 1Gi limit."""

    @model_validator(mode="after")
    def _split_positive(self) -> "QueryFrontendSpec":
        if duration_seconds(self.split_interval) == 0:
            raise ValueError("split-interval must be > 0: the results cache needs split queries")
        return self


class TimePartition(StrictModel):
    """One time range of store gateways: `--min-time` / `--max-time` relative to now (`-2w`); none = unbounded."""

    min_time: Duration | None = None
    """How far back this partition serves, as a positive duration meaning `now - it`; default unbounded (oldest)."""
    max_time: Duration | None = None
    """The newest data it serves, as a positive duration meaning `now - it`; default unbounded (now)."""


class StoreSpec(StrictModel):
    """Thanos Store gateway: serves the blocks in the bucket, sharded by block hash and/or time when asked."""

    replicas: int = Field(default=2, ge=1)
    """Replicas per shard; default 2."""
    shards: int = Field(default=1, ge=1, le=16)
    """Hash shards over `__block_id` (one StatefulSet each, together covering every block); default 1."""
    time_partitions: list[TimePartition] = Field(default_factory=list)
    """Time partitions, oldest first, each hash-sharded as above; they must overlap (no gap) and cover all time;
    default none (one partition covering everything)."""
    storage_size: Memory = "20Gi"
    """PVC size for the index-header cache; default 20Gi."""
    series_limit: int = Field(default=1_000_000, ge=1)
    """`--store.limits.request-series`: series one request may touch; default 1000000."""
    samples_limit: int = Field(default=100_000_000, ge=1)
    """`--store.limits.request-samples`: samples one request may return; default 100000000."""
    series_max_concurrency: int = Field(default=20, ge=1)
    """`--store.grpc.series-max-concurrency`; default 20."""
    ignore_deletion_marks_delay: Duration = "24h"
    """`--ignore-deletion-marks-delay`; default 24h (half the compactor's delete-delay)."""
    resources: Resources = sized("500m", "2Gi", "4Gi")
    """Default 500m/2Gi requests, 4Gi limit."""

    @model_validator(mode="after")
    def _partitions_cover_all_time(self) -> "StoreSpec":
        parts = self.time_partitions
        if not parts:
            return self
        problems = []
        if parts[0].min_time is not None:
            problems.append("the first time partition must have no min-time (it serves the oldest blocks)")
        if parts[-1].max_time is not None:
            problems.append("the last time partition must have no max-time (it serves the newest blocks)")
        for i, (older, newer) in enumerate(zip(parts, parts[1:], strict=False)):
            if older.max_time is None or newer.min_time is None:
                problems.append(f"time-partitions[{i}] and [{i + 1}] need max-time and min-time where they meet")
            elif duration_seconds(newer.min_time) <= duration_seconds(older.max_time):
                problems.append(f"time-partitions[{i + 1}].min-time {newer.min_time} does not reach past "
                                f"time-partitions[{i}].max-time {older.max_time}: the ranges must overlap, "
                                "or blocks between them are served by no store")
        for i, part in enumerate(parts):
            if part.min_time and part.max_time and duration_seconds(part.min_time) <= duration_seconds(part.max_time):
                problems.append(f"time-partitions[{i}]: min-time {part.min_time} must be further back than "
                                f"max-time {part.max_time}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class RetentionSpec(StrictModel):
    """How long the compactor keeps each resolution; `0d` means forever."""

    raw: Duration = "30d"
    """`--retention.resolution-raw`; default 30d."""
    res_5m: Duration = Field(default="180d", alias="5m")
    """`--retention.resolution-5m`; default 180d."""
    res_1h: Duration = Field(default="2y", alias="1h")
    """`--retention.resolution-1h`; default 2y."""
    downsampling: bool = True
    """Produce 5m and 1h downsampled blocks; default true."""

    @model_validator(mode="after")
    def _consistent(self) -> "RetentionSpec":
        raw, five, hour = (duration_seconds(v) for v in (self.raw, self.res_5m, self.res_1h))
        problems = []
        if self.downsampling and raw and raw < duration_seconds(MIN_RAW_RETENTION_WITH_DOWNSAMPLING):
            problems.append(f"raw {self.raw} is below 40h: with downsampling on, Thanos refuses to start "
                            "(5m blocks are made from raw blocks older than 40h)")
        if self.downsampling and five and five < duration_seconds(MIN_5M_RETENTION_WITH_DOWNSAMPLING):
            problems.append(f"5m {self.res_5m} is below 10d: with downsampling on, Thanos refuses to start "
                            "(1h blocks are made from 5m blocks older than 10d)")

        def forever(seconds: float) -> float:
            return float("inf") if seconds == 0 else seconds

        if forever(five) < forever(raw):
            problems.append(f"5m {self.res_5m} is shorter than raw {self.raw}: downsampled data would vanish first")
        if forever(hour) < forever(five):
            problems.append(f"1h {self.res_1h} is shorter than 5m {self.res_5m}: downsampled data would vanish first")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class CompactorSpec(StrictModel):
    """Thanos Compactor: the single writer that compacts, downsamples, applies retention and deletes."""

    retention: RetentionSpec = Field(default_factory=RetentionSpec)
    """Retention per resolution; default raw 30d, 5m 180d, 1h 2y."""
    storage_size: Memory = "100Gi"
    """PVC size of the scratch space; default 100Gi (the Thanos docs' figure for a medium bucket)."""
    delete_delay: Duration = "48h"
    """`--delete-delay`: how long a block marked for deletion stays readable; default 48h."""
    consistency_delay: Duration = "30m"
    """`--consistency-delay`; default 30m."""
    concurrency: int = Field(default=1, ge=1)
    """`--compact.concurrency`; default 1."""
    deduplicate_receive_replicas: bool = True
    """Merge the byte-identical copies replicated receive writes (`--deduplication.replica-label=receive_replica`,
    one-to-one vertical compaction; irreversible). A second compactor, `thanos-compactor-receive`, owns receive's
    streams for it, so vertical compaction never touches a Prometheus or ruler stream (an overlap there halts);
    default true."""
    resources: Resources = sized("1", "4Gi", "8Gi")
    """Default 1 CPU/4Gi requests, 8Gi limit."""

    @model_validator(mode="after")
    def _delete_delay_positive(self) -> "CompactorSpec":
        if duration_seconds(self.delete_delay) == 0:
            raise ValueError("delete-delay 0 deletes blocks store gateways still serve: keep it > 0 (48h)")
        return self


RULE_SCOPE_LABEL = "thanos.io/rule-scope"
"""A PrometheusRule labelled `thanos.io/rule-scope: global` is evaluated over the global query (team rules)."""
_LABEL_NAME_RE = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_PREFIX_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class TeamRulesSpec(StrictModel):
    """Rules from teams: the `PrometheusRule` objects of the selected namespaces, evaluated in each cluster by a
    prometheus-operator `ThanosRuler` (the operator and its CRDs must be installed there, in either collection
    mode). The operator validates each PrometheusRule on its own: an invalid one is skipped with an
    `InvalidConfiguration` Event and the others still load. Every selector of a team's rule is scoped to the
    series of its own namespace (`enforcedNamespaceLabel: namespace`), and its alerts carry that namespace.
    Stateless: results are remote-written to the cluster's receive (needs thanos.receive), with the tenant's
    certificate for a tenant's namespaces; with tenants, the rulers read through a query that scopes each to the
    tenant of that certificate (`query`). With a global view, a PrometheusRule labelled `thanos.io/rule-scope:
    global` is evaluated over the global query instead, by the global team rulers beside the global tier (host and
    standby cluster), still scoped to its namespace (in every cluster)."""

    enabled: bool = False
    """Evaluate teams' PrometheusRules; default false."""
    namespaces: list[Name] = Field(default_factory=list)
    """Namespaces whose PrometheusRules are evaluated, besides every tenant's own (tenancy.tenants[].namespaces,
    evaluated by that tenant's ruler); default none."""
    rule_labels: dict[str, str] = Field(default_factory=dict)
    """Labels a PrometheusRule must carry to be evaluated (`ruleSelector.matchLabels`); default none (every
    PrometheusRule of the selected namespaces)."""
    replicas: int = Field(default=2, ge=1)
    """Replicas of each team ruler (its alerts deduplicated by Alertmanager, its series by query); default 2."""
    resources: Resources = sized("100m", "256Mi", "512Mi")
    """The thanos-ruler container of each replica; default 100m/256Mi requests, 512Mi limit."""
    query: QuerySpec = Field(default_factory=lambda: QuerySpec(
        resources=Resources(requests=Compute(cpu="100m", memory="256Mi"), limits=Compute(memory="1Gi")),
        autoscaling=Autoscaling(enabled=False)))
    """With tenants, the query the team rulers read through (`thanos-query-team-rules`, and
    `thanos-query-global-team-rules` beside the global tier): it scopes every query to the tenant of the ruler's client
    certificate; default 2 replicas of 100m/256Mi requests, 1Gi limit, no autoscaling."""

    @field_validator("rule_labels")
    @classmethod
    def _selectable(cls, labels: dict[str, str]) -> dict[str, str]:
        """Kubernetes label syntax (the operator cannot build a selector of anything else, and stops reconciling);
        the scope label is the platform's."""
        for key, value in labels.items():
            prefix, _, name = key.rpartition("/")
            if not _LABEL_NAME_RE.match(name) or (prefix and not _LABEL_PREFIX_RE.match(prefix)):
                raise ValueError(f"{key!r} is not a Kubernetes label key ([prefix/]name, name at most 63 letters, "
                                 "digits, '-', '_', '.')")
            if value and not _LABEL_NAME_RE.match(value):
                raise ValueError(f"{key}: {value!r} is not a Kubernetes label value (at most 63 letters, digits, '-', "
                                 "'_', '.')")
            if key == RULE_SCOPE_LABEL:
                raise ValueError(f"{key} is the platform's: it sends a rule to the global team rulers")
        return labels


class RulerSpec(StrictModel):
    """Thanos Ruler: evaluates recording and alerting rules against Query, HA by replica label."""

    replicas: int = Field(default=2, ge=1)
    """Replicas; default 2."""
    alertmanagers: list[str] = Field(default_factory=list)
    """Alertmanager URLs besides the cluster's own (observability.alertmanager), e.g.
    dnssrv+http://alertmanager-operated.monitoring.svc; default none."""
    evaluation_interval: Duration = "1m"
    """`--eval-interval`; default 1m."""
    retention: Duration = "48h"
    """`--tsdb.retention` of the local TSDB; default 48h."""
    storage_size: Memory = "10Gi"
    """PVC size; default 10Gi."""
    rule_groups: list[dict[str, Any]] | None = None
    """Prometheus rule groups to evaluate; default the end-to-end check that the cluster's data reaches its query
    (the platform's own alerts run in each cluster's Prometheus)."""
    resources: Resources = sized("250m", "512Mi", "1Gi")
    """Default 250m/512Mi requests, 1Gi limit."""
    stateless: bool = False
    """Remote-write the rules' results to the cluster's receive routers (the platform's writer certificate) and keep
    no blocks: no TSDB, no uploads, the volume holds only the write-ahead log of what is not yet sent (needs
    thanos.receive); default false (a local TSDB whose blocks are uploaded to the bucket)."""
    team_rules: TeamRulesSpec = Field(default_factory=TeamRulesSpec)
    """Teams' PrometheusRules, evaluated by prometheus-operator ThanosRulers; default off."""


class ReceiveSpec(StrictModel):
    """Thanos Receive: remote-write ingestion, a router Deployment in front of an ingestor StatefulSet."""

    enabled: bool = True
    """Deploy receive; default true."""
    ingestors: int = Field(default=4, ge=1)
    """Ingestor replicas (hashring endpoints); default 4, one more than the replication factor, so a rollout or a lost
    node never leaves a series with fewer than its write quorum and no ingestor holds every series."""
    replication_factor: int = Field(default=3, ge=1)
    """`--receive.replication-factor`; default 3 (odd, never more than the ingestors)."""
    draining: int = Field(default=0, ge=0)
    """Ingestors kept running but out of the hashring: the ones lowering `ingestors` by this many would remove (the
    highest ordinals, in each zone as zones deal them out). The first step of a scale-down: the routers stop
    writing to them, then the next `pulumi up` lowers `ingestors` by the same number and sets this back to 0;
    default 0."""
    router_replicas: int = Field(default=2, ge=1)
    """Router replicas; default 2."""
    remote_write_namespaces: list[Name] = Field(default_factory=list)
    """Other namespaces whose pods may remote-write to the routers (each writer also needs a client certificate: the
    `thanos-remote-write-client-tls` Secret); default none (only this namespace)."""
    retention: Duration = "2d"
    """`--tsdb.retention` of the ingestors; default 2d (blocks are uploaded every 2h and the store gateway serves them
    from then on: longer only fills the disks)."""
    storage_size: Memory = "50Gi"
    """PVC size per ingestor; default 50Gi."""
    resources: Resources = sized("1", "4Gi", "8Gi")
    """Ingestor container; default 1 CPU/4Gi requests, 8Gi limit."""
    router_resources: Resources = sized("250m", "512Mi", "1Gi")
    """Router container; default 250m/512Mi requests, 1Gi limit."""
    limits: ReceiveWriteLimits = Field(default_factory=ReceiveWriteLimits)
    """Write limits of every tenant (receive's limits file, reloaded by the routers without a restart); a tenant's own
    in tenancy.tenants[].limits; default 10000 series and samples and 8Mi per request, head series from the
    ingestors' memory."""
    max_concurrent_writes: int | None = Field(default=None, ge=0)
    """`write.global.max_concurrency`: remote-write requests one router handles at once, the rest wait (no error);
    default the router's memory limit over 6 times limits.request-size (a request held compressed, decompressed,
    decoded and re-encoded for its ingestors): 21 with the defaults; 0 means none."""

    @property
    def write_concurrency(self) -> int:
        """`max_concurrent_writes`, or the default it documents (0 without a request-size limit)."""
        if self.max_concurrent_writes is not None:
            return self.max_concurrent_writes
        size = memory_bytes(self.limits.request_size) if self.limits.request_size else 0
        return max(1, memory_bytes(self.router_resources.limits.memory) // (6 * size)) if size else 0

    @model_validator(mode="after")
    def _quorum(self) -> "ReceiveSpec":
        problems = []
        if self.replication_factor % 2 == 0:
            problems.append(f"replication-factor {self.replication_factor} is even: use an odd factor (1, 3, 5) "
                            "so a write quorum survives one lost replica")
        if self.replication_factor > self.ingestors:
            problems.append(f"replication-factor {self.replication_factor} exceeds ingestors {self.ingestors}: "
                            "every write would fail with 'insufficient nodes'")
        elif self.replication_factor > self.in_ring:
            problems.append(f"draining {self.draining} of {self.ingestors} ingestors leaves {self.in_ring} in the "
                            f"hashring, fewer than replication-factor {self.replication_factor}: a ketama ring with "
                            "fewer endpoints than the factor stops the routers; drain fewer")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def in_ring(self) -> int:
        """The ingestors the hashring lists: all but the draining ones."""
        return self.ingestors - self.draining


class BucketWebSpec(StrictModel):
    """`thanos tools bucket web`: a read-only UI of the blocks in the bucket."""

    enabled: bool = True
    """Deploy it; default true."""
    refresh: Duration = "30m"
    """`--refresh`; default 30m."""
    resources: Resources = sized("100m", "256Mi", "512Mi")
    """Default 100m/256Mi requests, 512Mi limit."""


class BucketVerifySpec(StrictModel):
    """A scheduled `thanos tools bucket verify` of the bucket, read-only (its own reader identity, never --repair)."""

    enabled: bool = True
    """Run it; default true."""
    schedule: Cron = "23 3 * * *"
    """Cron schedule (cluster time zone); default 23 3 * * * (daily, off the hour)."""
    resources: Resources = sized("100m", "256Mi", "1Gi")
    """Default 100m/256Mi requests, 1Gi limit."""
    temp_size: Memory = "10Gi"
    """Size of its writable /tmp (the root filesystem is read-only): verify downloads each block's index there, so
    it must hold the largest index; default 10Gi."""


class MemcachedSpec(StrictModel):
    """One memcached pool (index cache, bucket cache or query-frontend results cache)."""

    replicas: int = Field(default=2, ge=1)
    """Replicas; default 2."""
    memory_mb: int = Field(default=1024, ge=64)
    """`-m`, item memory per replica in MiB; the container limit adds 25% on top; default 1024."""
    max_item_size: str = Field(default="5m", pattern=r"^\d+[km]$")
    """`-I`, the largest item; default 5m."""
    connection_limit: int = Field(default=4096, ge=64)
    """`-c`; default 4096."""
    cpu: Cpu = "250m"
    """CPU request; default 250m."""


class CachesSpec(StrictModel):
    """The memcached pools the store gateway and query-frontend use."""

    index: MemcachedSpec = Field(default_factory=MemcachedSpec)
    """Store gateway index cache; default 2 x 1024 MiB."""
    bucket: MemcachedSpec = Field(default_factory=MemcachedSpec)
    """Store gateway caching bucket (chunks, metadata); default 2 x 1024 MiB."""
    query_results: MemcachedSpec = Field(default_factory=lambda: MemcachedSpec(memory_mb=512))
    """Query-frontend results cache (range and labels); default 2 x 512 MiB."""


class ThanosSpec(StrictModel):
    """Every Thanos workload of a cluster; the same spec applies to each cluster of the stack."""

    image: str = THANOS_IMAGE
    """The one Thanos image of every component, pinned; default quay.io/thanos/thanos:v0.42.4."""
    prometheus: PrometheusSpec = Field(default_factory=PrometheusSpec)
    """Prometheus HA pair with sidecar; default 2 replicas."""
    query: QuerySpec = Field(default_factory=QuerySpec)
    """Query; default 2 replicas, HPA on."""
    query_frontend: QueryFrontendSpec = Field(default_factory=QueryFrontendSpec)
    """Query-frontend; default 2 replicas, HPA on."""
    store: StoreSpec = Field(default_factory=StoreSpec)
    """Store gateway; default 2 replicas, 1 shard."""
    compactor: CompactorSpec = Field(default_factory=CompactorSpec)
    """Compactor (one per bucket, in the region's compactor cluster)."""
    ruler: RulerSpec = Field(default_factory=RulerSpec)
    """Ruler; default 2 replicas."""
    receive: ReceiveSpec = Field(default_factory=ReceiveSpec)
    """Receive router + ingestors; default on, 4 ingestors, RF 3."""
    bucket_web: BucketWebSpec = Field(default_factory=BucketWebSpec)
    """Bucket web UI; default on."""
    bucket_verify: BucketVerifySpec = Field(default_factory=BucketVerifySpec)
    """Scheduled bucket verification in the compactor's cluster; default daily."""
    caches: CachesSpec = Field(default_factory=CachesSpec)
    """Memcached pools; default 2 replicas each."""
    zone_spread: Literal["DoNotSchedule", "ScheduleAnyway"] = "DoNotSchedule"
    """What a multi-replica workload does when it cannot spread evenly over zones: `DoNotSchedule` (wait, so a pair
    never shares a zone) or `ScheduleAnyway` (best effort, e.g. a cluster whose nodes carry no zone label); default
    DoNotSchedule."""
    node_spread: Literal["DoNotSchedule", "ScheduleAnyway"] = "DoNotSchedule"
    """Whether two replicas of a workload may share a node: `DoNotSchedule` (hard pod anti-affinity: a node loss
    takes at most one) or `ScheduleAnyway` (preferred only, e.g. a one-node dev cluster); default DoNotSchedule."""

    @model_validator(mode="after")
    def _deletion_delays(self) -> "ThanosSpec":
        marks, delay = duration_seconds(self.store.ignore_deletion_marks_delay), duration_seconds(self.compactor.delete_delay)
        if marks >= delay:
            raise ValueError(f"store.ignore-deletion-marks-delay {self.store.ignore_deletion_marks_delay} must be "
                             f"below compactor.delete-delay {self.compactor.delete_delay} (half of it is the rule): "
                             "stores would query blocks the compactor already deleted")
        return self

    @model_validator(mode="after")
    def _image_pinned(self) -> "ThanosSpec":
        for name, image in (("image", self.image), ("prometheus.image", self.prometheus.image)):
            if "@" in image:
                raise ValueError(f"{name} {image!r}: give the version tag here and the digest in image-digests "
                                 "(the tag names the version the plan checks flags against)")
            tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
            if not tag or tag == "latest":
                raise ValueError(f"{name} {image!r} must be pinned to a version tag, not latest or untagged")
        return self
