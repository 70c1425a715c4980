"""Alerting: rulers and Prometheus send their alerts to an Alertmanager that exists, and receiver credentials stay in
Secrets. Read the same way for this project's objects, kube-thanos, the Helm charts and prometheus-operator CRs."""

import re
from typing import Any, Iterator

from ._addresses import service_of
from ._register import stack_policy
from ._rules import PROMETHEUS_RULE_CR, _files, _mounted, _selected
from ._workloads import (PROMETHEUS_CR, THANOS_RULER_CR, WORKLOAD_TYPES, Stack, containers, flag, namespace_of, parsed,
                         plain, provider_of, thanos_containers)


# Receiver fields that carry a credential (Alertmanager configuration reference); their *_file forms read a mounted
# Secret and are fine.
CREDENTIAL_KEYS = ("api_url", "routing_key", "service_key", "auth_password", "auth_secret", "api_key", "bot_token",
                   "token", "user_key", "api_secret", "webhook_url", "password", "bearer_token", "credentials",
                   "secret_key")
_URL_SECRET = re.compile(r"//[^/@\s]+:[^/@\s]+@|[?&](token|key|secret|sig|signature|auth)=", re.IGNORECASE)


def _has_alerts(document: Any) -> bool:
    groups = document.get("groups") if isinstance(document, dict) else None
    return any(isinstance(rule, dict) and rule.get("alert") for group in groups or [] if isinstance(group, dict)
               for rule in group.get("rules") or [])


def _ruler_targets(flags: list[str]) -> list[str]:
    """Alertmanager addresses of a Thanos ruler: --alertmanagers.url and the static entries of --alertmanagers.config."""
    found = [a for value in flag(flags, "alertmanagers.url") for a in value.split(",")]
    for value in flag(flags, "alertmanagers.config"):
        document = parsed(value)
        for entry in (document or {}).get("alertmanagers") or [] if isinstance(document, dict) else []:
            scheme = entry.get("scheme", "http") if isinstance(entry, dict) else "http"
            for target in (entry.get("static_configs") or []) if isinstance(entry, dict) else []:
                if isinstance(target, str):
                    discovery, _, host = target.rpartition("+")
                    found.append(f"{discovery + '+' if discovery else ''}{scheme}://{host}")
    return [a.strip() for a in found if a.strip()]


def _prometheus_targets(config: dict) -> list[str]:
    """Alertmanager addresses of a prometheus.yml (static targets and DNS names)."""
    found = []
    for entry in (config.get("alerting") or {}).get("alertmanagers") or []:
        for static in entry.get("static_configs") or []:
            found += [f"http://{t}" for t in static.get("targets") or []]
        for dns in entry.get("dns_sd_configs") or []:
            found += [f"dnssrv+http://{n}" for n in dns.get("names") or []]
    return found


def senders(stack: Stack) -> Iterator[tuple[Any, str, list[str], list[tuple[str, str]], bool, str]]:
    """(resource, what, addresses, (namespace, Service) pairs named directly, has alerting rules, how to fix) of
    every ruler and Prometheus the stack shows."""
    for r in stack.resources:
        name = (r.props.get("metadata") or {}).get("name")
        spec = plain(r.props.get("spec") or {})
        if r.resource_type in WORKLOAD_TYPES:
            for c, command, flags in thanos_containers(r.props):
                if command == "rule":
                    rules = [d for m in _mounted(stack, r, c, flag(flags, "rule-file")) for d in _files(m)]
                    yield (r, f"{name}: thanos rule", _ruler_targets(flags), [],
                           any(_has_alerts(d) for d in rules), "set --alertmanagers.url or --alertmanagers.config")
            for c in containers(r.props):
                configs = [d for m in _mounted(stack, r, c, [a.split("=", 1)[1] for a in c.get("args") or []
                                                           if a.startswith("--config.file=")]) for d in _files(m)]
                for config in (d for d in configs if isinstance(d, dict) and "scrape_configs" in d):
                    rules = [d for m in _mounted(stack, r, c, config.get("rule_files") or []) for d in _files(m)]
                    yield (r, f"{name}: Prometheus", _prometheus_targets(config), [],
                           any(_has_alerts(d) for d in rules), "add alerting.alertmanagers to prometheus.yml")
        elif r.resource_type in (PROMETHEUS_CR, THANOS_RULER_CR):
            rules = [p for p in stack.resources if p.resource_type == PROMETHEUS_RULE_CR
                     and provider_of(p) == provider_of(r)
                     and _selected(spec.get("ruleSelector"), plain((p.props.get("metadata") or {}).get("labels") or {}))]
            alerts = any(_has_alerts(plain(p.props.get("spec"))) for p in rules)
            if r.resource_type == PROMETHEUS_CR:
                pairs = [(a.get("namespace") or namespace_of(r), a.get("name")) for a in
                         (spec.get("alerting") or {}).get("alertmanagers") or [] if a.get("name")]
                yield r, f"{name}: Prometheus", [], pairs, alerts, "set spec.alerting.alertmanagers"
            else:
                configured = spec.get("alertmanagersUrl") or []
                # A Secret-held alertmanagersConfig is judged sent somewhere (the operator does not read it either).
                yield (r, f"{name}: ThanosRuler", list(configured), [], alerts and not spec.get("alertmanagersConfig"),
                       "set spec.alertmanagersUrl or spec.alertmanagersConfig")


def validate_alertmanagers(args, report):
    """Refuses a ruler or Prometheus with alerting rules that sends them nowhere or to a Service the stack lacks: alerts are lost."""
    stack = Stack(args.resources)
    for resource, what, addresses, pairs, alerts, how in senders(stack):
        provider = provider_of(resource)
        pairs = pairs + [p for p in (service_of(a) for a in addresses) if p]
        if alerts and not addresses and not pairs:
            report(f"{what} evaluates alerting rules but sends them to no Alertmanager: {how}.", resource.urn)
        for namespace, service in pairs:
            # Judged only where the stack shows that namespace's Services (another stack's may be invisible to it).
            shown = stack.services_in(provider, namespace)
            if shown and service not in shown:
                report(f"{what} sends alerts to {service}.{namespace}, but the stack declares no Service {service} "
                       f"in namespace {namespace}.", resource.urn)


def _credentials(node: Any, path: str = "") -> Iterator[str]:
    """Paths of literal credentials in a receiver."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            if key in CREDENTIAL_KEYS and isinstance(value, str) and value:
                yield here
            elif key == "url" and isinstance(value, str) and _URL_SECRET.search(value):
                yield here
            else:
                yield from _credentials(value, here)
    elif isinstance(node, list):
        for item in node:
            yield from _credentials(item, path)


def validate_receiver_secrets(args, report):
    """Refuses Alertmanager receiver credentials in a ConfigMap: whoever reads ConfigMaps gets them."""
    for r in args.resources:
        if r.resource_type != "kubernetes:core/v1:ConfigMap":
            continue
        name = (r.props.get("metadata") or {}).get("name")
        for key, text in sorted((r.props.get("data") or {}).items()):
            document = parsed(text)
            if not isinstance(document, dict) or "route" not in document or "receivers" not in document:
                continue
            for receiver in document.get("receivers") or []:
                found = sorted(set(_credentials(receiver))) if isinstance(receiver, dict) else []
                if found:
                    report(f"ConfigMap {name} ({key}) holds credentials of receiver {receiver.get('name')} "
                           f"({', '.join(found)}): keep the Alertmanager config in a Secret.", r.urn)


POLICIES = [
    stack_policy("thanos-alerting-alertmanager", "Every ruler and Prometheus with alerting rules sends them to an "
                 "Alertmanager the stack declares.", validate_alertmanagers),
    stack_policy("thanos-alerting-receiver-secrets", "Alertmanager receiver credentials are kept in Secrets, never in "
                 "ConfigMaps.", validate_receiver_secrets),
]
