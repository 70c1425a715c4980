"""Wiring: the addresses Thanos components dial name Services that exist, and copies go somewhere else."""

import re

import yaml
from pulumi_policy import EnforcementLevel, StackValidationPolicy

from .workloads import (WORKLOAD_TYPES, Stack, bucket_name, deduplicated, flag, provider_of, thanos_containers,
                        workload_containers)

ADDRESS_FLAGS = ("endpoint", "endpoint-strict", "endpoint-group", "endpoint-group-strict", "store",
                 "query-frontend.downstream-url", "query")
CACHE_FLAGS = ("index-cache.config", "store.caching-bucket.config", "query-range.response-cache-config",
               "labels.response-cache-config")
_PLACEHOLDER = re.compile(r"<[^>]*>|\{\{|\$\{|CHANGE_?ME|REPLACE_?ME", re.IGNORECASE)
_SCHEME = re.compile(r"^(dnssrvnoa\+|dnssrv\+|dns\+)?([a-z]+://)?(_[a-z0-9-]+\._tcp\.)?", re.IGNORECASE)


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


def service_of(address: str) -> tuple[str, str] | None:
    """(namespace, Service) of an in-cluster DNS address (`name.ns.svc[.cluster.local]`, SRV and pod forms too)."""
    host = _SCHEME.sub("", address).split("/", 1)[0].rsplit(":", 1)[0]
    labels = host.split(".")
    if "svc" not in labels:
        return None
    i = labels.index("svc")
    return (labels[i - 1], labels[i - 2]) if i >= 2 else None


def validate_references(args, report):
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


def validate_preview_coverage(args, report):
    stack = Stack(args.resources)
    for r, name, c, command, flags in workload_containers(args.resources):
        for prefix in ("objstore", "objstore-to"):
            where = stack.objstore_unknown(r, c, flags, prefix)
            if where:
                report(f"{name}: the {prefix} config of thanos {command} ({where}) is computed at apply: "
                       f"its bucket is judged at `pulumi up` ({', '.join(BUCKET_RULES)}).", r.urn)


BUCKET_RULES = ("thanos-compactor-one-per-bucket", "thanos-producers-external-labels", "thanos-wiring-references")
"""The rules that read a workload's bucket from its objstore config."""

POLICIES = [
    StackValidationPolicy(
        name="thanos-preview-coverage", enforcement_level=EnforcementLevel.MANDATORY,
        description="A preview sees every objstore config: one computed at apply (generated credentials) hides its "
                    "bucket from the bucket rules until `pulumi up`.",
        validate=deduplicated(validate_preview_coverage)),
    StackValidationPolicy(
        name="thanos-wiring-references", enforcement_level=EnforcementLevel.MANDATORY,
        description="Thanos dials Services the stack declares (no unfilled placeholders); replicate copies elsewhere.",
        validate=deduplicated(validate_references)),
]

