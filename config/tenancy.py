"""Tenants: who writes as each team, who reads its data, and the write limits each gets."""

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from .base import Name, StrictModel
from .limits import WriteLimits
from .thanos import QuerySpec

DEFAULT_TENANT = "default-tenant"
"""Receive's and query's `--*.default-tenant-id`: the tenant of data written without one (Thanos' default)."""
TENANT_LABEL = "tenant_id"
"""Receive's `--receive.tenant-label-name` and query's `--query.tenant-label-name` (Thanos' default)."""
TENANT_HEADER = "THANOS-TENANT"
"""The header receive, query and query-frontend read the tenant from (Thanos' default)."""

TenantName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9_-]{0,38}[a-z0-9])?$")]
"""A tenant id: lower-case letters, digits, `-` and `_` (receive refuses a `/`; it names a TSDB directory)."""


class Tenant(StrictModel):
    """One team's data: who writes as it, who reads it, what it may write."""

    name: TenantName
    """The tenant id (its `tenant_id` label, the Organization of its writer certificate); required."""
    namespaces: list[Name] = Field(default_factory=list)
    """Workload namespaces of the tenant: what the cluster's Prometheus scrapes there carries its `tenant_id`, and their
    pods may remote-write to the routers (with the tenant's certificate); default none."""
    readers: list[str] = Field(default_factory=list)
    """Who reads this tenant's data at the entry point: identity-provider groups (oauth2-proxy), or basic-auth users;
    default none."""
    limits: WriteLimits = Field(default_factory=WriteLimits)
    """Write limits of this tenant, over receive.limits; default receive.limits."""
    remote_write_series: int | None = Field(default=None, ge=0)
    """Active series the tenant remote-writes per cluster: the capacity plan sizes the ingestors for the tenants'
    sum, and the tenant's head-series limit defaults to it and half again; default none (receive.limits')."""
    dedicated_ingestors: int = Field(default=0, ge=0)
    """Ingestors of the tenant's own hashring (StatefulSet `thanos-receive-<tenant>`, one per zone when zoned): its
    writes reach only them, and no other tenant's reach them; at least thanos.receive.replication-factor, a multiple
    of the zones; default 0 (shares the default ring)."""
    dedicated_draining: int = Field(default=0, ge=0)
    """Dedicated ingestors kept running but out of the tenant's ring (as thanos.receive.draining: the first step of
    lowering dedicated-ingestors); default 0."""


class TenancySpec(StrictModel):
    """Tenants of the platform; none keeps one tenant (`default-tenant`) that every reader sees."""

    tenants: list[Tenant] = Field(default_factory=list)
    """The tenants; default none (single-tenant: no enforcement, every series visible to every reader)."""
    operators: list[str] = Field(default_factory=list)
    """Groups (oauth2-proxy) or basic-auth users that read every tenant's data at the entry point, and Grafana;
    default none."""
    query: QuerySpec = Field(default_factory=QuerySpec)
    """The global tier's enforcing query (`thanos-query-tenants`, between the global query-frontend and the global
    query: it evaluates every tenant's PromQL, so size it like the global query); default as thanos.query's."""

    def namespaces(self) -> dict[str, str]:
        """Each tenant namespace and the tenant owning it."""
        return {namespace: tenant.name for tenant in self.tenants for namespace in tenant.namespaces}

    def dedicated(self) -> list[Tenant]:
        """The tenants with ingestors of their own."""
        return [tenant for tenant in self.tenants if tenant.dedicated_ingestors]

    @property
    def enabled(self) -> bool:
        """True when tenants are configured (the read path enforces them)."""
        return bool(self.tenants)

    @model_validator(mode="after")
    def _unambiguous(self) -> "TenancySpec":
        problems = []
        seen: dict[str, str] = {}
        for i, tenant in enumerate(self.tenants):
            if tenant.name == DEFAULT_TENANT:
                problems.append(f"tenants[{i}].name {DEFAULT_TENANT!r} is reserved for data written without a tenant")
            if tenant.name in seen:
                problems.append(f"tenants[{i}].name {tenant.name!r} is given twice")
            seen.setdefault(tenant.name, f"tenants[{i}]")
        owners: dict[str, str] = {}
        for i, tenant in enumerate(self.tenants):
            for j, namespace in enumerate(tenant.namespaces):
                if namespace in owners:
                    problems.append(f"tenants[{i}].namespaces[{j}] {namespace!r} already belongs to {owners[namespace]}: "
                                    "a namespace's series carry one tenant")
                owners.setdefault(namespace, f"tenants[{i}] ({tenant.name})")
        readers: dict[str, str] = {}
        for i, tenant in enumerate(self.tenants):
            for j, group in enumerate(tenant.readers):
                if group in readers:
                    problems.append(f"tenants[{i}].readers[{j}] {group!r} already reads {readers[group]}: a group "
                                    "reads one tenant (give it to tenancy.operators to read every tenant)")
                readers.setdefault(group, f"tenants[{i}] ({tenant.name})")
        for path, name in [*((f"tenants[{i}].readers[{j}]", g) for i, t in enumerate(self.tenants)
                             for j, g in enumerate(t.readers)),
                           *((f"operators[{j}]", g) for j, g in enumerate(self.operators))]:
            if name.startswith("*") or name.endswith("*") or "," in name or not name.strip() or name != name.strip():
                problems.append(f"{path} {name!r}: give the exact group or user name (no wildcard, no comma, no "
                                "spaces around)")
        for j, group in enumerate(self.operators):
            if group in readers:
                problems.append(f"operators[{j}] {group!r} also reads {readers[group]}: an operator group reads "
                                "every tenant, list it once")
        if problems:
            raise ValueError("; ".join(problems))
        return self
