"""One cluster: its namespace, shared objects, and every Thanos workload, wired together by DNS names."""

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components.platform import names
from components.platform.common import HTTP_PORT, RECEIVE_REPLICA_LABEL, service_name, stable_bcrypt
from components.platform.names import dns_srv, pod_address, service_address
from components.global_view.certificates import Certificate, StackAuthority
from components.platform.tls import service_names
from components.global_view.leaves import LEAF_SERVICE, LEAF_TLS_SECRET, leaf_address, leaf_certificate, leaf_flags, leaf_service
from components.operations.bucket_jobs import verify_cronjob
from components.operations.dr import dr_store_name
from components.observability import rules as jobs
from components.observability.alertmanager import NAME as ALERTMANAGER_NAME
from components.observability.alertmanager import Alertmanager, AlertmanagerArgs, cluster_alertmanagers
from components.observability.collection import build_kube_state_metrics, build_node_exporter, node_exporter_scrape_secret
from components.observability.grafana import Grafana, GrafanaArgs
from components.observability.operator import build_operator_prometheus
from components.observability.replicas import planned_replicas
from components.observability import tls_probe
from components.operations.validation import cluster_checks, validation_objects
from components.platform.kube import ClusterContext, register
from components.platform.namespace import Namespace, NamespaceArgs
from components.storage.identity import BucketAccess
from components.thanos.bucket_web import BucketWeb, BucketWebArgs
from components.thanos.compactor import NAME as COMPACTOR_NAME
from components.thanos.compactor import RECEIVE_SHARD as COMPACTOR_RECEIVE_SHARD
from components.thanos.compactor import Compactor, CompactorArgs
from components.thanos.memcached import MemcachedPool, MemcachedPoolArgs, pool_name
from components.thanos.prometheus import Observed, Prometheus, PrometheusArgs, ScrapeJob, build_prometheus, sidecar_endpoints
from components.thanos.query import (Query, QueryArgs, build_query, cluster_replica_labels, endpoint_sd_config,
                                     global_query_sd_config)
from components.thanos.query_frontend import QueryFrontend, QueryFrontendArgs, query_frontend_url
from components.thanos.receive import (
    REMOTE_WRITE_CLIENT_SECRET,
    REMOTE_WRITE_TLS_SECRET,
    ROUTER,
    Receive,
    ReceiveArgs,
    receive_endpoints,
    remote_write_url,
    tenant_client_secret,
)
from components.thanos.ruler import NAME as RULER_NAME
from components.thanos.ruler import Ruler, RulerArgs, build_ruler, ruler_endpoints
from components.thanos.team_rules import (
    GLOBAL_TEAM_QUERY,
    TEAM_QUERY,
    TEAM_QUERY_TLS_SECRET,
    TeamRuler,
    TeamRules,
    TeamRulesArgs,
    build_team_rules,
    team_query_address,
    team_rulers,
)
from components.thanos.store import Store, StoreArgs, shard_names, store_endpoints
from config.limits import resolved_limits
from config.stack import StackConfig, dr_cluster_of, dr_store_endpoints, replica_bucket_name
from config.storage import InClusterStorage
from config.tenancy import DEFAULT_TENANT


if TYPE_CHECKING:  # imported where dev builds it: the module needs pulumi_random, which other stacks do not install
    from components.storage.in_cluster import InClusterObjectStore

@dataclass(frozen=True)
class ClusterPlan:
    """What is decided about a cluster before anything is registered (pure, tested without mocks)."""

    endpoints: list[str]
    """StoreAPI addresses Query fans out to."""
    replica_labels: list[str]
    """Every replica label a producer of this cluster uses: Query deduplicates on each."""
    compactor_dedup_labels: list[str]
    """Labels the compactor merges offline (byte-identical receive replicas only)."""
    scraped: list[ScrapeJob]
    """The jobs Prometheus scrapes through DNS SRV (Thanos, the cache exporters, Alertmanager)."""
    rule_scope: frozenset[str]
    """What the cluster runs that the platform's rules watch (scrape jobs, plus the replication CronJob)."""
    probes: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    """The TLS probes its Prometheus has run: (namespace of the exporter, module, targets)."""


def cluster_zones(stack: StackConfig, cluster: str) -> tuple[str, ...]:
    """The zones a cluster of the stack lists (its ingestors are spread over them); none for an unknown name."""
    return next((tuple(c.zones) for r in stack.regions for c in r.clusters if c.name == cluster), ())


def plan_cluster(stack: StackConfig, namespace: str, compactor_here: bool, cluster: str = "") -> ClusterPlan:
    """Decide the wiring: which StoreAPIs exist (DR store gateways that are included or whose region switched to its
    DR copy too), which replica labels are in use, what is scraped and watched by rules."""
    thanos = stack.thanos
    operator = stack.observability.collection.mode == "operator"
    endpoints = [*sidecar_endpoints(thanos.prometheus.replicas, namespace, operator=operator),
                 *store_endpoints(thanos.store, namespace), *ruler_endpoints(thanos.ruler.replicas, namespace),
                 *(pod_address(dr_store_name(region), i, dr_store_name(region), namespace)
                   for region in dr_store_endpoints(stack, cluster) for i in range(thanos.store.replicas))]
    labels = cluster_replica_labels(thanos)
    dedup: list[str] = []
    if thanos.receive.enabled:
        endpoints += receive_endpoints(thanos.receive, namespace, cluster_zones(stack, cluster),
                                       stack.tenancy.dedicated())
        if thanos.receive.replication_factor > 1 and thanos.compactor.deduplicate_receive_replicas:
            dedup.append(RECEIVE_REPLICA_LABEL)
    scraped = scrape_jobs(stack, cluster, compactor_here, receive_compactor=bool(dedup))
    probes = probe_groups(stack, cluster, namespace)
    scope = rule_scope(stack, cluster, scraped) | ({jobs.TLS_PROBE} if probes else set())
    return ClusterPlan(endpoints, labels, dedup, scraped, frozenset(scope), probes)


def probe_groups(stack: StackConfig, cluster: str, namespace: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """What a cluster's TLS probes dial: its routers' remote-write (receive on) with the writers' certificate, and
    where the global tier runs beside it, every leaf and global ruler with the global query's certificate."""
    groups: list[tuple[str, str, tuple[str, ...]]] = []
    if stack.thanos.receive.enabled:
        groups.append((namespace, tls_probe.WRITERS, (remote_write_url(namespace),)))
    view = stack.global_view
    if view and cluster in (view.host_cluster, view.standby_cluster):
        leaves = [leaf_address(view, c.name, stack.namespace_of(c)) for r in stack.regions for c in r.clusters]
        rulers = ruler_endpoints(view.ruler.replicas, view.namespace) if view.ruler.enabled else []
        groups.append((view.namespace, tls_probe.READERS, tuple(leaves + rulers)))
    return tuple(groups)


def cluster_team_rulers(stack: StackConfig, cluster: str) -> list[TeamRuler]:
    """The team rulers a cluster runs (team rules on; config makes sure receive is there to take their results): its
    own, and where the global tier runs beside it the global-scope ones."""
    view = stack.global_view
    return team_rulers(stack.thanos.ruler.team_rules, stack.tenancy, REMOTE_WRITE_CLIENT_SECRET, tenant_client_secret,
                       global_scope=bool(view and cluster in (view.host_cluster, view.standby_cluster)))


def scrape_jobs(stack: StackConfig, cluster: str, compactor_here: bool, receive_compactor: bool = False) -> list[ScrapeJob]:
    """The DNS SRV jobs of a cluster's Prometheus: each Thanos component it runs (DR store gateways with the
    stores, the receive compactor shard with the compactor), the cache exporters, Alertmanager, and the global tier
    beside it, if any."""
    thanos = stack.thanos
    dr_stores = tuple(dr_store_name(r.name) for r in stack.regions if dr_cluster_of(stack, r) == cluster)
    scraped = [ScrapeJob(jobs.SIDECAR, (names.SIDECAR,)), ScrapeJob(jobs.QUERY, (names.QUERY_PODS,)),
               ScrapeJob(jobs.QUERY_FRONTEND, ("thanos-query-frontend-pods",)),
               ScrapeJob(jobs.STORE, (*shard_names(thanos.store), *dr_stores)), ScrapeJob(jobs.RULER, (RULER_NAME,))]
    scraped += [ScrapeJob(pool_name(pool), (pool_name(pool),), "metrics") for pool in ("index", "bucket", "query-results")]
    if thanos.receive.enabled:
        scraped += [ScrapeJob(jobs.RECEIVE, (names.RECEIVE,)), ScrapeJob(jobs.RECEIVE_ROUTER, (names.RECEIVE_ROUTER,))]
    if compactor_here:
        scraped.append(ScrapeJob(jobs.COMPACTOR, (COMPACTOR_NAME, *([COMPACTOR_RECEIVE_SHARD] if receive_compactor else []))))
    if thanos.bucket_web.enabled:
        scraped.append(ScrapeJob(jobs.BUCKET_WEB, (names.BUCKET_WEB,)))
    if stack.observability.alertmanager.enabled:
        scraped.append(ScrapeJob(jobs.ALERTMANAGER, (ALERTMANAGER_NAME,), "web"))
    if cluster_team_rulers(stack, cluster):
        scraped.append(ScrapeJob(jobs.TEAM_RULER, (names.TEAM_RULER,)))
    view = stack.global_view
    if view and cluster in (view.host_cluster, view.standby_cluster):
        tier = {jobs.QUERY, jobs.QUERY_FRONTEND, pool_name("query-results"), *([jobs.RULER] if view.ruler.enabled else [])}
        scraped = [replace(s, namespaces=(view.namespace,)) if s.job in tier else s for s in scraped]
        # The enforcing query and the query in front of the ruler are queries of the tier: the query's alerts watch
        # them too.
        queries = ((names.QUERY_TENANTS_PODS,) * stack.tenancy.enabled +
                   (names.QUERY_RULES_PODS,) * (view.ruler.enabled and view.mode == "distributed"))
        if queries:
            scraped = [replace(s, tier_services=queries) if s.job == jobs.QUERY else s for s in scraped]
    return scraped


def rule_scope(stack: StackConfig, cluster: str, scraped: list[ScrapeJob]) -> frozenset[str]:
    """What the platform's rules watch in a cluster: its jobs, Prometheus and the caches, and, when kube-state-metrics
    is collected, bucket jobs (the replication CronJob where one runs)."""
    scope = {scrape.job for scrape in scraped} | {jobs.PROMETHEUS, jobs.MEMCACHED}
    collection = stack.observability.collection
    if collection.kube_state_metrics and (collection.kubernetes or collection.mode == "operator"):
        scope.add(jobs.KUBE_STATE_METRICS)
        if any(isinstance(r.storage, InClusterStorage) and r.storage.replication and
               cluster in (c.name for c in r.clusters) for r in stack.regions):
            scope.add(jobs.BUCKET_REPLICATE)
    return frozenset(scope)


def cluster_certificates(stack: StackConfig, ctx: ClusterContext) -> list[Certificate]:
    """What a cluster needs signed: the routers' remote-write server and a client certificate for writers (receive
    on), the leaf query's gRPC server (global view on). With tenants, the writers' certificate is the default tenant's
    (its Organization; the TLS probe presents it too) and each tenant gets its own."""
    certs = []
    if stack.thanos.receive.enabled:
        tenancy = stack.tenancy
        certs += [Certificate(REMOTE_WRITE_TLS_SECRET, f"thanos-receive-router.{ctx.cluster}",
                              service_names(ROUTER, ctx.namespace), "server"),
                  Certificate(REMOTE_WRITE_CLIENT_SECRET, f"remote-write-client.{ctx.cluster}", (), "client", "writers",
                              DEFAULT_TENANT if tenancy.enabled else "")]
        certs += [Certificate(tenant_client_secret(tenant.name), f"remote-write-client.{tenant.name}.{ctx.cluster}", (),
                              "client", "writers", tenant.name) for tenant in tenancy.tenants]
        if tenancy.enabled and cluster_team_rulers(stack, ctx.cluster):
            certs.append(Certificate(TEAM_QUERY_TLS_SECRET, f"thanos-query-team-rules.{ctx.cluster}", tuple(
                name for component in (TEAM_QUERY, GLOBAL_TEAM_QUERY)
                for name in service_names(service_name(component), ctx.namespace)), "server"))
    if stack.global_view:
        certs.append(leaf_certificate(stack.global_view, ctx.cluster, ctx.namespace))
    return certs


@dataclass(frozen=True)
class ThanosClusterArgs:
    """What one cluster's Thanos is built from."""

    ctx: ClusterContext
    """The cluster: its name, region, namespace, image and spread."""
    stack: StackConfig
    """The whole stack (its thanos and observability settings, and the clusters beside this one)."""
    provider: k8s.Provider
    """The cluster's Kubernetes provider, which every child uses."""
    compactor_here: bool
    """Whether the region's compactor (and bucket verify) runs in this cluster."""
    cloud: str
    """The region's storage provider: the leaf Service's load balancer annotations are that cloud's."""
    access: BucketAccess | None = None
    """Access to the region's bucket (default none: in-cluster storage, whose access is made here)."""
    in_cluster: InClusterStorage | None = None
    """The region's in-cluster storage, served from this cluster (default none: a cloud bucket)."""
    authority: StackAuthority | None = None
    """The stack's CAs, which issue the cluster's certificates (default none: no receive and no global view)."""


class ThanosCluster(pulumi.ComponentResource):
    """Everything Thanos in one cluster, on that cluster's own Kubernetes provider."""

    leaf_service: pulumi.CustomResource | None
    """The Service the global tier dials this cluster's query through (None without a global view)."""
    ready: list[pulumi.Resource]
    """The namespace, shared objects and Secrets: what anything added to the cluster later waits for."""

    def __init__(self, name: str, args: ThanosClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:index:Cluster", name, {}, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(providers=[args.provider])))
        self._prefix, self._args = name, args
        # Declared here, not on the class: Pulumi evaluates the class's hints, and that module needs pulumi_random.
        self.in_cluster: InClusterObjectStore | None = None
        """The cluster's in-cluster object store (dev), whose server other regions' copies may live on."""
        self._plan = plan_cluster(args.stack, args.ctx.namespace, args.compactor_here, args.ctx.cluster)
        namespace = self._namespace()
        after_ns: list[pulumi.Resource] = [namespace.namespace]
        self._access = self._bucket_access(after_ns)
        self.ready = self._shared_objects(namespace, after_ns)
        self._alerting_and_collection()
        self._caches(after_ns)
        # The operations guide's upgrade order: each tier waits for the one before it, so a version change rolls the
        # compactor first, then store, ruler, query and query-frontend, receive, and the Prometheus sidecars last.
        stage = self._compactor_and_store()
        stage = self._ruler(stage)
        stage = self._query_path(stage)
        stage = self._receive(stage)
        stage = self._prometheus(stage)
        stage += self._bucket_web()
        self._grafana()
        self._validation(stage)
        self.outputs = self._outputs()
        self.register_outputs(self.outputs)

    def _child(self) -> pulumi.ResourceOptions:
        """The options of a direct child."""
        return pulumi.ResourceOptions(parent=self)

    def _trust(self) -> dict[str, str] | None:
        """The pod annotation naming the CA generations trusted (a rotation restarts the pods that carry it)."""
        return self._args.authority.trust_annotation if self._args.authority else None

    def _namespace(self) -> Namespace:
        """The namespace, protected where the stack protects its data."""
        stack = self._args.stack
        return Namespace(f"{self._prefix}-namespace", NamespaceArgs(self._args.ctx, stack.environment,
                                                                     holds_data=stack.protect_data), self._child())

    def _bucket_access(self, after_ns: list[pulumi.Resource]) -> BucketAccess:
        """The access to the region's bucket: the cloud's, or in dev the in-cluster object store's, made here."""
        name, ctx, stack = self._prefix, self._args.ctx, self._args.stack
        in_cluster, access = self._args.in_cluster, self._args.access
        if in_cluster is not None:
            # pulumi_random only for stacks that need it
            from components.storage.in_cluster import InClusterObjectStore, InClusterObjectStoreArgs

            copies = tuple(replica_bucket_name(r.storage) for r in stack.regions if r.storage.provider == "in-cluster"
                           and r.storage.replication and r.storage.replication.destination == ctx.region)
            self.in_cluster = InClusterObjectStore(f"{name}-objectstore", InClusterObjectStoreArgs(
                ctx, in_cluster, tuple(after_ns), copies), pulumi.ResourceOptions(parent=self))
            access = self.in_cluster.access
        assert access is not None
        return access

    def _shared_objects(self, namespace: Namespace, after_ns: list[pulumi.Resource]) -> list[pulumi.Resource]:
        """ServiceAccounts, the objstore Secret, NetworkPolicies and the cluster's certificates; returns them with the
        namespace: what every workload waits for."""
        ctx, stack, authority = self._args.ctx, self._args.stack, self._args.authority
        shared = namespace.add_shared(ctx, pulumi.Output.secret(self._access.objstore_config), self._access.annotations,
                                      stack, cluster_alertmanagers(stack, ctx.namespace))
        certs = cluster_certificates(stack, ctx)
        accepts = (*(("writers",) if stack.thanos.receive.enabled else ()), *(("readers",) if stack.global_view else ()))
        secrets = authority.issue(self._prefix, ctx, certs, self, after_ns, accepts) if authority and certs else {}
        # In dev, Thanos waits for the Jobs that make its bucket and the user it runs as.
        return after_ns + list(shared.values()) + list(secrets.values()) + (self.in_cluster.setup if self.in_cluster else [])

    def _alerting_and_collection(self) -> None:
        """Alertmanager, and once per Kubernetes cluster node-exporter (its scrape password generated here) and
        kube-state-metrics."""
        name, ctx, stack = self._prefix, self._args.ctx, self._args.stack
        observability = stack.observability
        if observability.alertmanager.enabled:
            Alertmanager(f"{name}-alertmanager", AlertmanagerArgs(ctx, observability.alertmanager, depends_on=self.ready),
                         self._child())
        scrape_password = salt_key = None
        if stack.owns_cluster_wide(ctx.cluster) and observability.collection.node_exporter:
            import pulumi_random as random  # only for stacks that need it

            random_provider = random.Provider(f"{name}-random", opts=self._child())
            generated = pulumi.ResourceOptions(parent=self, provider=random_provider)
            scrape_password = random.RandomPassword(f"{name}-node-exporter-scrape", length=32, special=False,
                                                    opts=generated)
            salt_key = random.RandomPassword(f"{name}-node-exporter-salt-key", length=32, special=False, opts=generated)
        collectors = self._collectors(ctx, stack, scrape_password, salt_key)
        if collectors:
            register(collectors, f"{name}-collection", self, self.ready)

    def _caches(self, after_ns: list[pulumi.Resource]) -> None:
        """The index, bucket and query-results memcached pools."""
        caches = self._args.stack.thanos.caches
        for pool, spec in (("index", caches.index), ("bucket", caches.bucket), ("query-results", caches.query_results)):
            MemcachedPool(f"{self._prefix}-memcached-{pool}", MemcachedPoolArgs(self._args.ctx, pool, spec,
                                                                                 depends_on=after_ns), self._child())

    def _compactor_and_store(self) -> list[pulumi.Resource]:
        """Where the region's compactor runs, bucket verify and the compactor; then the store gateway."""
        name, ctx, thanos, pod_labels = self._prefix, self._args.ctx, self._args.stack.thanos, self._access.pod_labels
        stage = self.ready
        if self._args.compactor_here and thanos.bucket_verify.enabled:
            register([verify_cronjob(ctx, thanos.bucket_verify, pod_labels)], f"{name}-jobs", self, self.ready)
        if self._args.compactor_here:
            # On a switch between copies the compactor moves only after the replication stream into its new
            # bucket has stopped: one compactor per bucket, even inside one `pulumi up`.
            stage = self.ready + [Compactor(f"{name}-compactor", CompactorArgs(
                ctx, thanos.compactor, self._plan.compactor_dedup_labels, pod_labels,
                depends_on=stage + list(self._access.switch_after)), self._child())]
        return self.ready + [Store(f"{name}-store", StoreArgs(ctx, thanos.store, thanos.caches, pod_labels, depends_on=stage),
                                   self._child())]

    def _ruler(self, after: list[pulumi.Resource]) -> list[pulumi.Resource]:
        """The ruler, with the platform's rule groups unless the stack gives its own, alerting this cluster's
        Alertmanagers; stateless, it remote-writes its results to the cluster's routers."""
        ctx, stack = self._args.ctx, self._args.stack
        spec = stack.thanos.ruler
        ruler = spec.model_copy(update={
            "alertmanagers": cluster_alertmanagers(stack, ctx.namespace),
            "rule_groups": spec.rule_groups if spec.rule_groups is not None else
            jobs.ruler_rule_groups(ctx.cluster, stack.observability.runbooks)})
        stateless = spec.stateless and stack.thanos.receive.enabled
        query = dns_srv("http", names.QUERY_PODS, ctx.namespace)
        rulers: list[pulumi.Resource] = [Ruler(f"{self._prefix}-ruler", RulerArgs(build_ruler(
            ctx, ruler, query, self._access.pod_labels,
            remote_write=remote_write_url(ctx.namespace) if stateless else None,
            writer_secret=REMOTE_WRITE_CLIENT_SECRET if stateless else None), depends_on=after), self._child())]
        team = cluster_team_rulers(stack, ctx.cluster)
        if team:
            view = stack.global_view if any(r.global_scope for r in team) else None
            global_query = service_address(names.QUERY, view.namespace, HTTP_PORT) if view else None
            enforcing: list[tuple[str, dict[str, Any]]] = []
            if stack.tenancy.enabled:  # read through the queries that scope each ruler to its tenant
                query = team_query_address(TEAM_QUERY, ctx.namespace)
                enforcing.append((TEAM_QUERY, endpoint_sd_config(self._plan.endpoints)))
                if view:
                    global_query = team_query_address(GLOBAL_TEAM_QUERY, ctx.namespace)
                    enforcing.append((GLOBAL_TEAM_QUERY, global_query_sd_config(view.namespace)))
            rulers.append(TeamRules(f"{self._prefix}-team-rules", TeamRulesArgs(build_team_rules(
                ctx, spec.team_rules, team, query_address=query, global_query_address=global_query,
                alertmanagers=cluster_alertmanagers(stack, ctx.namespace), remote_write_url=remote_write_url(ctx.namespace),
                evaluation_interval=spec.evaluation_interval, enforcing=enforcing,
                replica_labels=self._plan.replica_labels), depends_on=after), self._child()))
        return self.ready + rulers

    def _query_path(self, after: list[pulumi.Resource]) -> list[pulumi.Resource]:
        """Query over the planned StoreAPIs, query-frontend, and with a global view the leaf Service the global tier
        dials."""
        name, ctx, thanos, view = self._prefix, self._args.ctx, self._args.stack.thanos, self._args.stack.global_view
        query = Query(f"{name}-query", QueryArgs(build_query(
            ctx, thanos.query, endpoint_sd_config(self._plan.endpoints), self._plan.replica_labels,
            tls_secret=LEAF_TLS_SECRET if view else None, extra_flags=leaf_flags() if view else (),
            pod_annotations=self._trust() if view else None), depends_on=after), self._child())
        frontend = QueryFrontend(f"{name}-query-frontend", QueryFrontendArgs(
            ctx, thanos.query_frontend, thanos.caches.query_results, depends_on=after), self._child())
        stage = self.ready + [query, frontend]
        self.leaf_service = register([leaf_service(ctx, view, self._args.cloud)], f"{name}-leaf", self, stage)[
            f"Service/{LEAF_SERVICE}"] if view else None
        return stage

    def _receive(self, after: list[pulumi.Resource]) -> list[pulumi.Resource]:
        """With receive on: the TLS probe of its remote-write, then the routers and ingestors."""
        name, ctx, receive = self._prefix, self._args.ctx, self._args.stack.thanos.receive
        if not receive.enabled:
            return after
        register(tls_probe.build_tls_probe(ctx, tls_probe.WRITERS, REMOTE_WRITE_CLIENT_SECRET), f"{name}-tls-probe",
                 self, self.ready)
        return self.ready + [Receive(f"{name}-receive", ReceiveArgs(
            ctx, receive, self._access.pod_labels, self._trust(), resolved_limits(self._args.stack),
            tenants=self._args.stack.tenancy.enabled, dedicated=tuple(self._args.stack.tenancy.dedicated()),
            depends_on=after),
            self._child())]

    def _prometheus(self, after: list[pulumi.Resource]) -> list[pulumi.Resource]:
        """The Prometheus pair and its sidecars, last in the upgrade order."""
        objects = self._prometheus_objects(self._args.ctx, self._args.stack, self._plan, self._access.pod_labels)
        return self.ready + [Prometheus(f"{self._prefix}-prometheus", PrometheusArgs(objects, depends_on=after),
                                        self._child())]

    def _bucket_web(self) -> list[pulumi.Resource]:
        """Bucket web, where enabled."""
        thanos = self._args.stack.thanos
        if not thanos.bucket_web.enabled:
            return []
        return [BucketWeb(f"{self._prefix}-bucket-web", BucketWebArgs(
            self._args.ctx, thanos.bucket_web, self._access.pod_labels, depends_on=self.ready), self._child())]

    def _grafana(self) -> None:
        """Grafana over this cluster's query, unless a global view has one over every cluster."""
        stack = self._args.stack
        if stack.observability.grafana.enabled and not stack.global_view:
            Grafana(f"{self._prefix}-grafana", GrafanaArgs(
                self._args.ctx, stack.observability.grafana, scrape_interval=stack.thanos.prometheus.scrape_interval,
                query_timeout=stack.thanos.query.timeout, components=frozenset(s.job for s in self._plan.scraped),
                depends_on=self.ready), self._child())

    def _validation(self, after: list[pulumi.Resource]) -> None:
        """The validation Job, once every workload is up."""
        ctx = self._args.ctx
        register(validation_objects(ctx, cluster_checks(ctx, self._args.stack)), f"{self._prefix}-validate", self, after)

    def _outputs(self) -> dict[str, Any]:
        """Where the cluster's query-frontend, remote-write and leaf query answer, and whether its compactor runs."""
        ctx, stack, view = self._args.ctx, self._args.stack, self._args.stack.global_view
        return {
            "namespace": ctx.namespace,
            "queryFrontendUrl": query_frontend_url(ctx.namespace),
            "remoteWriteUrl": remote_write_url(ctx.namespace) if stack.thanos.receive.enabled else None,
            "compactor": self._args.compactor_here,
            "leafQuery": leaf_address(view, ctx.cluster, ctx.namespace) if view else None,
        }

    @staticmethod
    def _collectors(ctx: ClusterContext, stack: StackConfig, scrape_password: Any, salt_key: Any) -> list[dict[str, Any]]:
        """node-exporter (answering only the scrape user of this cluster's Prometheus) and kube-state-metrics, once
        per Kubernetes cluster (the first stack cluster on it)."""
        collection = stack.observability.collection
        if not stack.owns_cluster_wide(ctx.cluster):
            return []
        objects = build_kube_state_metrics(ctx) if collection.kube_state_metrics else []
        if collection.node_exporter:
            password_hash = pulumi.Output.all(scrape_password.result, salt_key.result).apply(
                lambda v: stable_bcrypt("thanos-node-exporter", v[0], v[1]))
            objects += build_node_exporter(ctx, collection.node_exporter_namespace, password_hash)
            objects.append(node_exporter_scrape_secret(ctx, pulumi.Output.secret(scrape_password.result)))
        return objects

    @staticmethod
    def _prometheus_objects(ctx: ClusterContext, stack: StackConfig, plan: ClusterPlan,
                            pod_labels: dict[str, str] | None) -> list[dict[str, Any]]:
        """The managed Prometheus pair, or the prometheus-operator resources that make it (operator mode)."""
        observability = stack.observability
        collection = observability.collection
        groups = jobs.platform_rule_groups(set(plan.rule_scope), runbooks=observability.runbooks,
                                           kubernetes=collection.kubernetes, renewal=stack.tls.early_renewal,
                                           replicas=planned_replicas(stack, ctx.namespace, plan.scraped,
                                                                     len(cluster_team_rulers(stack, ctx.cluster))))
        observed = Observed(plan.scraped, kubernetes=collection.kubernetes,
                            alertmanagers=tuple(cluster_alertmanagers(stack, ctx.namespace)),
                            own_alertmanager=observability.alertmanager.enabled, rule_groups=tuple(groups),
                            own_namespaces=tuple(stack.namespaces_beside(ctx.cluster)), probes=plan.probes,
                            scrape_limits=collection.scrape_limits,
                            node_exporter_namespace=collection.node_exporter_namespace if collection.kubernetes and
                            collection.node_exporter and stack.owns_cluster_wide(ctx.cluster) else None,
                            tenants=stack.tenancy.namespaces() if stack.tenancy.enabled else None)
        if collection.mode == "managed":
            return build_prometheus(ctx, stack.thanos.prometheus, observed, pod_labels)
        owner = stack.owns_cluster_wide(ctx.cluster)
        return build_operator_prometheus(
            ctx, stack.thanos.prometheus, observed, pod_labels,
            node_exporter_namespace=collection.node_exporter_namespace if owner and collection.node_exporter else None,
            kube_state_metrics=owner and collection.kube_state_metrics)
