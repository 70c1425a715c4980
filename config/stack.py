"""The stack root: regions with their storage and clusters, the Thanos spec, and the cross-field checks."""

import re

from pydantic import Field, field_validator, model_validator

from .base import Name, StrictModel
from .storage import AwsStorage, AzureStorage, GcpStorage, InClusterStorage, Storage
from .capacity import CapacitySpec
from .global_view import GlobalViewSpec, TlsSpec
from .observability import ObservabilitySpec
from .tenancy import DEFAULT_TENANT, TenancySpec
from .thanos import REPLICA_LABELS, ThanosSpec
from .tracing import TracingSpec


class KubernetesAccess(StrictModel):
    """How the program reaches a cluster: a kubeconfig context, or a cluster stack's outputs."""

    context: str | None = None
    """Context of the user's kubeconfig (kind, k3d, minikube, EKS...); default none."""
    stack: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+/[\w.-]+$")
    """`org/project/stack` of the stack that created the cluster; default none."""
    kubeconfig_output: str = "kubeconfig"
    """Output of that stack holding the kubeconfig (a secret); default kubeconfig."""
    oidc_issuer_output: str = "oidcIssuerUrl"
    """Output of that stack holding the cluster's OIDC issuer URL; default oidcIssuerUrl."""

    @model_validator(mode="after")
    def _one_source(self) -> "KubernetesAccess":
        if bool(self.context) == bool(self.stack):
            raise ValueError("set exactly one of context (a kubeconfig context) or stack (org/project/stack)")
        return self


class ClusterSpec(StrictModel):
    """One Kubernetes cluster of a region: a Prometheus HA pair and the Thanos components run in it."""

    name: Name
    """Cluster name, unique in the stack; it becomes the `cluster` external label. Required."""
    kubernetes: KubernetesAccess
    """How to reach it; required."""
    namespace: Name | None = None
    """Namespace of this cluster's Thanos objects; default the stack's namespace (set it when several simulated
    clusters share one Kubernetes cluster, as dev does)."""
    oidc_issuer: str | None = Field(default=None, pattern=r"^https://\S+$")
    """OIDC issuer URL of the cluster (IRSA, Azure workload identity); default the stack output, if any."""
    workload_identity_pool: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]\.svc\.id\.goog$")
    """GKE Workload Identity pool of the cluster; default `<storage project>.svc.id.goog`."""
    renamed_from: list[Name] = Field(default_factory=list)
    """Earlier names of this cluster, newest first: its resources keep their state across the rename (aliases), and
    its selectors and cloud identities keep the name it was created with, so keep the list; only the `cluster`
    external label and what shows the name change; default none."""
    zones: list[Name] = Field(default_factory=list)
    """The cluster's zones (its nodes' `topology.kubernetes.io/zone` values, e.g. us-east-1a): receive then runs its
    ingestors spread over them (one StatefulSet per zone; with replication, thanos.receive.ingestors must be a
    multiple of the zones, best two per zone) with a zone-aware hashring, so every series has copies in distinct
    zones; default none."""

    @property
    def created_as(self) -> str:
        """The name the cluster was created with (its oldest earlier name): selectors and identity names keep it."""
        return self.renamed_from[-1] if self.renamed_from else self.name

    @property
    def issuer_from_stack(self) -> bool:
        """True when the OIDC issuer comes from the cluster stack's outputs."""
        return self.oidc_issuer is None and self.kubernetes.stack is not None


class RegionSpec(StrictModel):
    """One cloud region: its bucket, and the clusters that write to it."""

    name: Name
    """Region name as the cloud spells it (us-east-1, europe-west1, westeurope) or any name for in-cluster; required."""
    storage: Storage
    """The region's object storage; required."""
    clusters: list[ClusterSpec] = Field(default_factory=list)
    """Clusters in the region; default none (a DR-only region holding replicas)."""
    compactor_cluster: Name | None = None
    """The cluster that runs the region's single compactor; default the first cluster."""

    @property
    def compactor_cluster_name(self) -> str | None:
        """The cluster hosting this region's compactor, or None for a DR-only region."""
        return self.compactor_cluster or (self.clusters[0].name if self.clusters else None)


class StackConfig(StrictModel):
    """The whole `thanos:config` key of a stack."""

    environment: Name
    """Environment label put on every resource (dev, prod...); required."""
    namespace: Name = "thanos"
    """Kubernetes namespace of every Thanos workload; default thanos."""
    allow_destructive: list[str] = Field(default_factory=list)
    """Logical names of stateful resources the next update may delete or replace, as `preflight --baseline` names
    them when it refuses; remove them once deployed; default none."""
    protect_data: bool = True
    """Buckets, storage accounts and containers, the settings that guard them (versioning, encryption, public access
    block, replication, lifecycle) and the namespaces holding claims get protect and retainOnDelete; buckets are never
    force-destroyed; default true."""
    image_digests: dict[str, str] = Field(default_factory=dict)
    """Pin images by digest: image repository -> `sha256:<64 hex>`; every container (and Prometheus resource) of that
    repository then runs `<repository>:<tag>@<digest>`, tag kept; default none (tags only)."""
    regions: list[RegionSpec] = Field(min_length=1)
    """Regions of the stack, at least one."""
    thanos: ThanosSpec = Field(default_factory=ThanosSpec)
    """The Thanos workloads of every cluster."""
    tls: TlsSpec = Field(default_factory=TlsSpec)
    """The stack CA and its certificates (leaf query and global tier mTLS, remote-write mTLS; the lifetimes also of a
    self-signed or cert-manager entry point certificate);
    default pulumi-tls, 90-day certificates renewed 30 days early."""
    global_view: GlobalViewSpec | None = None
    """One query across every cluster (stacked over each cluster's query) with mTLS, DNS and an authenticated entry
    point; default none (each cluster queried on its own)."""
    observability: ObservabilitySpec = Field(default_factory=ObservabilitySpec)
    """What each cluster's Prometheus collects, Alertmanager and its routes, Grafana; default managed Prometheus
    scraping the cluster, 3 Alertmanagers discarding alerts until receivers are set, Grafana on."""
    tenancy: TenancySpec = Field(default_factory=TenancySpec)
    """Tenants (teams) on the write and read paths, and their limits; default none (one tenant every reader sees)."""
    tracing: TracingSpec | None = None
    """OTLP tracing of every Thanos component (sidecars, queries, query-frontends, stores, compactors, rulers,
    receive, bucket web) to one collector; default none (no component traces)."""
    capacity: CapacitySpec | None = None
    """Capacity plan inputs: when present, every size not set explicitly comes from the planner and an explicit
    size below the plan's is refused (or warned about); default none (the sizes as configured)."""

    @field_validator("image_digests")
    @classmethod
    def _digests(cls, digests: dict[str, str]) -> dict[str, str]:
        for repository, digest in digests.items():
            if ":" in repository.rsplit("/", 1)[-1] or "@" in repository:
                raise ValueError(f"{repository!r} must be a repository without tag or digest (quay.io/thanos/thanos)")
            if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
                raise ValueError(f"{repository}: {digest!r} is not a digest (sha256: and 64 hex digits)")
        return digests

    def namespace_of(self, cluster: ClusterSpec) -> str:
        """The namespace of a cluster's Thanos objects."""
        return cluster.namespace or self.namespace

    def owns_cluster_wide(self, cluster: str) -> bool:
        """True for the first stack cluster on each Kubernetes cluster (context or cluster stack): it deploys what
        exists once per Kubernetes cluster (node-exporter, kube-state-metrics)."""
        seen: set[str | None] = set()
        for spec in (c for r in self.regions for c in r.clusters):
            where = spec.kubernetes.context or spec.kubernetes.stack
            if spec.name == cluster:
                return where not in seen
            seen.add(where)
        return False

    def namespaces_beside(self, cluster: str) -> list[str]:
        """The stack's namespaces on the Kubernetes cluster that runs `cluster` (its own, those of the stack clusters
        sharing it, the global tier's when it runs there, node-exporter's)."""
        specs = [c for r in self.regions for c in r.clusters]
        where = next(c.kubernetes.context or c.kubernetes.stack for c in specs if c.name == cluster)
        beside = [c for c in specs if (c.kubernetes.context or c.kubernetes.stack) == where]
        found = {self.namespace_of(c) for c in beside}
        view = self.global_view
        if view and {c.name for c in beside} & {view.host_cluster, view.standby_cluster}:
            found.add(view.namespace)
        if self.observability.collection.node_exporter:
            found.add(self.observability.collection.node_exporter_namespace)
        return sorted(found)

    def ingestors(self) -> int:
        """The ingestors of each cluster: the shared ones and every tenant's own."""
        return self.thanos.receive.ingestors + sum(t.dedicated_ingestors for t in self.tenancy.dedicated())

    def cluster_names(self) -> list[str]:
        """Every cluster of the stack, in config order."""
        return [c.name for r in self.regions for c in r.clusters]

    def stack_references(self) -> dict[str, list[str]]:
        """The outputs read from other stacks, by stack name (preflight mocks exactly these)."""
        refs: dict[str, list[str]] = {}
        for region in self.regions:
            for cluster in region.clusters:
                access = cluster.kubernetes
                if access.stack:
                    outputs = refs.setdefault(access.stack, [])
                    wanted = [access.kubeconfig_output] + ([access.oidc_issuer_output] if cluster.issuer_from_stack else [])
                    outputs.extend(o for o in wanted if o not in outputs)
        return refs


def cross_check(stack: StackConfig) -> list[tuple[str, str]]:
    """Checks that span regions and clusters; returns (key path, message) for every problem found."""
    problems: list[tuple[str, str]] = []
    region_index = {r.name: i for i, r in enumerate(stack.regions)}

    seen_regions: set[str] = set()
    seen_clusters: dict[str, str] = {}
    seen_places: dict[tuple[str | None, str], str] = {}
    buckets: dict[str, str] = {}

    def claim_bucket(name: str, path: str) -> None:
        if name in buckets:
            problems.append((path, f"bucket {name!r} is already used at {buckets[name]}: two compactors would own "
                                   "one bucket (overlapping blocks, halted compaction)"))
        else:
            buckets[name] = path

    current = {c.name for r in stack.regions for c in r.clusters}
    earlier: dict[str, str] = {}
    for i, region in enumerate(stack.regions):
        for j, cluster in enumerate(region.clusters):
            for k, old in enumerate(cluster.renamed_from):
                at = f"regions[{i}].clusters[{j}].renamed-from[{k}]"
                if old in current:
                    problems.append((at, f"{old!r} is the name of a cluster of this stack: an earlier name must not be in use"))
                elif old in earlier:
                    problems.append((at, f"{old!r} is already an earlier name at {earlier[old]}"))
                earlier.setdefault(old, at)

    for i, region in enumerate(stack.regions):
        at = f"regions[{i}]"
        if region.name in seen_regions:
            problems.append((f"{at}.name", f"region {region.name!r} appears twice"))
        seen_regions.add(region.name)
        storage = region.storage

        for j, cluster in enumerate(region.clusters):
            cat = f"{at}.clusters[{j}]"
            if cluster.name in seen_clusters:
                problems.append((f"{cat}.name", f"cluster {cluster.name!r} is already defined at {seen_clusters[cluster.name]}"))
            else:
                seen_clusters[cluster.name] = cat
            problems += _zone_problems(cluster, stack, f"{cat}.zones")
            place = (cluster.kubernetes.context or cluster.kubernetes.stack, stack.namespace_of(cluster))
            if place in seen_places:
                problems.append((f"{cat}.namespace", f"namespace {place[1]!r} of the same Kubernetes cluster is already "
                                                     f"used by cluster {seen_places[place]!r}: give each its own"))
            seen_places[place] = cluster.name
            needs_issuer = isinstance(storage, (AwsStorage, AzureStorage))
            if needs_issuer and cluster.oidc_issuer is None and not cluster.issuer_from_stack:
                problems.append((f"{cat}.oidc-issuer", f"required for {storage.provider} workload identity "
                                                        "(or read it from kubernetes.stack)"))

        names = [c.name for c in region.clusters]
        if region.compactor_cluster and region.compactor_cluster not in names:
            problems.append((f"{at}.compactor-cluster", f"{region.compactor_cluster!r} is not a cluster of this region "
                                                         f"({', '.join(names) or 'none'})"))

        bucket_name = storage.account if isinstance(storage, AzureStorage) else storage.bucket
        claim_bucket(bucket_name, f"{at}.storage")

        if isinstance(storage, InClusterStorage) and len(region.clusters) != 1:
            problems.append((f"{at}.clusters", "in-cluster storage serves exactly one cluster"))
        if isinstance(storage, GcpStorage) and storage.dual_region and not storage.location.isalpha():
            problems.append((f"{at}.storage.location", "a dual-region placement needs a multi-region location (US, EU, ASIA)"))

        replication = storage.replication
        if replication is None:
            continue
        rat = f"{at}.storage.replication"
        target = replication.destination
        if target == region.name:
            problems.append((f"{rat}.destination", "must be another region than the source"))
        elif target not in region_index:
            problems.append((f"{rat}.destination", f"region {target!r} is not defined in regions "
                                                   f"({', '.join(region_index)})"))
        elif isinstance(storage, InClusterStorage) and replication.bucket:
            problems.append((f"{rat}.bucket", "the copy is always <bucket>-dr in the destination's server"))
        elif stack.regions[region_index[target]].storage.provider != storage.provider:
            problems.append((f"{rat}.destination", f"region {target!r} uses "
                                                   f"{stack.regions[region_index[target]].storage.provider}, "
                                                   f"not {storage.provider}"))
        claim_bucket(replica_bucket_name(storage), f"{rat}.bucket")
        if target in region_index:
            dr_clusters = [c.name for c in stack.regions[region_index[target]].clusters]
            if replication.dr_cluster and replication.dr_cluster not in dr_clusters:
                problems.append((f"{rat}.dr-cluster", f"{replication.dr_cluster!r} is not a cluster of region {target!r} "
                                                      f"({', '.join(dr_clusters) or 'none'})"))
            elif not dr_clusters:
                problems.append((f"{rat}.destination", f"region {target!r} has no cluster to run the read-only store "
                                                       "gateway on the DR copy"))
    return [*problems, *_global_view_problems(stack), *_alerting_problems(stack), *_ruler_problems(stack),
            *_tenancy_problems(stack), *_entry_tenancy_problems(stack), *_dedicated_ring_problems(stack)]


def _entry_tenancy_problems(stack: StackConfig) -> list[tuple[str, str]]:
    """Every reader and operator of a tenant must be someone the entry point lets in: a basic-auth user, or (when
    oauth2-proxy narrows sign-in to groups) one of those groups."""
    entry = stack.global_view.entry_point if stack.global_view else None
    if entry is None or not stack.tenancy.enabled:
        return []
    named = [(f"tenancy.tenants[{i}].readers[{j}]", reader) for i, t in enumerate(stack.tenancy.tenants)
             for j, reader in enumerate(t.readers)]
    named += [(f"tenancy.operators[{j}]", group) for j, group in enumerate(stack.tenancy.operators)]
    problems = []
    if entry.auth == "basic-auth":
        users = entry.basic_auth_users or [entry.basic_auth_user]
        for path, name in named:
            if name not in users:
                problems.append((path, f"{name!r} is not a basic-auth user ({', '.join(users)}): with basic auth, "
                                       "readers and operators are the users of global-view.entry-point"))
    elif entry.allowed_groups:
        for path, name in named:
            if name not in entry.allowed_groups:
                problems.append((path, f"group {name!r} is not in global-view.entry-point.allowed-groups: its members "
                                       "could not sign in"))
    return problems


def _ruler_problems(stack: StackConfig) -> list[tuple[str, str]]:
    """A stateless ruler writes its results to the cluster's receive."""
    problems = []
    if stack.thanos.ruler.stateless and not stack.thanos.receive.enabled:
        problems.append(("thanos.ruler.stateless", "a stateless ruler remote-writes its results to the cluster's "
                                                   "receive: set thanos.receive.enabled, or keep the ruler's own TSDB"))
    return problems + _team_rules_problems(stack)


def _team_rules_problems(stack: StackConfig) -> list[tuple[str, str]]:
    """Team rulers write to receive, and each namespace's rules are evaluated once, never the platform's own."""
    team = stack.thanos.ruler.team_rules
    if not team.enabled:
        return []
    at = "thanos.ruler.team-rules"
    problems = []
    if not stack.thanos.receive.enabled:
        problems.append((f"{at}.enabled", "team rulers are stateless: they remote-write their results to the "
                                          "cluster's receive; set thanos.receive.enabled"))
    if not team.namespaces and not stack.tenancy.tenants:
        problems.append((f"{at}.namespaces", "selects no namespace (and there are no tenants): list the namespaces "
                                             "whose PrometheusRules are evaluated"))
    platform = {stack.namespace_of(c) for r in stack.regions for c in r.clusters}
    if stack.global_view:
        platform.add(stack.global_view.namespace)
    owners = {ns: tenant.name for tenant in stack.tenancy.tenants for ns in tenant.namespaces}
    seen: set[str] = set()
    for i, namespace in enumerate(team.namespaces):
        if namespace in platform:
            problems.append((f"{at}.namespaces[{i}]", f"{namespace!r} is the platform's own namespace: its rules are "
                                                      "the platform's (thanos.ruler.rule-groups)"))
        elif namespace in owners:
            problems.append((f"{at}.namespaces[{i}]", f"{namespace!r} belongs to tenant {owners[namespace]!r}, whose "
                                                      "ruler already evaluates its rules"))
        elif namespace in seen:
            problems.append((f"{at}.namespaces[{i}]", f"{namespace!r} is listed twice"))
        seen.add(namespace)
    return problems


def _alerting_problems(stack: StackConfig) -> list[tuple[str, str]]:
    """Routes name clusters of this stack; without our Alertmanager, rulers and Prometheus need another one."""
    clusters = stack.cluster_names()
    problems = []
    view = stack.global_view
    if not stack.observability.alertmanager.enabled and (
            not stack.thanos.ruler.alertmanagers or (view and view.ruler.enabled and not view.ruler.alertmanagers)):
        problems.append(("observability.alertmanager.enabled", "without this program's Alertmanager, alerts go nowhere: "
                                                               "list yours in thanos.ruler.alertmanagers (and "
                                                               "global-view.ruler.alertmanagers)"))
    routes = stack.observability.alertmanager.routes
    return problems + [(f"observability.alertmanager.routes[{i}].clusters",
                        f"{name!r} is not a cluster of this stack ({', '.join(clusters)})")
                       for i, route in enumerate(routes) for name in route.clusters if name not in clusters]


def _tenancy_problems(stack: StackConfig) -> list[tuple[str, str]]:
    """Tenants need the global tier (its enforcing query is the only reader that scopes a tenant), and a tenant
    namespace is a workload namespace, never one the platform runs in (its own jobs carry the default tenant)."""
    tenancy = stack.tenancy
    if not tenancy.enabled:
        return []
    problems = []
    if stack.global_view is None:
        problems.append(("tenancy.tenants", "tenants need global-view: only the global tier's query enforces a tenant; "
                                            "without it every reader of a cluster's query-frontend sees every tenant"))
    own: dict[str, str] = {}
    for cluster in (c for r in stack.regions for c in r.clusters):
        own.setdefault(stack.namespace_of(cluster), f"cluster {cluster.name!r}")
    if stack.global_view:
        own.setdefault(stack.global_view.namespace, "the global view")
    if stack.observability.collection.node_exporter:
        own.setdefault(stack.observability.collection.node_exporter_namespace, "node-exporter")
    for i, tenant in enumerate(tenancy.tenants):
        for j, namespace in enumerate(tenant.namespaces):
            if namespace in own:
                problems.append((f"tenancy.tenants[{i}].namespaces[{j}]", f"{namespace!r} is the namespace of "
                                 f"{own[namespace]}: the platform's own series carry {DEFAULT_TENANT!r}"))
    return problems


def _dedicated_ring_problems(stack: StackConfig) -> list[tuple[str, str]]:
    """A tenant's own hashring must hold the replication factor in every cluster: receive builds each ring with the
    factor, and a ketama ring with fewer endpoints fails to load ("amount of endpoints needs to be larger than
    replication factor"), which stops every router, not only this tenant's writes; zoned, each zone needs as many of
    its ingestors (the zone-aware ring puts a series' copies in distinct zones). Its StatefulSet names must be valid
    and distinct from the shared ones."""
    receive, problems = stack.thanos.receive, []
    zonings = sorted({tuple(c.zones) for r in stack.regions for c in r.clusters})
    # The names components/thanos/receive.py gives the StatefulSets: thanos-receive[-<tenant>][-<zone>]
    shared = {"thanos-receive-router", *(f"thanos-receive-{z}" for zones in zonings for z in zones)}
    for i, tenant in enumerate(stack.tenancy.tenants):
        at, count, draining = f"tenancy.tenants[{i}]", tenant.dedicated_ingestors, tenant.dedicated_draining
        if draining and draining >= count:
            problems.append((f"{at}.dedicated-draining", f"draining {draining} of {count} dedicated ingestors leaves "
                             "the tenant's ring empty: to give the tenant back to the default ring, set "
                             "dedicated-ingestors: 0 and dedicated-draining: 0"))
            continue
        if not count:
            continue
        if not receive.enabled:
            problems.append((f"{at}.dedicated-ingestors", "thanos.receive is off: there are no ingestors to dedicate"))
            continue
        factor = receive.replication_factor
        if count < factor:
            problems.append((f"{at}.dedicated-ingestors", f"{count} is below thanos.receive.replication-factor "
                             f"{factor}: receive refuses a ketama ring with fewer endpoints than the factor, and "
                             "every router stops on it, not only this tenant's writes"))
        elif count - draining < factor:
            problems.append((f"{at}.dedicated-draining", f"draining {draining} of {count} dedicated ingestors leaves "
                             f"{count - draining} in the tenant's ring, fewer than thanos.receive.replication-factor "
                             f"{factor}: every router would stop; drain fewer"))
        for zones in (z for z in zonings if z and count - draining >= factor):
            if count % len(zones) or (count - draining) % len(zones):
                key = "dedicated-ingestors" if count % len(zones) else "dedicated-draining"
                problems.append((f"{at}.{key}", f"{count} dedicated ingestors ({draining} draining) over the "
                                 f"{len(zones)} zones {', '.join(zones)}: give each zone as many (a multiple of "
                                 f"{len(zones)}), or the zone-aware ring overloads the smaller zones"))
                break
        names = [f"thanos-receive-{tenant.name}" + (f"-{z}" if z else "") for zones in zonings for z in zones or ("",)]
        if too_long := [n for n in names if len(n) > 52]:
            problems.append((f"{at}.name", f"{tenant.name!r} makes the StatefulSet name {too_long[0]!r} longer than "
                             "52 characters: a tenant with dedicated ingestors needs a shorter name"))
        if clash := [n for n in names if n in shared]:
            problems.append((f"{at}.name", f"{tenant.name!r} makes the StatefulSet name {clash[0]!r}, which the "
                             "shared ingestors or the routers already use"))
    return problems


def _global_view_problems(stack: StackConfig) -> list[tuple[str, str]]:
    view = stack.global_view
    if view is None:
        return []
    problems = []
    clusters = {c.name: (r, c) for r in stack.regions for c in r.clusters}
    for key in ("host_cluster", "standby_cluster"):
        name = getattr(view, key)
        if name is not None and name not in clusters:
            problems.append((f"global-view.{key.replace('_', '-')}", f"{name!r} is not a cluster of the stack "
                                                                    f"({', '.join(clusters) or 'none'})"))
    places: dict[tuple[str, str], str] = {}
    for _, cluster in clusters.values():
        places[(cluster.kubernetes.context or cluster.kubernetes.stack or "", stack.namespace_of(cluster))] = cluster.name
    for name in (view.host_cluster, view.standby_cluster):
        if name in clusters:
            access = clusters[name][1].kubernetes
            other = places.get((access.context or access.stack or "", view.namespace))
            if other:
                problems.append(("global-view.namespace", f"{view.namespace!r} is already cluster {other!r}'s namespace "
                                                          "in the same Kubernetes cluster"))
    if view.mode == "distributed":
        overlap = sorted(set(view.partition_labels) & set(REPLICA_LABELS))
        if overlap:
            problems.append(("global-view.partition-labels", f"{', '.join(overlap)} is a replica label: partition "
                                                              "labels must be disjoint from replica labels"))
        # Thanos v0.42.4 runs distributed mode on its own engine whatever --query.promql-engine says (query.go):
        # refused rather than set for the user, so the config states the engine that runs.
        if view.query.promql_engine != "thanos":
            problems.append(("global-view.query.promql-engine", f"mode distributed runs only on the Thanos engine: "
                                                                 f"set promql-engine: thanos (not "
                                                                 f"{view.query.promql_engine})"))
    if view.dns and view.host_cluster in clusters:
        provider = clusters[view.host_cluster][0].storage.provider
        if provider == "in-cluster":
            problems.append(("global-view.dns", "the host cluster's region has no cloud DNS (in-cluster storage)"))
    return problems


def _zone_problems(cluster: ClusterSpec, stack: StackConfig, path: str) -> list[tuple[str, str]]:
    zones, receive = cluster.zones, stack.thanos.receive
    problems = []
    if len(set(zones)) != len(zones):
        problems.append((path, "a zone is listed twice"))
    too_long = [z for z in zones if len(z) > 37]  # thanos-receive-<zone> must stay a valid StatefulSet name (52)
    if too_long:
        problems.append((path, f"zone name {too_long[0]!r} is longer than 37 characters"))
    if zones and receive.enabled and len(zones) < receive.replication_factor:
        problems.append((path, f"{len(zones)} zone(s) cannot hold the {receive.replication_factor} copies of "
                               "thanos.receive.replication-factor in distinct zones: list at least that many zones"))
    if zones and receive.enabled and receive.ingestors < len(zones):
        problems.append((path, f"thanos.receive.ingestors {receive.ingestors} is below the {len(zones)} zones: "
                               "every zone needs an ingestor"))
    elif zones and 1 < receive.replication_factor <= len(zones) and receive.enabled and receive.ingestors % len(zones):
        problems.append(("thanos.receive.ingestors", _uneven_zones(receive.ingestors, zones, cluster.name, path)))
    elif zones and receive.enabled and receive.draining and (
            receive.in_ring < len(zones) or (1 < receive.replication_factor <= len(zones) and receive.in_ring % len(zones))):
        problems.append(("thanos.receive.draining", f"draining {receive.draining} of {receive.ingestors} ingestors "
                         f"leaves {receive.in_ring} in the hashring over {len(zones)} zones (cluster {cluster.name}): "
                         f"drain a multiple of {len(zones)} that leaves at least one in each zone"))
    return problems


def _uneven_zones(ingestors: int, zones: list[str], cluster: str, path: str) -> str:
    """Why ingestors dealt out unevenly over zones overload the smaller zones, and the counts that do not."""
    base, extra = divmod(ingestors, len(zones))
    fuller, smaller = zones[:extra], zones[extra:]
    return (f"{ingestors} ingestors over {len(zones)} zones (cluster {cluster}, {path}) run {base + 1} in "
            f"{', '.join(fuller)} but {base} in {', '.join(smaller)}: the zone-aware hashring puts a series' copies "
            "in distinct zones and each zone's copies on that zone's ingestors only, so an ingestor of "
            f"{', '.join(smaller)} carries more series than one of {', '.join(fuller)}; set a multiple of "
            f"{len(zones)} ({base * len(zones)} or {(base + 1) * len(zones)})")


def dr_cluster_of(stack: StackConfig, region: RegionSpec) -> str | None:
    """The cluster that runs the read-only store gateway on a region's DR copy (None without replication)."""
    replication = region.storage.replication
    if replication is None:
        return None
    target = next(r for r in stack.regions if r.name == replication.destination)
    return replication.dr_cluster or target.clusters[0].name


def dr_store_endpoints(stack: StackConfig, cluster: str) -> list[str]:
    """Names of the DR store gateways a cluster's query lists: those it runs that are `included`, or whose source
    region switched to its DR copy."""
    found = []
    for region in stack.regions:
        replication = region.storage.replication
        if replication and dr_cluster_of(stack, region) == cluster and (
                replication.dr_read == "included" or region.storage.active == "dr"):
            found.append(region.name)
    return found


def replica_bucket_name(storage: AwsStorage | GcpStorage | AzureStorage | InClusterStorage) -> str:
    """The DR bucket (or Azure account) name of a replicated storage."""
    assert storage.replication is not None
    if storage.replication.bucket:
        return storage.replication.bucket
    if isinstance(storage, AzureStorage):
        return (storage.account[:22] + "dr")
    return f"{storage.bucket}-dr"
