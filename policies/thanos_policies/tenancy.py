"""Tenancy: where a stack keeps several tenants, a writer's tenant comes from its certificate, not from a header it
chooses, and a query that a query-frontend forwards tenants to enforces them. Receive takes the tenant from the
THANOS-TENANT header unless `--receive.tenant-certificate-field` is set (then the header is ignored); a query only
scopes a request to its tenant with `--query.enforce-tenancy` (without it the header labels metrics only)."""

from ._addresses import declared_service
from ._register import resource_policy, stack_policy
from ._workloads import (PROMETHEUS_CR, THANOS_RULER_CR, WORKLOAD_TYPES, Stack, _pod_labels, _selects, flag,
                         namespace_of, parsed,
                         provider_of, secret_text, switch_on, thanos_containers, workload_containers)

FRONTEND_TENANT_FLAGS = ("query-frontend.tenant-header", "query-frontend.tenant-certificate-field")
"""A query-frontend given one of these reads a tenant from its requests and forwards it (as THANOS-TENANT)."""


def _hashring_tenants(stack: Stack, owner, container: dict, flags: list[str]) -> list[str]:
    """Tenants the receiver's hashring scopes entries to (`tenants` of an entry), inline or from a mounted file."""
    documents: list = [parsed(text) for text in flag(flags, "receive.hashrings")]
    for path in flag(flags, "receive.hashrings-file"):
        for resource, kind, key in stack.mounted(owner, container, path):
            documents.append(parsed(secret_text(resource.props, key, kind == "ConfigMap")) if resource else None)
    return [str(t) for d in documents if isinstance(d, list) for entry in d if isinstance(entry, dict)
            for t in entry.get("tenants") or []]


def _enforcing_queries(resources) -> list[str]:
    """Names of the queries of the stack that enforce tenancy."""
    return [str(name) for _, name, _, command, flags in workload_containers(resources)
            if command == "query" and switch_on(flags, "query.enforce-tenancy")]


def validate_writer_identity(args, report):
    """Refuses a receiver that checks writers' client certificates but takes the tenant from a header, where the
    stack keeps tenants (a query enforces them, the receiver's hashring scopes tenants, or it names its tenant header):
    any writer holding a certificate can then write as any tenant, into another team's data."""
    stack = Stack(args.resources)
    enforcing = _enforcing_queries(args.resources)
    for r in args.resources:
        if r.resource_type not in WORKLOAD_TYPES:
            continue
        for container, command, flags in thanos_containers(r.props):
            if command != "receive" or not flag(flags, "remote-write.server-tls-client-ca"):
                continue
            if flag(flags, "receive.tenant-certificate-field"):
                continue
            reasons = []
            if enforcing:
                reasons.append(f"query {enforcing[0]} enforces tenancy")
            scoped = _hashring_tenants(stack, r, container, flags)
            if scoped:
                reasons.append(f"its hashring scopes tenants ({', '.join(sorted(set(scoped))[:3])})")
            if flag(flags, "receive.tenant-header"):
                reasons.append("it names its tenant header (--receive.tenant-header)")
            if reasons:
                report(f"{(r.props.get('metadata') or {}).get('name')}: receive checks writers' client certificates "
                       f"(--remote-write.server-tls-client-ca) but takes the tenant from a header the writer sends, and "
                       f"the stack keeps tenants ({'; '.join(reasons)}): any writer with a certificate can write as any "
                       "tenant. Set --receive.tenant-certificate-field (organization, organizationalUnit or commonName) "
                       "and give each tenant's writers a certificate carrying it.", r.urn)


def _downstream_queries(stack: Stack, frontend, url: str) -> list:
    """(query workload, flags) behind a query-frontend's downstream URL (a Service the stack declares)."""
    service = declared_service(stack, frontend, url)
    if service is None:
        return []
    selector = (service.props.get("spec") or {}).get("selector") or {}
    return [(r, flags) for r in stack.resources if r.resource_type in WORKLOAD_TYPES
            and provider_of(r) == provider_of(service) and namespace_of(r) == namespace_of(service)
            and _selects(selector, _pod_labels(r)) for _, command, flags in thanos_containers(r.props)
            if command == "query"]


def validate_enforced_query(args, report):
    """Refuses a query behind a query-frontend that reads tenants (--query-frontend.tenant-header or
    -tenant-certificate-field) when the query does not set --query.enforce-tenancy: the frontend forwards each
    request's tenant, and the query answers every tenant's series to it."""
    stack = Stack(args.resources)
    for frontend, name, _, command, flags in workload_containers(args.resources):
        declared = [option for option in FRONTEND_TENANT_FLAGS if flag(flags, option)]
        if command != "query-frontend" or not declared:
            continue
        for query, qflags in (q for url in flag(flags, "query-frontend.downstream-url")
                              for q in _downstream_queries(stack, frontend, url)):
            if not switch_on(qflags, "query.enforce-tenancy"):
                report(f"{(query.props.get('metadata') or {}).get('name')}: query-frontend {name} forwards each "
                       f"request's tenant to it (--{declared[0]}), but it does not enforce tenancy: every tenant's "
                       "series answer every request. Set --query.enforce-tenancy (and --query.tenant-label-name to "
                       "the label the tenant's series carry).", query.urn)


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""The label the API server puts on every Namespace: its name."""


def _only_own_namespace(selector, own: str) -> bool:
    """Whether a namespace selector can select no namespace but `own` (by its name label)."""
    labels, expressions = selector.get("matchLabels") or {}, selector.get("matchExpressions") or []
    if labels.get(NAMESPACE_NAME_LABEL) == own:
        return True
    return any(e.get("key") == NAMESPACE_NAME_LABEL and e.get("operator") == "In" and list(e.get("values") or []) == [own]
               for e in expressions)


def validate_team_rules_scoped(args, report):
    """Refuses a prometheus-operator ThanosRuler or Prometheus that evaluates PrometheusRules of other namespaces
    (ruleNamespaceSelector set, not to its own namespace only) without enforcedNamespaceLabel, or that exempts another
    namespace's rules from it: a team that may create a PrometheusRule in one selected namespace then reads every
    namespace's series, other teams' and tenants' included, and can record them into its own."""
    if args.resource_type not in (THANOS_RULER_CR, PROMETHEUS_CR):
        return
    spec, metadata = args.props.get("spec") or {}, args.props.get("metadata") or {}
    own, kind = metadata.get("namespace") or "", "ThanosRuler" if args.resource_type == THANOS_RULER_CR else "Prometheus"
    selector = spec.get("ruleNamespaceSelector")
    if selector is None or _only_own_namespace(selector, own):
        return
    where = "every namespace" if not selector else "other namespaces"
    if not spec.get("enforcedNamespaceLabel"):
        report(f"{metadata.get('name')}: {kind} evaluates the PrometheusRules of {where} (ruleNamespaceSelector) "
               "without spec.enforcedNamespaceLabel: a rule written in any of them reads every namespace's series. Set "
               "enforcedNamespaceLabel: namespace, so each rule sees its own namespace's series only.")
        return
    exempt = [f"{e.get('namespace')}/{e.get('name') or '*'}" for e in spec.get("excludedFromEnforcement") or []
              if e.get("namespace") != own] + [
        f"{e.get('ruleNamespace')}/{e.get('ruleName')}" for e in spec.get("prometheusRulesExcludedFromEnforce") or []
        if e.get("ruleNamespace") != own]
    if exempt:
        report(f"{metadata.get('name')}: {kind} exempts PrometheusRules of other namespaces from its enforced namespace "
               f"label ({', '.join(sorted(exempt)[:3])}): they read every namespace's series. Exempt only rules of its "
               "own namespace.")


POLICIES = [
    stack_policy("thanos-tenancy-writer-identity", "Where the stack keeps tenants, a receiver that checks client "
                 "certificates takes the tenant from them (--receive.tenant-certificate-field), never from a header "
                 "the writer chooses.", validate_writer_identity),
    stack_policy("thanos-tenancy-enforced-query", "A query a query-frontend forwards tenants to enforces them "
                 "(--query.enforce-tenancy).", validate_enforced_query),
    resource_policy("thanos-tenancy-team-rules-scoped", "A ThanosRuler or Prometheus evaluating other namespaces' "
                    "PrometheusRules scopes each rule to its own namespace's series (enforcedNamespaceLabel).",
                    validate_team_rules_scoped),
]
