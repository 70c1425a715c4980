"""How many pods the plan runs behind each Service a cluster's Prometheus scrapes: what the platform's rules compare
the targets that are up against. Prometheus discovers its targets through the SRV records of headless Services,
which list only ready pods, so a dead or crash-looping replica leaves the targets instead of showing `up == 0`."""

from components.observability import rules as jobs
from components.platform.names import QUERY_RULES_PODS, QUERY_TENANTS_PODS
from components.thanos.memcached import pool_name
from components.thanos.prometheus import NAME as PROMETHEUS_NAME
from components.thanos.prometheus import ScrapeJob
from config.stack import StackConfig


def planned_replicas(stack: StackConfig, namespace: str, scraped: list[ScrapeJob],
                     team_rulers: int = 0) -> dict[tuple[str, str, str], int]:
    """(job, namespace, Service) -> the pods planned behind that Service, for the Prometheus pair and every scraped
    job, the global tier's beside the cluster included (`team_rulers`: the cluster's ThanosRulers of team rules). An
    autoscaled Deployment counts its HPA minimum (the `replicas` of its spec)."""
    thanos, caches, view = stack.thanos, stack.thanos.caches, stack.global_view
    own = {jobs.PROMETHEUS: thanos.prometheus.replicas, jobs.SIDECAR: thanos.prometheus.replicas,
           jobs.QUERY: thanos.query.replicas, jobs.QUERY_FRONTEND: thanos.query_frontend.replicas,
           jobs.STORE: thanos.store.replicas, jobs.RULER: thanos.ruler.replicas,
           jobs.RECEIVE: stack.ingestors(),
           jobs.RECEIVE_ROUTER: thanos.receive.router_replicas,
           jobs.COMPACTOR: 1, jobs.BUCKET_WEB: 1, jobs.ALERTMANAGER: stack.observability.alertmanager.replicas,
           pool_name("index"): caches.index.replicas, pool_name("bucket"): caches.bucket.replicas,
           pool_name("query-results"): caches.query_results.replicas,
           jobs.TEAM_RULER: thanos.ruler.team_rules.replicas * team_rulers}
    tier = {jobs.QUERY: view.query.replicas, jobs.QUERY_FRONTEND: view.query_frontend.replicas,
            jobs.RULER: view.ruler.replicas, pool_name("query-results"): view.cache.replicas} if view else {}
    tier_only = {QUERY_TENANTS_PODS: stack.tenancy.query.replicas,
                 QUERY_RULES_PODS: view.ruler.query.replicas if view else 0}
    planned = {}
    for scrape in [ScrapeJob(jobs.PROMETHEUS, (PROMETHEUS_NAME,), "web"), *scraped]:
        for where, replicas in ((namespace, own), *((other, tier) for other in scrape.namespaces)):
            for service in scrape.services:
                planned[(scrape.job, where, service)] = replicas[scrape.job]
        for other in scrape.namespaces:
            for service in scrape.tier_services:
                planned[(scrape.job, other, service)] = tier_only[service]
    return planned

