"""Limits on what writers and scraped workloads may send: a receive router with write limits, and a Prometheus that
scrapes workloads with a per-target sample limit, so one writer's cardinality burst or one pod exposing millions of
series fails alone instead of exhausting the ingestors or the cluster's Prometheus."""

from typing import Any

from ._register import resource_policy, stack_policy
from ._workloads import (PROMETHEUS_CR, WORKLOAD_TYPES, Stack, Unknown, fix, flag, parsed, secret_text,
                         thanos_containers)

CONFIG_KINDS = ("kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:Secret")
WORKLOAD_ROLES = ("pod", "endpoints", "endpointslice", "service")
"""kubernetes_sd roles whose targets are pods: over every namespace, whatever anyone deploys there."""
MONITOR_KINDS = ("serviceMonitor", "podMonitor", "scrapeConfig")


def _limits_document(stack: Stack, owner: Any, container: dict, flags: list[str]) -> Any:
    """The parsed limits config of a receive container (inline or a mounted file); None when not shown."""
    for text in flag(flags, "receive.limits-config"):
        return parsed(text)
    for path in flag(flags, "receive.limits-config-file"):
        for resource, kind, key in stack.mounted(owner, container, path):
            found = secret_text(resource.props, key, kind == "ConfigMap") if resource else None
            return None if found is None or isinstance(found, Unknown) else parsed(found)
    return None


def _any_limit(write: dict) -> bool:
    """A non-zero limit anywhere in a limits config's `write` section."""
    def entry(limits: Any) -> bool:
        if not isinstance(limits, dict):
            return False
        request = limits.get("request") or {}
        return bool(limits.get("head_series_limit")) or any(request.get(k) for k in (
            "size_bytes_limit", "series_limit", "samples_limit"))
    tenants = write.get("tenants") or {}
    return entry(write.get("default")) or any(entry(t) for t in tenants.values()) or \
        bool((write.get("global") or {}).get("max_concurrency"))


def validate_receive_limits(args, report):
    """Refuses a receive router (hashring given: RouterOnly or RouterIngestor) without write limits, or whose
    head-series limits can never apply: one writer's cardinality burst reaches every ingestor it hashes to."""
    stack = Stack(args.resources)
    for r in args.resources:
        if r.resource_type not in WORKLOAD_TYPES:
            continue
        name = (r.props.get("metadata") or {}).get("name")
        for c, command, flags in thanos_containers(r.props):
            if command != "receive" or not (flag(flags, "receive.hashrings") or flag(flags, "receive.hashrings-file")):
                continue
            if not (flag(flags, "receive.limits-config") or flag(flags, "receive.limits-config-file")):
                report(f"{name}: the receive router sets no --receive.limits-config-file: a writer's burst of series "
                       f"or an oversized request reaches every ingestor{fix('thanos.receive.limits')}.", r.urn)
                continue
            document = _limits_document(stack, r, c, flags)
            write = document.get("write") if isinstance(document, dict) else None
            if not isinstance(write, dict):
                continue  # not shown (or computed at apply): judged where it is
            if not _any_limit(write):
                report(f"{name}: the receive router's limits config sets no limit (0 or absent means none)"
                       f"{fix('thanos.receive.limits')}.", r.urn)
            heads = [(write.get("default") or {}).get("head_series_limit"),
                     *((t or {}).get("head_series_limit") for t in (write.get("tenants") or {}).values())]
            if any(heads) and not (write.get("global") or {}).get("meta_monitoring_url"):
                report(f"{name}: the receive router's head-series limits need write.global.meta_monitoring_url "
                       "(a Prometheus that scrapes the ingestors): without it they never apply.", r.urn)


def _workload_jobs(document: Any) -> tuple[list[dict], dict]:
    """(scrape configs, global section) of a prometheus.yml, or of a list of scrape configs (prometheus-operator's
    additionalScrapeConfigs)."""
    if isinstance(document, dict) and isinstance(document.get("scrape_configs"), list):
        return [j for j in document["scrape_configs"] if isinstance(j, dict)], document.get("global") or {}
    if isinstance(document, list) and document and all(isinstance(j, dict) and "job_name" in j for j in document):
        return document, {}
    return [], {}


def _scrapes_workloads(job: dict) -> bool:
    """A job discovering pods through the Kubernetes API in every namespace (no `namespaces.names`)."""
    return any(isinstance(sd, dict) and sd.get("role") in WORKLOAD_ROLES and not (sd.get("namespaces") or {}).get("names")
               for sd in job.get("kubernetes_sd_configs") or [])


def validate_scrape_limits(args, report):
    """Refuses a Prometheus config that scrapes workloads of every namespace without a sample limit per target, and
    a Prometheus resource that takes monitors from other namespaces without `enforcedSampleLimit`: one annotated pod
    exposing millions of series exhausts Prometheus and stops every scrape and upload of the cluster."""
    name = (args.props.get("metadata") or {}).get("name")
    if args.resource_type == PROMETHEUS_CR:
        spec = args.props.get("spec") or {}
        own = {"matchLabels": {"kubernetes.io/metadata.name": (args.props.get("metadata") or {}).get("namespace")}}
        foreign = [k for k in MONITOR_KINDS if spec.get(f"{k}Selector") is not None
                   and spec.get(f"{k}NamespaceSelector") not in (None, own)]
        if foreign and not spec.get("enforcedSampleLimit"):
            report(f"{name}: Prometheus takes {', '.join(k + 's' for k in foreign)} from other namespaces without "
                   "spec.enforcedSampleLimit: one target with millions of series exhausts it.")
        return
    if args.resource_type not in CONFIG_KINDS:
        return
    config_map = args.resource_type.endswith(":ConfigMap")
    keys = {*((args.props.get("data") or {}).keys()), *((args.props.get("stringData") or {}).keys())}
    for key in sorted(keys):
        text = secret_text(args.props, key, config_map)
        jobs, global_ = _workload_jobs(parsed(text) if isinstance(text, str) else None)
        for job in jobs:
            if _scrapes_workloads(job) and not (job.get("sample_limit") or global_.get("sample_limit")):
                report(f"{name} ({key}): scrape job {job.get('job_name')!r} scrapes pods of every namespace without "
                       "sample_limit: one target with millions of series exhausts Prometheus"
                       f"{fix('observability.collection.scrape-limits.sample-limit')}.")


POLICIES = [
    stack_policy("thanos-limits-receive", "A receive router has write limits (--receive.limits-config-file), and its "
                 "head-series limits a meta-monitoring URL to apply.", validate_receive_limits),
    resource_policy("thanos-limits-scrape", "A Prometheus that scrapes workloads of every namespace holds each "
                    "target to a sample limit (sample_limit, or enforcedSampleLimit on a Prometheus resource).",
                    validate_scrape_limits),
]
