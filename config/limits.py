"""Receive's write limits: the defaults every tenant gets (`thanos.receive.limits`), each tenant's own
(`tenancy.tenants[].limits`, unset fields inherited), resolved to the numbers receive's limits file holds, and the
combinations that make no sense refused with their key path.

A tenant's head-series limit below what it already stores cannot be checked offline (the ingestors know it; receive
then refuses its writes with 429 until series go stale)."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field

from capacity import Constants

from .base import Memory, StrictModel, memory_bytes

if TYPE_CHECKING:  # stack.py imports thanos.py and tenancy.py, which import this module
    from .stack import StackConfig
    from .tenancy import Tenant
    from .thanos import ReceiveSpec

PROMETHEUS_MAX_SAMPLES_PER_SEND = 2000
"""Prometheus' `queue_config.max_samples_per_send` (v3): the most samples one remote-write request carries, and so
also its most series (Grafana Alloy's default is the same)."""
_PLANNER = Constants()


class WriteLimits(StrictModel):
    """Receive's write limits (`--receive.limits-config`, `write.default` or `write.tenants.<id>`); 0 means none."""

    head_series: int | None = Field(default=None, ge=0)
    """`head_series_limit`: active series the tenant may hold across the ingestors (a write beyond it gets 429);
    default inherited (receive.limits, else none)."""
    request_series: int | None = Field(default=None, ge=0)
    """`request.series_limit`: series in one remote-write request (beyond it: 413); default inherited."""
    request_samples: int | None = Field(default=None, ge=0)
    """`request.samples_limit`: samples in one remote-write request (beyond it: 413); default inherited."""
    request_size: Memory | None = None
    """`request.size_bytes_limit`: the decompressed size of one request (beyond it: 413); default inherited."""


class ReceiveWriteLimits(WriteLimits):
    """The write limits of every tenant that sets none of its own (receive's `write.default`); 0 means none."""

    head_series: int | None = Field(default=None, ge=0)
    """`head_series_limit`: distinct active series one tenant may hold in the ingestors (a write beyond it gets 429);
    default what the ingestors' memory holds: ingestors x (memory limit / 1.5 - 256 MiB) / 8 KiB per series /
    replication factor (the capacity planner's sizing inverted, its head bytes per series when `capacity:` is set), so
    one tenant alone never drives them past their planned memory. Best effort: the routers see the series the
    cluster's Prometheus last scraped, every 15 s, so a writer of new series overshoots by what it sends in about 45 s."""
    request_series: int | None = Field(default=5 * PROMETHEUS_MAX_SAMPLES_PER_SEND, ge=0)
    """`request.series_limit`: series in one remote-write request (beyond it: 413); default 10000, five times what
    Prometheus sends at most (2000), room for a writer that raises max_samples_per_send."""
    request_samples: int | None = Field(default=5 * PROMETHEUS_MAX_SAMPLES_PER_SEND, ge=0)
    """`request.samples_limit`: samples in one remote-write request (beyond it: 413); default 10000 (as
    request-series)."""
    request_size: Memory | None = "8Mi"
    """`request.size_bytes_limit`: one request's size, compressed and decompressed (beyond it: 413); default 8Mi:
    10000 series of about 30 labels (500 bytes each) decompressed, about 15 times a Prometheus request of 2000."""


@dataclass(frozen=True)
class Limits:
    """One tenant's resolved write limits, as receive's limits file holds them (0: none)."""

    head_series: int
    request_series: int
    request_samples: int
    request_size: int
    """Bytes."""

    def as_file(self) -> dict[str, object]:
        """The `write.default` / `write.tenants.<id>` entry of receive's limits file."""
        return {"head_series_limit": self.head_series,
                "request": {"size_bytes_limit": self.request_size, "series_limit": self.request_series,
                            "samples_limit": self.request_samples}}


@dataclass(frozen=True)
class ResolvedLimits:
    """The limits every tenant gets, and each configured tenant's own."""

    default: Limits
    tenants: dict[str, Limits]
    capacity: int
    """Distinct series the shared ingestors' memory holds (the default head-series limit unless one is set)."""
    rings: dict[str, int]
    """Distinct series the memory of each dedicated tenant's own ingestors holds (its head-series limit unless one
    is set)."""

    def capacity_of(self, tenant: str) -> int:
        """What the ingestors writing the tenant's series hold: its own, or the shared ones."""
        return self.rings.get(tenant, self.capacity)

    @property
    def head_series_limited(self) -> bool:
        """Some tenant has a head-series limit: receive must query meta-monitoring (which it starts only at start)."""
        return any(limits.head_series for limits in (self.default, *self.tenants.values()))


def head_series_capacity(receive: "ReceiveSpec", head_bytes_per_series: int = _PLANNER.head_bytes_per_series,
                         ingestors: int | None = None) -> int:
    """Distinct series the ingestors' memory holds: what one ingestor's memory limit holds with the planner's headroom
    (limit / 1.5, less the process' own 256 MiB), over all shared ingestors (or `ingestors`: a dedicated ring's),
    each series stored replication-factor times; rounded down to a thousand."""
    per_ingestor = memory_bytes(receive.resources.limits.memory) / _PLANNER.memory_limit_factor - _PLANNER.base_memory
    ingestors = receive.ingestors if ingestors is None else ingestors
    series = int(max(0.0, per_ingestor) / head_bytes_per_series * ingestors / receive.replication_factor)
    return series // 1000 * 1000


def planned_head_series(series: int) -> int:
    """A tenant's head-series limit from the series it plans to write: half again, for churn (a rolled-out workload's
    new series sit beside the old until the head compacts)."""
    return series * 3 // 2


def _size(value: str | None) -> int | None:
    return None if value is None else memory_bytes(value)


def resolve(receive: "ReceiveSpec", tenants: "Sequence[Tenant]" = (),
            head_bytes_per_series: int = _PLANNER.head_bytes_per_series) -> ResolvedLimits:
    """`receive.limits` over its built-in defaults, each tenant's limits over those; a tenant with ingestors of its own
    gets what they hold where the shared ingestors' capacity would be its limit."""
    capacity = head_series_capacity(receive, head_bytes_per_series)
    rings = {t.name: head_series_capacity(receive, head_bytes_per_series, t.dedicated_ingestors)
             for t in tenants if t.dedicated_ingestors}
    given = receive.limits
    default = Limits(head_series=capacity if given.head_series is None else given.head_series,
                     request_series=given.request_series or 0, request_samples=given.request_samples or 0,
                     request_size=_size(given.request_size) or 0)

    def over(own: int | None, inherited: int) -> int:
        return inherited if own is None else own

    def head_series(tenant: "Tenant") -> int:
        if tenant.limits.head_series is not None:
            return tenant.limits.head_series
        if tenant.remote_write_series is not None:
            return planned_head_series(tenant.remote_write_series)
        if tenant.name in rings and given.head_series is None:
            return rings[tenant.name]
        return default.head_series

    return ResolvedLimits(default, {t.name: Limits(
        head_series=head_series(t),
        request_series=over(t.limits.request_series, default.request_series),
        request_samples=over(t.limits.request_samples, default.request_samples),
        request_size=over(_size(t.limits.request_size), default.request_size)) for t in tenants}, capacity, rings)


def resolved_limits(stack: "StackConfig") -> ResolvedLimits:
    """The stack's write limits: thanos.receive.limits and every tenant's (the capacity plan's head bytes per series
    when it has one)."""
    head_bytes = stack.capacity.head_bytes_per_series if stack.capacity else _PLANNER.head_bytes_per_series
    return resolve(stack.thanos.receive, stack.tenancy.tenants, head_bytes)


def limit_problems(stack: "StackConfig") -> list[tuple[str, str]]:
    """(key path, message) for limits that cannot work: a request limit above the head-series limit (one request
    could hold more series than the tenant may have), a head-series limit above what the ingestors' memory holds (they
    run out of memory before it applies), and a default head-series limit of 0 derived from too little memory."""
    if not stack.thanos.receive.enabled:
        return []
    resolved = resolved_limits(stack)
    problems = []
    places: list[tuple[str, WriteLimits, Limits, int]] = [("thanos.receive.limits", stack.thanos.receive.limits,
                                                            resolved.default, resolved.capacity)]
    places += [(f"tenancy.tenants[{i}].limits", t.limits, resolved.tenants[t.name], resolved.capacity_of(t.name))
               for i, t in enumerate(stack.tenancy.tenants)]
    fix = "raise thanos.receive.resources.limits.memory or thanos.receive.ingestors"
    tenant_at = {f"tenancy.tenants[{i}].limits": t.name for i, t in enumerate(stack.tenancy.tenants)}

    def whose(tenant: str) -> str:
        return "tenant's own ingestors'" if tenant in resolved.rings else "ingestors'"

    def fix_for(tenant: str) -> str:
        return ("raise thanos.receive.resources.limits.memory or the tenant's dedicated-ingestors"
                if tenant in resolved.rings else fix)

    arriving = stack.capacity and max(stack.capacity.remote_write_series,
                                      sum(t.remote_write_series or 0 for t in stack.tenancy.tenants))
    if stack.thanos.receive.limits.head_series is None and resolved.capacity == 0 and arriving == 0:
        problems.append(("capacity.remote-write-series",
                         "is 0 while thanos.receive is enabled: the capacity plan sizes the ingestors to hold no "
                         "series, and their default head-series limit would refuse every write; set the series per "
                         "cluster that arrive through receive (remote write, stateless rulers), or "
                         "thanos.receive.limits.head-series, or thanos.receive.enabled: false"))
    elif stack.thanos.receive.limits.head_series is None and resolved.capacity == 0:
        problems.append(("thanos.receive.limits.head-series",
                         f"the ingestors' memory limit {stack.thanos.receive.resources.limits.memory} holds no series "
                         f"beside the process itself: {fix}, or set head-series"))
    for path, given, limits, capacity in places:
        if limits.head_series and limits.request_series > limits.head_series:
            at = "request-series" if "request_series" in given.model_fields_set else "head-series"
            problems.append((f"{path}.{at}", f"request-series {limits.request_series} is above head-series "
                                             f"{limits.head_series}: one request could carry more series than the "
                                             "tenant may hold"))
        if given.head_series and given.head_series > capacity:
            problems.append((f"{path}.head-series", f"{given.head_series} is above the {capacity} series the "
                                                    f"{whose(tenant_at.get(path, ''))} memory holds: they would run "
                                                    f"out of memory before the limit applies; "
                                                    f"{fix_for(tenant_at.get(path, ''))}"))
    for i, tenant in enumerate(stack.tenancy.tenants):
        series, own = tenant.remote_write_series, tenant.limits.head_series
        if series is None:
            continue
        if own is not None and own and own < series:
            problems.append((f"tenancy.tenants[{i}].limits.head-series",
                             f"{own} is below the {series} series the tenant writes (remote-write-series): its writes "
                             "would be refused with 429; raise it or leave it out (then it is half again above)"))
        elif own is None and planned_head_series(series) > resolved.capacity_of(tenant.name):
            problems.append((f"tenancy.tenants[{i}].remote-write-series",
                             f"{series} series and half again for churn ({planned_head_series(series)}) are above "
                             f"the {resolved.capacity_of(tenant.name)} series the {whose(tenant.name)} memory holds; "
                             f"{fix_for(tenant.name)}"))
    planned = sum(t.remote_write_series or 0 for t in stack.tenancy.tenants)
    if stack.capacity and stack.capacity.remote_write_series and planned > stack.capacity.remote_write_series:
        problems.append(("capacity.remote-write-series",
                         f"{stack.capacity.remote_write_series} is below the {planned} series the tenants write "
                         "(tenancy.tenants[].remote-write-series): the ingestors would be sized too small; raise it or "
                         "leave it at 0 (then it is the tenants' sum)"))
    return problems
