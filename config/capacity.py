"""`capacity:` in thanos:config: plan sizes from active series, fill every size the stack leaves unset, and refuse
(or warn about) sizes set below what the plan needs."""

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from capacity import Constants, Inputs, Plan, gib, mib, plan

from .base import StrictModel, duration_seconds, memory_bytes
from .limits import planned_head_series

if TYPE_CHECKING:  # stack.py imports this module
    from .stack import RegionSpec, StackConfig

_DEFAULTS = Constants()


class CapacitySpec(StrictModel):
    """The inputs of the capacity planner (`python -m capacity STACK` prints its whole answer)."""

    active_series: int = Field(ge=1)
    """Active series per cluster, scraped by each Prometheus replica; required."""
    remote_write_series: int = Field(default=0, ge=0)
    """Active series per cluster arriving through receive (remote write); default 0 (the sum of
    tenancy.tenants[].remote-write-series, when given)."""
    ruler_series: int = Field(default=0, ge=0)
    """Series the ruler writes per cluster (recording rules, ALERTS); default 0."""
    churn: Literal["low", "medium", "high"] = "medium"
    """Series churn (index overhead): low, medium or high (short-lived pods); default medium."""
    concurrent_queries: int = Field(default=2, ge=1)
    """Heavy queries at once per query replica (query and store memory); default 2."""
    queries_per_day: int = Field(default=10_000, ge=0)
    """Queries reaching the store gateways per day (read request cost); default 10000."""
    storage_class: str = ""
    """Storage class priced (aws STANDARD/STANDARD_IA/GLACIER_IR, gcp STANDARD/NEARLINE, azure HOT/COOL); default
    the cloud's standard class."""
    enforce: Literal["refuse", "warn"] = "refuse"
    """What an explicit size below the plan's does: refuse or warn; default refuse."""
    raw_chunk_bytes_per_sample: float = Field(default=_DEFAULTS.raw_chunk_bytes_per_sample, gt=0)
    """Raw chunk bytes per sample, index excluded (measure: bucket inspect bytes / samples); default 1.8."""
    bytes_per_5m_window: float = Field(default=_DEFAULTS.bytes_per_5m_window, gt=0)
    """Bytes per series per 5m window, index included; default 7.0."""
    bytes_per_1h_window: float = Field(default=_DEFAULTS.bytes_per_1h_window, gt=0)
    """Bytes per series per 1h window, index included; default 9.0."""
    index_overhead: float | None = Field(default=None, ge=0)
    """Index bytes as a fraction of chunk bytes, replacing the churn table; default none (from churn)."""
    head_bytes_per_series: int = Field(default=_DEFAULTS.head_bytes_per_series, ge=512)
    """Head memory per active series in bytes; default 8192."""


def planned_remote_write_series(stack: "StackConfig") -> int:
    """Series per cluster arriving through receive: capacity.remote-write-series, or the tenants' sum when it is
    larger (config refuses a smaller non-zero one)."""
    assert stack.capacity is not None
    return max(stack.capacity.remote_write_series, sum(t.remote_write_series or 0 for t in stack.tenancy.tenants))


def ring_loads(stack: "StackConfig") -> list[tuple[int, int]]:
    """(series, ingestors) each hashring's ingestors hold: the shared ring's remote-write series (what the tenants
    with ingestors of their own do not write), then what each of those tenants may hold on its own: its head-series
    limit, by default its remote-write-series and half again (alone on its ingestors, a tenant at its limit would
    otherwise run them out of memory)."""
    own = [(t.remote_write_series or 0, t.limits.head_series or planned_head_series(t.remote_write_series or 0),
            t.dedicated_ingestors) for t in stack.tenancy.dedicated()]
    return [(max(0, planned_remote_write_series(stack) - sum(series for series, _, _ in own)),
             stack.thanos.receive.ingestors), *((max(series, limit), count) for series, limit, count in own)]


def inputs_for(stack: "StackConfig", region: "RegionSpec") -> Inputs:
    """The planner inputs of one region's bucket and clusters."""
    spec, thanos = stack.capacity, stack.thanos
    assert spec is not None, "only a stack with a capacity: section is planned"
    overhead = dict(_DEFAULTS.index_overhead)
    if spec.index_overhead is not None:
        overhead[spec.churn] = spec.index_overhead
    constants = replace(_DEFAULTS, raw_chunk_bytes_per_sample=spec.raw_chunk_bytes_per_sample,
                        bytes_per_5m_window=spec.bytes_per_5m_window, bytes_per_1h_window=spec.bytes_per_1h_window,
                        head_bytes_per_series=spec.head_bytes_per_series, index_overhead=overhead)
    retention = thanos.compactor.retention
    days = lambda d: duration_seconds(d) / 86400  # noqa: E731
    hours = lambda d: duration_seconds(d) / 3600  # noqa: E731
    receive = thanos.receive
    return Inputs(
        active_series=spec.active_series, clusters=max(1, len(region.clusters)),
        scrape_interval_s=duration_seconds(thanos.prometheus.scrape_interval), churn=spec.churn,
        prometheus_replicas=thanos.prometheus.replicas,
        remote_write_series=planned_remote_write_series(stack) if receive.enabled else 0,
        receive_replication_factor=receive.replication_factor,
        receive_dedup=thanos.compactor.deduplicate_receive_replicas, receive_ingestors=receive.ingestors,
        ruler_series=spec.ruler_series, retention_raw_days=days(retention.raw),
        retention_5m_days=days(retention.res_5m), retention_1h_days=days(retention.res_1h),
        downsampling=retention.downsampling, delete_delay_hours=hours(thanos.compactor.delete_delay),
        prometheus_retention_hours=hours(thanos.prometheus.retention),
        receive_retention_hours=hours(receive.retention), ruler_retention_hours=hours(thanos.ruler.retention),
        compaction_concurrency=thanos.compactor.concurrency, concurrent_queries=spec.concurrent_queries,
        queries_per_day=spec.queries_per_day, cloud=region.storage.provider, storage_class=spec.storage_class,
        replicated=region.storage.replication is not None,
        constants=constants)


def plans(stack: "StackConfig") -> dict[str, Plan]:
    """The plan of every region that has clusters; its receive sizes those of the fullest hashring's ingestors (one
    receive.resources and storage-size serves every ingestor)."""
    return {r.name: _fullest_ring(stack, plan(inputs_for(stack, r))) for r in stack.regions if r.clusters}


def _fullest_ring(stack: "StackConfig", planned: Plan) -> Plan:
    inputs = planned.inputs
    if not inputs.remote_write_series:
        return planned
    rings = [plan(replace(inputs, remote_write_series=series, receive_ingestors=ingestors)).sizes
             for series, ingestors in ring_loads(stack)]
    return replace(planned, sizes=replace(planned.sizes, receive_memory=max(r.receive_memory for r in rings),
                                          receive_disk=max(r.receive_disk for r in rings)))


def needed_sizes(stack: "StackConfig") -> dict[str, int]:
    """Bytes each sized key needs (the largest over the regions: one Thanos spec serves every cluster)."""
    needed: dict[str, int] = {}
    caches = stack.thanos.caches
    for p in plans(stack).values():
        s = p.sizes
        for key, value in (
                ("prometheus.storage-size", s.prometheus_disk), ("prometheus.resources", s.prometheus_memory),
                ("receive.storage-size", s.receive_disk), ("receive.resources", s.receive_memory),
                ("ruler.storage-size", s.ruler_disk), ("ruler.resources", s.ruler_memory),
                ("compactor.storage-size", s.compactor_disk), ("store.storage-size", s.store_disk),
                ("store.resources", s.store_memory), ("query.resources", s.query_memory),
                ("caches.index.memory-mb", s.cache_index // caches.index.replicas),
                ("caches.bucket.memory-mb", s.cache_bucket // caches.bucket.replicas),
                ("caches.query-results.memory-mb", s.cache_query_results // caches.query_results.replicas)):
            needed[key] = max(needed.get(key, 0), int(value))
    return needed


def _component(thanos, path: str):
    node = thanos
    for part in path.split(".")[:-1]:
        node = getattr(node, part.replace("-", "_"))
    return node


def apply_capacity(stack: "StackConfig") -> tuple["StackConfig", list[tuple[str, str]], list[str]]:
    """(the stack with planned sizes where none was set, problems for explicit sizes below the plan, warnings)."""
    if stack.capacity is None:
        return stack, [], []
    from .thanos import ThanosSpec

    thanos = stack.thanos
    updates: dict[str, object] = {}
    below: list[tuple[str, str]] = []
    for key, need in needed_sizes(stack).items():
        component = _component(thanos, key)
        field = key.rsplit(".", 1)[1].replace("-", "_")
        if field == "memory_mb":
            planned: object = max(64, mib(need))
            have, current, needed_text = component.memory_mb * 1024**2, component.memory_mb, str(planned)
        elif field == "resources":
            requests, limits = component.resources.requests, component.resources.limits
            planned = {"requests": {"cpu": requests.cpu, "memory": f"{mib(need)}Mi"},
                       "limits": {"cpu": limits.cpu, "memory": f"{mib(need * _DEFAULTS.memory_limit_factor)}Mi"}}
            have, current, needed_text = memory_bytes(requests.memory), requests.memory, f"{mib(need)}Mi"
        else:
            planned = f"{gib(need)}Gi"
            have, current, needed_text = memory_bytes(getattr(component, field)), getattr(component, field), planned
        if field not in component.model_fields_set:
            updates[key] = planned
        elif have < need:
            shown = f"{key}.requests.memory" if field == "resources" else key
            below.append((f"thanos.{shown}", f"{current} is below the {needed_text} the capacity plan needs "
                                            f"({stack.capacity.active_series} active series per cluster)"))
    data = thanos.model_dump()
    for key, value in updates.items():
        *parents, leaf = key.replace("-", "_").split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    sized = ThanosSpec.model_validate(data)
    problems = below if stack.capacity.enforce == "refuse" else []
    warnings = [f"{path}: {message}" for path, message in below] if stack.capacity.enforce == "warn" else []
    return stack.model_copy(update={"thanos": sized}), problems, warnings
