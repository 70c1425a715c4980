"""Wiring: the addresses Thanos components dial name Services that exist, a store gateway's caches resolve without a
ready cache pod, and copies go somewhere else."""

import re

import yaml

from ._addresses import DISCOVERED, _in_cluster, declared_service, service_of
from ._register import stack_policy
from ._workloads import (WORKLOAD_TYPES, Stack, bucket_name, flag, parsed, provider_of, secret_text, thanos_containers,
                         workload_containers)


ADDRESS_FLAGS = ("endpoint", "endpoint-strict", "endpoint-group", "endpoint-group-strict", "store",
                 "query-frontend.downstream-url", "query")
CACHE_FLAGS = ("index-cache.config", "store.caching-bucket.config", "query-range.response-cache-config",
               "labels.response-cache-config")
_PLACEHOLDER = re.compile(r"<[^>]*>|\{\{|\$\{|CHANGE_?ME|REPLACE_?ME", re.IGNORECASE)


STORE_CACHE_FLAGS = ("index-cache.config", "store.caching-bucket.config")
"""The store gateway's caches: both build their memcached client at start (cmd/thanos/store.go)."""


def _parsed(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def addresses(flags: list[str]) -> list[str]:
    """Every address a Thanos container dials: endpoints, SD config entries, downstreams, cache servers."""
    found = [a for name in ADDRESS_FLAGS for value in flag(flags, name) for a in value.split(",")]
    for value in flag(flags, "endpoint.sd-config"):
        document = _parsed(value)
        if isinstance(document, dict):
            found += [e.get("address", "") for e in document.get("endpoints") or [] if isinstance(e, dict)]
    for name in CACHE_FLAGS:
        for value in flag(flags, name):
            document = _parsed(value)
            config = (document or {}).get("config") if isinstance(document, dict) else None
            if isinstance(config, dict):
                found += [a for a in config.get("addresses") or [] if isinstance(a, str)]
    return [a.strip() for a in found if a and a.strip()]


def _waits_for_a_ready_pod(stack: Stack, store, address: str) -> bool:
    """A DNS-discovered in-cluster address that answers nothing while no pod behind it is ready: one over a headless
    Service, or a Service the stack does not show (cache discovery runs over headless ones). A ClusterIP Service's
    name always resolves to its virtual IP; a name outside the cluster is not judged."""
    if not DISCOVERED.match(address.strip()) or _in_cluster(store, address) is None:
        return False
    service = declared_service(stack, store, address)
    return service is None or (service.props.get("spec") or {}).get("clusterIP") == "None"


def _store_caches(stack: Stack, store, container: dict, flags: list[str]) -> list[tuple[str, dict]]:
    """(flag, parsed config) of a store gateway's caches, inline or from a mounted ConfigMap or Secret."""
    found = []
    for name in STORE_CACHE_FLAGS:
        texts = flag(flags, name) + [secret_text(r.props, key, kind == "ConfigMap") for path in flag(flags, f"{name}-file")
                                     for r, kind, key in stack.mounted(store, container, path) if r is not None]
        found += [(name, d) for d in map(parsed, texts) if isinstance(d, dict)]
    return found


def validate_store_cache_resolves(args, report):
    """Thanos' memcached client resolves its addresses when it is created and fails when none resolves (`no server
    address resolved`, pkg/cacheutil/memcached_client.go); the store gateway creates its index cache and caching
    bucket at start, so it exits. DNS discovery over a headless Service answers nothing while no cache pod is ready
    (first deploy, a cache rollout or crash): the cache, an optimisation, becomes a condition for the store to start.
    The query-frontend's cache client only logs; Redis is dialled at start whatever its address, so no address form
    helps and it is not judged here."""
    stack = Stack(args.resources)
    for r, name, c, command, flags in workload_containers(args.resources):
        if command != "store":
            continue
        for option, document in _store_caches(stack, r, c, flags):
            config: dict = document["config"] if isinstance(document.get("config"), dict) else {}
            listed = [a for a in config.get("addresses") or [] if isinstance(a, str)]
            if str(document.get("type") or "").upper() != "MEMCACHED" or config.get("auto_discovery") or not listed:
                continue
            if all(_waits_for_a_ready_pod(stack, r, a) for a in listed):
                report(f"{name}: the store gateway's --{option} lists only {', '.join(listed)}: DNS discovery over a "
                       "headless Service, which answers nothing while no cache pod is ready (first deploy, a cache "
                       "rollout or crash), and the store's memcached client exits at start when no address resolves "
                       "(`no server address resolved`), so the store gateway cannot start without a ready cache pod. "
                       "List addresses that always resolve: one ClusterIP Service per memcached pod "
                       "(name-0.namespace.svc:11211).", r.urn)


def validate_references(args, report):
    """Refuses Thanos dialling a placeholder or a Service the stack does not declare, and a bucket replicated onto itself."""
    stack = Stack(args.resources)
    for r in args.resources:
        if r.resource_type not in WORKLOAD_TYPES:
            continue
        name = (r.props.get("metadata") or {}).get("name")
        for c, command, flags in thanos_containers(r.props):
            for address in addresses(flags):
                if _PLACEHOLDER.search(address):
                    report(f"{name}: thanos {command} dials {address}, an unfilled placeholder.", r.urn)
                    continue
                target = service_of(address)
                # Judged only where the stack shows that namespace's Services (a chart's may be invisible to it).
                if target and stack.services_in(provider_of(r), target[0]) \
                        and target[1] not in stack.services_in(provider_of(r), target[0]):
                    report(f"{name}: thanos {command} dials {address}, but the stack declares no Service "
                           f"{target[1]} in namespace {target[0]}.", r.urn)
            if command == "tools bucket replicate":
                source = bucket_name(stack.objstore(r, c, flags)[0])
                target_bucket = bucket_name(stack.objstore(r, c, flags, prefix="objstore-to")[0])
                if source and source == target_bucket:
                    report(f"{name}: tools bucket replicate copies {source} onto itself.", r.urn)


POLICIES = [
    stack_policy("thanos-wiring-references", "Thanos dials Services the stack declares (no unfilled placeholders); "
                 "replicate copies elsewhere.", validate_references),
    stack_policy("thanos-wiring-store-cache-resolves", "A store gateway's memcached caches list an address that resolves "
                 "without a ready cache pod: Thanos exits at start when none resolves.", validate_store_cache_resolves),
]
