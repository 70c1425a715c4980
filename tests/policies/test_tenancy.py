"""Tenancy rules (policies/thanos_policies/tenancy.py): a writer's tenant from its certificate where the stack keeps
tenants, and an enforcing query behind a query-frontend that forwards tenants."""

import json

from ..support.policies import (_config_map, _mounting, _service, check, check_stack, chicago, container, named,
                                thanos_workload)
from tests.support.stacks import STACKS

WRITER = "thanos-tenancy-writer-identity"
ENFORCED = "thanos-tenancy-enforced-query"
CLIENT_CA = "--remote-write.server-tls-client-ca=/etc/thanos/ca/writers.crt"
HEADER_TENANT = ("receive checks writers' client certificates (--remote-write.server-tls-client-ca) but takes the "
                 "tenant from a header the writer sends, and the stack keeps tenants")
HEADER_FIX = ("any writer with a certificate can write as any tenant. Set --receive.tenant-certificate-field "
              "(organization, organizationalUnit or commonName) and give each tenant's writers a certificate carrying "
              "it.")


def test_the_shipped_stacks_pass(planned):
    for stack in STACKS:
        resources = planned[stack].plan["resources"]
        assert check_stack(WRITER, resources) == [], stack
        assert check_stack(ENFORCED, resources) == [], stack


def test_dev_routers_take_the_tenant_from_the_certificate(planned):
    """dev keeps tenants (its global tier enforces them): a router without the certificate field is refused."""
    resources = [r for r in planned["dev"].plan["resources"] if "chicago" in (r["provider"] or "")]
    router = named(resources, "Deployment", "thanos-receive-router", "thanos-chicago")
    args = container(router["inputs"], "thanos-receive-router")["args"]
    args[:] = [a for a in args if not a.startswith("--receive.tenant-certificate-field=")]
    assert check_stack(WRITER, resources) == [
        f"thanos-receive-router: {HEADER_TENANT} (query thanos-query-tenants-pods enforces tenancy): {HEADER_FIX}"]


def _router(*extra: str) -> dict:
    return thanos_workload("Deployment", "router", ["receive", CLIENT_CA, *extra])


def test_a_header_tenant_is_refused_where_the_router_itself_says_tenants_are_in_use():
    """No enforcing query in sight: the router's own tenant header, or a hashring scoping tenants, says so."""
    assert check_stack(WRITER, [_router()]) == []  # one tenant, nothing says otherwise
    assert check_stack(WRITER, [_router("--receive.tenant-header=X-Team")]) == [
        f"router: {HEADER_TENANT} (it names its tenant header (--receive.tenant-header)): {HEADER_FIX}"]
    ring = json.dumps([{"hashring": "a", "tenants": ["team-a"], "endpoints": ["i-0:10901"]},
                       {"hashring": "rest", "endpoints": ["i-1:10901"]}])
    scoped = _mounting(_router("--receive.hashrings-file=/etc/ring/hashrings.json"), "ring", "ring", "/etc/ring")
    assert check_stack(WRITER, [scoped, _config_map("ring", "hashrings.json", ring)]) == [
        f"router: {HEADER_TENANT} (its hashring scopes tenants (team-a)): {HEADER_FIX}"]
    inline = _router(f"--receive.hashrings={ring}", "--receive.tenant-certificate-field=commonName")
    assert check_stack(WRITER, [inline]) == []
    # Without client certificates there is no identity to take the tenant from: another rule's concern.
    plain = thanos_workload("Deployment", "router", ["receive", "--receive.tenant-header=X-Team"])
    assert check_stack(WRITER, [plain]) == []


def test_a_query_a_frontend_forwards_tenants_to_enforces_them(planned):
    resources = chicago(planned["dev"].plan["resources"], "thanos-global")
    assert check_stack(ENFORCED, resources) == []
    tenants = named(resources, "Deployment", "thanos-query-tenants-pods", "thanos-global")
    args = container(tenants["inputs"], "thanos-query")["args"]
    args[:] = [a for a in args if a != "--query.enforce-tenancy"]
    assert check_stack(ENFORCED, resources) == [
        "thanos-query-tenants-pods: query-frontend thanos-query-frontend-pods forwards each request's tenant to it "
        "(--query-frontend.tenant-header), but it does not enforce tenancy: every tenant's series answer every "
        "request. Set --query.enforce-tenancy (and --query.tenant-label-name to the label the tenant's series "
        "carry)."]


def test_a_frontend_without_tenant_flags_is_not_judged():
    query = thanos_workload("Deployment", "query", ["query"])
    frontend = thanos_workload("Deployment", "frontend", [
        "query-frontend", "--query-frontend.downstream-url=http://q.mon.svc:10902"])
    assert check_stack(ENFORCED, [query, frontend, _service("q", "query")]) == []
    frontend["inputs"]["spec"]["template"]["spec"]["containers"][0]["args"].append(
        "--query-frontend.tenant-certificate-field=organization")
    assert check_stack(ENFORCED, [query, frontend, _service("q", "query")]) == [
        "query: query-frontend frontend forwards each request's tenant to it (--query-frontend.tenant-certificate-field), "
        "but it does not enforce tenancy: every tenant's series answer every request. Set --query.enforce-tenancy "
        "(and --query.tenant-label-name to the label the tenant's series carry)."]


SCOPED = "thanos-tenancy-team-rules-scoped"
THANOS_RULER = "kubernetes:monitoring.coreos.com/v1:ThanosRuler"
PROMETHEUS = "kubernetes:monitoring.coreos.com/v1:Prometheus"
EVERY = ("team-rules: ThanosRuler evaluates the PrometheusRules of every namespace (ruleNamespaceSelector) without "
         "spec.enforcedNamespaceLabel: a rule written in any of them reads every namespace's series. Set "
         "enforcedNamespaceLabel: namespace, so each rule sees its own namespace's series only.")


def _rules_cr(selector, **spec) -> dict:
    body = {"ruleSelector": {}, **spec}
    if selector is not None:
        body["ruleNamespaceSelector"] = selector
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ThanosRuler",
            "metadata": {"name": "team-rules", "namespace": "monitoring"}, "spec": body}


def test_a_ruler_reading_other_namespaces_rules_scopes_each_to_its_own_namespace():
    assert check(SCOPED, THANOS_RULER, _rules_cr(None)) == []  # its own namespace only (the operator's default)
    own = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}]}
    assert check(SCOPED, THANOS_RULER, _rules_cr(own)) == []
    assert check(SCOPED, THANOS_RULER, _rules_cr({})) == [EVERY]
    teams = {"matchLabels": {"team": "yes"}}
    assert check(SCOPED, THANOS_RULER, _rules_cr(teams)) == [EVERY.replace("every namespace (", "other namespaces (")]
    assert check(SCOPED, THANOS_RULER, _rules_cr(teams, enforcedNamespaceLabel="namespace")) == []
    exempt = _rules_cr({}, enforcedNamespaceLabel="namespace",
                       excludedFromEnforcement=[{"namespace": "team-b", "resource": "prometheusrules", "name": "all"}])
    assert check(SCOPED, THANOS_RULER, exempt) == [
        "team-rules: ThanosRuler exempts PrometheusRules of other namespaces from its enforced namespace label "
        "(team-b/all): they read every namespace's series. Exempt only rules of its own namespace."]
    prometheus = {**_rules_cr({}), "kind": "Prometheus"}
    assert check(SCOPED, PROMETHEUS, prometheus) == [EVERY.replace("ThanosRuler", "Prometheus")]


def test_the_planned_team_rulers_are_scoped(tmp_path):
    """dev with team rules: each planned ThanosRuler passes; without its enforced label it would not."""
    from tests.realtools.plan import kubernetes_objects
    rulers = [o for _, o in kubernetes_objects("dev", {"thanos": {"ruler": {"team-rules": {
        "enabled": True, "namespaces": ["apps"]}}}}) if o["kind"] == "ThanosRuler"]
    assert len(rulers) == 9  # three per cluster (apps, team-a, team-b), and three global-scope ones beside the global tier
    for ruler in rulers:
        assert check(SCOPED, THANOS_RULER, ruler) == []
        bare = {**ruler, "spec": {k: v for k, v in ruler["spec"].items() if k != "enforcedNamespaceLabel"}}
        assert len(check(SCOPED, THANOS_RULER, bare)) == 1
