"""Queries: a query deduplicates on every replica label it can see and never on an identity label, with the function
each kind of replica needs, and its answer is complete or says it is not. A non-strict StoreAPI endpoint that fails
its health check is dropped from the endpoint set, and the query answers success without its data and without a
warning (measured with v0.42.4); receive copies and Prometheus HA pairs each need their own deduplication function."""

import yaml

from ._addresses import declared_service
from ._labels import _producer_replica_labels, _replica_label_sources
from ._register import stack_policy
from ._rules import PROMETHEUS_RULE_CR, _files, _mounted, _selected
from ._workloads import (THANOS_RULER_CR, WORKLOAD_TYPES, Stack, _pod_labels, _selects, flag, namespace_of, parsed,
                         plain, provider_of, secret_text, thanos_containers, workload_containers)


IDENTITY_LABELS = {"cluster", "region"}


def _sd_addresses(flags: list[str]) -> list[str]:
    addresses = []
    for text in flag(flags, "endpoint.sd-config"):
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        addresses += [e.get("address", "") for e in (document or {}).get("endpoints") or [] if isinstance(e, dict)]
    return addresses + flag(flags, "endpoint")


def _stacked(flags: list[str]) -> bool:
    """A query that dials outside its cluster (a DNS name or address that is not a `.svc` name): a global query over
    other clusters' queries."""
    for address in _sd_addresses(flags):
        host = address.split("+", 1)[-1].rsplit(":", 1)[0] if "+" in address else address.rsplit(":", 1)[0]
        if "." in host.rstrip(".") and ".svc" not in host:
            return True
    return False


def _identity_labels(resources) -> set[str]:
    """Labels that tell producers apart: cluster and region, and every constant external label of a producer."""
    labels = set(IDENTITY_LABELS)
    for r in resources:
        for _, command, flags in thanos_containers(r.props) if r.resource_type in WORKLOAD_TYPES else ():
            if command in ("rule", "receive"):
                labels |= {v.split("=", 1)[0] for v in flag(flags, "label") if "$(" not in v}
    return labels


def validate_query_dedup(args, report):
    """Refuses a query deduplicating on an identity label, or stacked and missing a replica label: wrong or doubled series."""
    replica = set().union(*(_producer_replica_labels(r) for r in args.resources)) if args.resources else set()
    identity = _identity_labels(args.resources) - replica
    for r in args.resources:
        if r.resource_type not in WORKLOAD_TYPES:
            continue
        for _, command, flags in thanos_containers(r.props):
            if command != "query":
                continue
            labels = set(flag(flags, "query.replica-label"))
            wrong = sorted(labels & identity)
            if wrong:
                report(f"query deduplicates on {', '.join(wrong)}, which tells clusters or producers apart: their "
                       "different series would be merged into one. Remove it from --query.replica-label.", r.urn)
            missing = sorted(replica - labels)
            if _stacked(flags) and missing:
                report(f"query over other clusters does not deduplicate on {', '.join(missing)}: a stacked query does "
                       "not deduplicate for the one above it, so the global view shows every replica. Add "
                       "--query.replica-label for each.", r.urn)


LOOSE_FLAGS = ("endpoint", "endpoint-group", "store")
"""Query flags whose endpoints are never strict (--store: before v0.38); --endpoint-strict and
--endpoint-group-strict are."""
RESULTS_CACHE_FLAGS = ("query-range.response-cache-config", "labels.response-cache-config")
FIX = ("List each StoreAPI by its static per-pod address with strict: true (--endpoint.sd-config), so a dead one "
       "stays in the set and the answer warns.")


def _configs(stack: Stack, owner, container: dict, flags: list[str], name: str) -> list:
    """The parsed `--<name>` and `--<name>-file` configs of a container (a file from a mounted ConfigMap or Secret)."""
    texts = flag(flags, name) + [secret_text(r.props, key, kind == "ConfigMap") for path in flag(flags, f"{name}-file")
                                 for r, kind, key in stack.mounted(owner, container, path) if r is not None]
    return [parsed(t) for t in texts]


def _loose_endpoints(stack: Stack, query, container: dict, flags: list[str]) -> list[str]:
    """The StoreAPI endpoints of a query that are not strict: sd-config entries without `strict: true` (a DNS-discovered
    address cannot be strict), --endpoint, --endpoint-group and --store, file SD."""
    loose = [a for name in LOOSE_FLAGS for value in flag(flags, name) for a in value.split(",")]
    for document in _configs(stack, query, container, flags, "endpoint.sd-config"):
        entries = document.get("endpoints") if isinstance(document, dict) else None
        loose += [e.get("address") or "" for e in entries or [] if isinstance(e, dict) and e.get("strict") is not True]
    loose += [f"file SD {f}" for value in flag(flags, "store.sd-files") for f in value.split(",")]
    return [a.strip() for a in loose if a.strip()]


def _behind(stack: Stack, client, address: str) -> list:
    """The workloads whose pods the Service an address of a client names selects."""
    service = declared_service(stack, client, address)
    if service is None:
        return []
    selector = (service.props.get("spec") or {}).get("selector") or {}
    return [r for r in stack.resources if r.resource_type in WORKLOAD_TYPES and provider_of(r) == provider_of(service)
            and namespace_of(r) == namespace_of(service) and _selects(selector, _pod_labels(r))]


def _queries(stack: Stack, client, address: str, through_frontends: bool = True) -> list:
    """(query workload, container, flags) that answer an address: a query behind it, or the downstream query of a
    query-frontend behind it."""
    found = []
    for r in _behind(stack, client, address):
        for c, command, flags in thanos_containers(r.props):
            if command == "query":
                found.append((r, c, flags))
            elif command == "query-frontend" and through_frontends:
                found += [q for url in flag(flags, "query-frontend.downstream-url") for q in _queries(stack, r, url, False)]
    return found


def _query_config_addresses(document) -> list[str]:
    """The static HTTP and gRPC addresses of a ruler's --query.config (a list of client configs)."""
    found = []
    for entry in document if isinstance(document, list) else []:
        if isinstance(entry, dict):
            found += [a for a in entry.get("static_configs") or [] if isinstance(a, str)]
            found += [a for a in (entry.get("grpc_config") or {}).get("endpoint_addresses") or [] if isinstance(a, str)]
    return found


def _aborting(groups) -> list[str]:
    """Names of the rule groups that abort on a partial response (Thanos' default for a group that names none)."""
    return [str(g.get("name")) for g in groups or [] if isinstance(g, dict)
            and str(g.get("partial_response_strategy") or "abort").lower() == "abort"]


def rulers(stack: Stack):
    """(what, ruler resource, query addresses, aborting group names) of every ruler whose rule groups the stack
    shows: Thanos rule containers (rule files from mounted ConfigMaps and Secrets) and ThanosRuler resources (the
    PrometheusRules their ruleSelector picks)."""
    for r, name, c, command, flags in workload_containers(stack.resources):
        if command != "rule":
            continue
        addresses = [a for option in ("query", "grpc-query-endpoint") for v in flag(flags, option) for a in v.split(",")]
        addresses += [a for d in _configs(stack, r, c, flags, "query.config") for a in _query_config_addresses(d)]
        documents = [d for m in _mounted(stack, r, c, flag(flags, "rule-file")) for d in _files(m)]
        groups = [g for d in documents if isinstance(d, dict) for g in _aborting(d.get("groups"))]
        yield f"thanos rule {name}", r, [a.strip() for a in addresses if a.strip()], groups
    for r in stack.resources:
        if r.resource_type != THANOS_RULER_CR:
            continue
        spec = plain(r.props.get("spec") or {})
        addresses = list(spec.get("queryEndpoints") or [])
        ref = spec.get("queryConfig") or {}
        secret = stack.get(r, "Secret", ref.get("name") or "") if ref else None
        if secret is not None:
            addresses += _query_config_addresses(parsed(secret_text(secret.props, ref.get("key") or "")))
        picked = [p for p in stack.resources if p.resource_type == PROMETHEUS_RULE_CR and provider_of(p) == provider_of(r)
                  and _selected(spec.get("ruleSelector"), plain((p.props.get("metadata") or {}).get("labels") or {}))]
        groups = [g for p in picked for g in _aborting(plain((p.props.get("spec") or {}).get("groups")))]
        yield f"ThanosRuler {(r.props.get('metadata') or {}).get('name')}", r, addresses, groups


def _shown(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def validate_strict_endpoints(args, report):
    """A query drops a non-strict StoreAPI endpoint that fails its health check (pkg/query/endpointset.go) and then
    answers success without its data and without a warning; partial-response handling never sees it. So a ruler
    group with `partial_response_strategy: abort` (the default) evaluates on the incomplete answer instead of
    aborting, and a query-frontend with a results cache, which refuses to cache only warned answers, keeps the
    incomplete one until it expires, after the store is back. Both present a wrong answer as right: mandatory. (A
    query nobody reads that way shows the hole only while the store is down; it is not judged.)"""
    stack = Stack(args.resources)
    for what, ruler, addresses, groups in rulers(stack):
        if not groups:
            continue
        for query, c, flags in (q for a in addresses for q in _queries(stack, ruler, a)):
            loose = _loose_endpoints(stack, query, c, flags)
            if loose:
                report(f"{(query.props.get('metadata') or {}).get('name')}: its StoreAPI endpoint(s) {_shown(loose, 5)} "
                       f"are not strict, and {what} evaluates groups with partial_response_strategy abort "
                       f"({_shown(groups)}) on its answers: a non-strict endpoint that fails its health check is "
                       "dropped without a warning, so the query answers success without that data and those groups "
                       f"evaluate on it instead of aborting. {FIX}", query.urn)
    for frontend, name, _, command, flags in workload_containers(args.resources):
        cached = [option for option in RESULTS_CACHE_FLAGS if flag(flags, option) or flag(flags, f"{option}-file")]
        if command != "query-frontend" or not cached:
            continue
        for query, qc, qflags in (q for url in flag(flags, "query-frontend.downstream-url")
                                  for q in _queries(stack, frontend, url)):
            loose = _loose_endpoints(stack, query, qc, qflags)
            if loose:
                report(f"{(query.props.get('metadata') or {}).get('name')}: its StoreAPI endpoint(s) {_shown(loose, 5)} "
                       f"are not strict, and thanos query-frontend {name} caches its answers (--{cached[0]}): a "
                       "non-strict endpoint that fails its health check is dropped without a warning, so the query "
                       "answers success without that data, and the frontend caches the incomplete answer (it refuses "
                       f"only warned ones) and serves it after the store is back, until the entry expires. {FIX}",
                       query.urn)


def validate_dedup_func(args, report):
    """Receive copies of a series carry identical timestamps; penalty (the default --deduplication.func) skips the
    other copy for a while after a switch, so it drops about two samples of every series whenever the copy it
    follows goes away (an ingestor restart): Thanos' docs (components/query.md) say chain for receivers. chain merges
    copies sample by sample, which interleaves Prometheus HA pairs and rulers (their own clocks): a counter seems to
    reset at every switch. A label no producer of the stack stamps counts as a Prometheus one (deployed elsewhere)."""
    sources = _replica_label_sources(args.resources)
    for r, name, _, command, flags in workload_containers(args.resources):
        labels = sorted({x.strip() for v in flag(flags, "query.replica-label") for x in v.split(",")} - {""})
        if command != "query" or not labels:
            continue
        function = (flag(flags, "deduplication.func") or ["penalty"])[-1]
        receive_only = all(sources.get(label) == {"receive"} for label in labels)
        if function == "penalty" and receive_only:
            report(f"{name}: query deduplicates only receive replicas ({', '.join(labels)}) with the penalty function "
                   "(the default --deduplication.func): receive copies carry identical timestamps, and penalty drops "
                   "about two samples of every series whenever the copy it follows goes away (an ingestor restart); "
                   "set --deduplication.func=chain.", r.urn)
        others = [label for label in labels if sources.get(label, {"other"}) != {"receive"}]
        if function == "chain" and others:
            report(f"{name}: query deduplicates {', '.join(others)} with --deduplication.func=chain: Prometheus HA "
                   "replicas and rulers scrape and evaluate on their own clocks, so chain interleaves both copies' "
                   "samples (a counter seems to reset at every switch); use penalty, and give receive replicas a query "
                   "of their own if they need chain.", r.urn)


def _distributed(flags: list[str]) -> bool:
    return (flag(flags, "query.mode") or ["local"])[-1] == "distributed"


def validate_distributed_engine(args, report):
    """Refuses a query with --query.mode=distributed and --query.promql-engine=prometheus: Thanos v0.42.4 runs
    distributed mode on its own engine whatever the flag says (cmd/thanos/query.go), so the workload states an engine
    that is not the one answering; whoever reads it to judge a wrong answer or a panic looks at the wrong engine."""
    for r, name, _, command, flags in workload_containers(args.resources):
        if command == "query" and _distributed(flags) and (flag(flags, "query.promql-engine") or [""])[-1] == "prometheus":
            report(f"{name}: query runs --query.mode=distributed with --query.promql-engine=prometheus, but distributed "
                   "mode runs only on the Thanos engine and Thanos switches to it silently: set "
                   "--query.promql-engine=thanos.", r.urn)


def _endpoint_addresses(stack: Stack, query, container: dict, flags: list[str]) -> list[str]:
    """Every StoreAPI address a query dials: sd-config entries (inline or mounted), --endpoint, --endpoint-strict and
    --store."""
    addresses = [a for name in ("endpoint", "endpoint-strict", "store") for value in flag(flags, name)
                 for a in value.split(",")]
    for document in _configs(stack, query, container, flags, "endpoint.sd-config"):
        entries = document.get("endpoints") if isinstance(document, dict) else None
        addresses += [e.get("address") or "" for e in entries or [] if isinstance(e, dict)]
    return [a.strip() for a in addresses if a.strip()]


def validate_distributed_endpoints(args, report):
    """Refuses a distributed query connected directly to a workload of the stack that serves no Query API (a ruler,
    store, sidecar or receiver): distributed mode sends its fragments only to endpoints serving the Query API, which
    only `thanos query` does (pkg/query/endpointset.go, GetQueryAPIClients), so that workload's series are missing
    from every answer, with no warning. Only addresses naming a Service the stack declares are judged."""
    stack = Stack(args.resources)
    for query, name, c, command, flags in workload_containers(args.resources):
        if command != "query" or not _distributed(flags):
            continue
        skipped = []
        for address in _endpoint_addresses(stack, query, c, flags):
            served = {what for w in _behind(stack, query, address) for _, what, _ in thanos_containers(w.props)}
            if served and "query" not in served:
                skipped.append(f"{address} ({', '.join(sorted(served))})")
        if skipped:
            report(f"{name}: query runs --query.mode=distributed but lists endpoint(s) that serve no Query API: "
                   f"{_shown(skipped, 5)}. Distributed mode queries only endpoints serving the Query API (thanos "
                   "query), so their series are missing from every answer without a warning; put a query in front of "
                   "them and list that, or use --query.mode=local.", query.urn)


def _constant_label_names(flags: list[str]) -> set[str]:
    """The names of a ruler's or receiver's constant external labels (`--label`; a per-pod replica label aside)."""
    return {v.split("=", 1)[0] for v in flag(flags, "label") if "$(" not in v}


def validate_distributed_partitions(args, report):
    """Refuses a distributed query whose leaf query reads a ruler or receiver carrying none of its partition labels:
    that producer's series sit in no partition (promql-engine's DistributedExecutionOptimizer builds each remote
    engine's partition from these labels alone), so a join on the partition labels (`on (cluster)`) is pushed down
    whole to every leaf, each answers it over its own half, and the answer misses every match across them."""
    stack = Stack(args.resources)
    for query, name, c, command, flags in workload_containers(args.resources):
        partition = set(flag(flags, "query.partition-label"))
        if command != "query" or not _distributed(flags) or not partition:  # none: Thanos partitions on every label
            continue
        outside = []
        for address in _endpoint_addresses(stack, query, c, flags):
            for leaf, leaf_container, leaf_flags in _queries(stack, query, address, through_frontends=False):
                for inner in _endpoint_addresses(stack, leaf, leaf_container, leaf_flags):
                    for producer in _behind(stack, leaf, inner):
                        labels = set().union(*(_constant_label_names(f) for _, what, f in thanos_containers(producer.props)
                                               if what in ("rule", "receive")))
                        if labels and not labels & partition:
                            outside.append(f"{inner} through {address} (labels {', '.join(sorted(labels))})")
        if outside:
            report(f"{name}: query runs --query.mode=distributed with --query.partition-label "
                   f"{', '.join(sorted(partition))}, but reads producers that carry none of them: {_shown(outside, 3)}. "
                   "Their series sit in no partition, so a join on the partition labels is answered by each leaf "
                   "alone and misses them; add a --query.partition-label those producers carry.", query.urn)


POLICIES = [
    stack_policy("thanos-query-dedup-labels", "Every query deduplicates on every replica label it can see, never on an "
                 "identity label.", validate_query_dedup),
    stack_policy("thanos-query-strict-endpoints", "A query that a ruler's aborting groups or a caching query-frontend read "
                 "lists every StoreAPI strict: a dropped endpoint would make its answer silently incomplete.",
                 validate_strict_endpoints),
    stack_policy("thanos-query-dedup-func", "A query deduplicates receive replicas alone with --deduplication.func=chain, "
                 "and Prometheus or ruler replicas with penalty.", validate_dedup_func),
    stack_policy("thanos-query-distributed-engine", "A query in distributed mode does not claim the Prometheus engine: "
                 "Thanos runs it on its own engine.", validate_distributed_engine),
    stack_policy("thanos-query-distributed-endpoints", "A query in distributed mode lists no store-only endpoint of the "
                 "stack directly: distributed mode reads only endpoints serving the Query API.",
                 validate_distributed_endpoints),
    stack_policy("thanos-query-distributed-partitions", "A query in distributed mode has a partition label on every "
                 "ruler and receiver its leaves read: a producer outside every partition is missed by joins.",
                 validate_distributed_partitions),
]
