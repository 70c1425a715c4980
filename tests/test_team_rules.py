"""Rules from teams as planned: what the config refuses, and the ThanosRulers, NetworkPolicies and replica labels a
stack with team rules gets (the real operator and ruler judge them in tests/test_real_team_rules.py)."""

import copy
import json

import jsonschema
import yaml
import pytest

import config
from tests.realtools.plan import kubernetes_objects
from tests.support.stacks import ROOT, stack_config

TEAM = {"enabled": True, "namespaces": ["apps"]}


def problems(raw) -> dict[str, str]:
    with pytest.raises(config.ConfigError) as err:
        config.load(raw)
    return dict(err.value.problems)


def dev_with(team: dict) -> dict:
    raw = copy.deepcopy(stack_config("dev"))
    raw["thanos"].setdefault("ruler", {})["team-rules"] = team
    return raw


def test_team_rules_refuse_what_would_evaluate_nothing_twice_or_the_platforms_own_rules():
    at = "thanos.ruler.team-rules"
    raw = dev_with({"enabled": True, "namespaces": ["team-a", "thanos-chicago", "apps", "apps"]})
    found = problems(raw)
    assert "belongs to tenant 'team-a'" in found[f"{at}.namespaces[0]"]
    assert "the platform's own namespace" in found[f"{at}.namespaces[1]"]
    assert "listed twice" in found[f"{at}.namespaces[3]"]
    assert f"{at}.namespaces[2]" not in found
    raw = dev_with(TEAM)
    raw["thanos"]["receive"] = {"enabled": False}
    assert "set thanos.receive.enabled" in problems(raw)[f"{at}.enabled"]
    raw = dev_with({"enabled": True})
    raw.pop("tenancy")
    assert "selects no namespace" in problems(raw)[f"{at}.namespaces"]
    config.load(dev_with(TEAM))  # the same with a namespace of no tenant loads


@pytest.fixture(scope="module")
def planned():
    return [o for c, o in kubernetes_objects("dev", {"thanos": {"ruler": {"team-rules": TEAM}}}) if c == "chicago"]


def test_each_team_ruler_is_a_valid_thanosruler_scoped_to_its_namespaces_without_bucket_or_api_access(planned):
    schema = json.loads((ROOT / "reference" / "schemas" / "thanosruler-v1.json").read_text())
    rulers = {o["metadata"]["name"]: o for o in planned if o["kind"] == "ThanosRuler"}
    # chicago hosts dev's global tier: the global-scope rulers run here too.
    assert set(rulers) == {f"{prefix}{tenant}" for prefix in ("thanos-team-rules", "thanos-global-team-rules")
                           for tenant in ("", "-team-a", "-team-b")}
    for name, ruler in rulers.items():
        assert list(jsonschema.Draft7Validator(schema).iter_errors(ruler)) == [], name
        spec = ruler["spec"]
        assert spec["enforcedNamespaceLabel"] == "namespace"
        assert spec["remoteWrite"][0]["url"].startswith("https://thanos-receive-router.")
        assert "objectStorageConfig" not in spec and spec["serviceAccountName"] == "thanos-team-ruler"
        assert not [k for k in spec["podMetadata"]["labels"] if "identity" in k or "workload" in k]
    values = {n: r["spec"]["ruleNamespaceSelector"]["matchExpressions"][0]["values"] for n, r in rulers.items()}
    assert values == {f"{prefix}{tenant}": [namespace] for prefix in ("thanos-team-rules", "thanos-global-team-rules")
                      for tenant, namespace in (("", "apps"), ("-team-a", "team-a"), ("-team-b", "team-b"))}
    for name, ruler in rulers.items():
        scope = ruler["spec"]["ruleSelector"]["matchExpressions"]
        is_global = name.startswith("thanos-global-")
        assert scope == [{"key": "thanos.io/rule-scope", "operator": "In" if is_global else "NotIn",
                          "values": ["global"]}]
        assert ruler["spec"]["queryConfig"]["key"] == ("global-query.yaml" if is_global else "query.yaml")
        assert ruler["spec"]["labels"] == ({"tier": "global", "team_rules_cluster": "chicago"} if is_global else
                                           {"cluster": "chicago", "region": "us-central"})
        assert ruler["spec"].get("alertDropLabels") == (["team_rules_cluster"] if is_global else None)
    # dev keeps tenants: every team ruler reads through an enforcing query beside it, with its certificate.
    config = next(o for o in planned if o["kind"] == "Secret" and o["metadata"]["name"] == "thanos-team-rules-config")
    tls = {"tls_config": {"ca_file": "/etc/thanos/ca/ca.crt", "cert_file": "/etc/thanos/tls/tls.crt",
                          "key_file": "/etc/thanos/tls/tls.key"}}
    for key, component in (("query.yaml", "team-rules"), ("global-query.yaml", "global-team-rules")):
        assert yaml.safe_load(config["stringData"][key]) == [{"scheme": "https", "http_config": tls, "static_configs": [
            f"thanos-query-{component}.thanos-chicago.svc.cluster.local:10902"]}]
    account = next(o for o in planned if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "thanos-team-ruler")
    assert account["automountServiceAccountToken"] is False
    budgets = {o["metadata"]["name"] for o in planned if o["kind"] == "PodDisruptionBudget"}
    assert set(rulers) <= budgets


def test_team_rulers_may_read_the_query_and_alert_and_their_series_are_deduplicated(planned):
    here = [o for o in planned if o["metadata"].get("namespace") == "thanos-chicago"]
    policies = {o["metadata"]["name"]: o for o in here if o["kind"] == "NetworkPolicy"}
    for name in ("thanos-query-http-ingress", "thanos-alerts-ingress"):
        clients = policies[name]["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"]
        assert "team-ruler" in clients, (name, clients)
    query = next(o for o in here if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == "thanos-query-pods")
    args = query["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--query.replica-label=thanos_ruler_replica" in args
    # The global query dedups the host's and the standby's copies of the global-scope results.
    tier = [o for o in planned if o["metadata"].get("namespace") == "thanos-global"]
    global_query = next(o for o in tier if o["kind"] == "Deployment" and o["metadata"]["name"] == "thanos-query-pods")
    global_args = global_query["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {"--query.replica-label=thanos_ruler_replica", "--query.replica-label=team_rules_cluster"} <= set(global_args)
    # And lets the global-scope enforcing query beside the rulers read its gRPC, and it may.
    ingress = next(o for o in tier if o["metadata"]["name"] == "thanos-team-ruler-query-ingress")["spec"]["ingress"]
    assert ingress[0]["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "thanos-chicago"}
    assert ingress[0]["ports"] == [{"protocol": "TCP", "port": 10901}]
    assert "thanos-team-query-global-query-egress" in policies


def test_without_team_rules_nothing_changes():
    raw = copy.deepcopy(stack_config("dev"))
    assert config.load(raw).thanos.ruler.team_rules.enabled is False


def test_the_clusters_prometheus_scrapes_the_team_rulers_and_the_mixins_ruler_alerts_watch_them(planned):
    here = [o for o in planned if o["metadata"].get("namespace") == "thanos-chicago"]
    service = next(o for o in here if o["kind"] == "Service" and o["metadata"]["name"] == "thanos-team-ruler")
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["ports"][0]["targetPort"] == "web"
    # Not the operator's thanos-ruler-operated, which selects the platform's ruler pods as well.
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "team-ruler"
    maps = {o["metadata"]["name"]: o["data"] for o in here if o["kind"] == "ConfigMap"}
    config = yaml.safe_load(maps["thanos-prometheus"]["prometheus.yml"])
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "thanos-team-ruler")
    assert job["dns_sd_configs"][0]["names"] == ["_http._tcp.thanos-team-ruler.thanos-chicago.svc.cluster.local"]
    rules = maps["thanos-prometheus-rules"]["platform.yaml"]
    # Six team rulers (apps, team-a, team-b; the cluster's and the global-scope ones) of two replicas each.
    assert "job: thanos-team-ruler\n" in rules and "vector(12)" in rules
    assert 'job=~"thanos-ruler|thanos-team-ruler"' in rules


def test_with_tenants_the_rulers_read_through_queries_that_scope_them_to_their_certificates_tenant(planned):
    here = [o for o in planned if o["metadata"].get("namespace") == "thanos-chicago"]
    for name in ("thanos-query-team-rules-pods", "thanos-query-global-team-rules-pods"):
        deployment = next(o for o in here if o["kind"] == "Deployment" and o["metadata"]["name"] == name)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert {"--query.enforce-tenancy", "--query.tenant-certificate-field=organization",
                "--query.tenant-label-name=tenant_id", "--http.config=/etc/thanos/web/web.yaml"} <= set(container["args"])
        assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
        sd = json.loads(next(a for a in container["args"] if a.startswith("--endpoint.sd-config="))
                        .split("=", 1)[1])["endpoints"]
        if "global" in name:
            assert sd == [{"address": "thanos-query.thanos-global.svc.cluster.local:10901", "strict": True}]
        else:
            assert len(sd) > 1 and all(e["strict"] for e in sd)
    web = yaml.safe_load(next(o for o in here if o["kind"] == "ConfigMap" and o["metadata"]["name"] ==
                              "thanos-query-team-rules-web")["data"]["web.yaml"])["tls_server_config"]
    assert web["client_ca_file"] == "/etc/thanos/ca/writers.crt" and web["client_auth_type"] == "VerifyClientCertIfGiven"
    assert any(o["kind"] == "Secret" and o["metadata"]["name"] == "thanos-query-team-rules-tls" for o in here)


def test_without_tenants_the_rulers_read_the_clusters_query():
    objects = [o for c, o in kubernetes_objects("dev", {"thanos": {"ruler": {"team-rules": TEAM}}, "tenancy": {
        "tenants": [], "operators": []}}) if c == "chicago" and o["metadata"].get("namespace") == "thanos-chicago"]
    config = next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "thanos-team-rules-config")
    assert yaml.safe_load(config["stringData"]["query.yaml"]) == [
        {"scheme": "http", "static_configs": ["dnssrv+_http._tcp.thanos-query-pods.thanos-chicago.svc.cluster.local"]}]
    assert not [o for o in objects if "query-team-rules" in o["metadata"]["name"]]


@pytest.mark.parametrize("labels, problem", [
    ({"bad key!": "x"}, "'bad key!' is not a Kubernetes label key"),
    ({"team": "no way"}, "team: 'no way' is not a Kubernetes label value"),
    ({"Example.COM/team": "a"}, "'Example.COM/team' is not a Kubernetes label key"),
    ({"thanos.io/rule-scope": "global"}, "thanos.io/rule-scope is the platform's"),
])
def test_rule_labels_are_ones_a_selector_can_hold(labels, problem):
    """The operator stops reconciling a ThanosRuler whose selector it cannot build: refused at the key instead."""
    assert problem in problems(dev_with({**TEAM, "rule-labels": labels}))["thanos.ruler.team-rules.rule-labels"]
    config.load(dev_with({**TEAM, "rule-labels": {"example.com/team": "a.b", "alerting": ""}}))
