"""Alerting rules (policies/thanos_policies/alerting.py): alerts reach a declared Alertmanager, receiver credentials
stay in Secrets."""

import copy

import yaml

from tests.support.stacks import STACKS
from ..support.policies import STS, check_stack, container


ALERTING = "thanos-alerting-alertmanager"


def _ruler_args(resources, cluster="chicago"):
    ruler = next(r for r in resources if r["type"] == STS and r["inputs"]["metadata"]["name"] == "thanos-ruler"
                 and r["inputs"]["metadata"]["namespace"] == "thanos" and cluster in r["provider"])
    return container(ruler["inputs"], "thanos-ruler")["args"]


def test_alerting_passes_on_every_shipped_stack(planned):
    for stack in STACKS:
        assert check_stack(ALERTING, planned[stack].plan["resources"]) == [], stack
        assert check_stack("thanos-alerting-receiver-secrets", planned[stack].plan["resources"]) == [], stack


def test_a_ruler_with_alerts_and_no_alertmanager_is_refused(prod):
    broken = copy.deepcopy(prod)
    args = _ruler_args(broken)
    args[:] = [a for a in args if not a.startswith("--alertmanagers.config=")]
    assert check_stack(ALERTING, broken) == [
        "thanos-ruler: thanos rule evaluates alerting rules but sends them to no Alertmanager: set --alertmanagers.url "
        "or --alertmanagers.config."]
    # Recording rules only: nothing to send, nothing to refuse.
    rules = next(r for r in broken if r["type"] == "kubernetes:core/v1:ConfigMap"
                 and r["inputs"]["metadata"]["name"] == "thanos-ruler-rules" and "chicago" in r["provider"]
                 and r["inputs"]["metadata"]["namespace"] == "thanos")
    rules["inputs"]["data"]["thanos.yaml"] = yaml.safe_dump({"groups": [{"name": "r", "rules": [
        {"record": "x:up:sum", "expr": "sum(up)"}]}]})
    assert check_stack(ALERTING, broken) == []


def test_an_alertmanager_address_the_stack_does_not_create_is_refused(prod):
    """The ruler of the landed program pointed at an Alertmanager nothing created; now the pack names it."""
    broken = copy.deepcopy(prod)
    args = _ruler_args(broken)
    args[:] = [a for a in args if not a.startswith("--alertmanagers.config=")] + [
        "--alertmanagers.url=dnssrv+http://_web._tcp.alertmanager-main.thanos.svc.cluster.local"]
    assert check_stack(ALERTING, broken) == [
        "thanos-ruler: thanos rule sends alerts to alertmanager-main.thanos, but the stack declares no Service "
        "alertmanager-main in namespace thanos."]
    # Another team's namespace, whose Services this stack cannot see, is not judged.
    args[-1] = "--alertmanagers.url=dnssrv+http://_web._tcp.alertmanager-operated.monitoring.svc.cluster.local"
    assert check_stack(ALERTING, broken) == []


def test_a_prometheus_with_alerts_and_nowhere_to_send_them_is_refused(prod):
    broken = copy.deepcopy(prod)
    config = next(r for r in broken if r["type"] == "kubernetes:core/v1:ConfigMap"
                  and r["inputs"]["metadata"]["name"] == "thanos-prometheus" and "seattle" in r["provider"])
    document = yaml.safe_load(config["inputs"]["data"]["prometheus.yml"])
    del document["alerting"]
    config["inputs"]["data"]["prometheus.yml"] = yaml.safe_dump(document)
    assert check_stack(ALERTING, broken) == [
        "thanos-prometheus: Prometheus evaluates alerting rules but sends them to no Alertmanager: add "
        "alerting.alertmanagers to prometheus.yml."]


def test_operator_resources_are_read_too(planned):
    azure = copy.deepcopy(planned["azure"].plan["resources"])
    prometheus = next(r for r in azure if r["type"] == "kubernetes:monitoring.coreos.com/v1:Prometheus")
    prometheus["inputs"]["spec"]["alerting"]["alertmanagers"][0]["name"] = "alertmanager-main"
    assert check_stack(ALERTING, azure) == [
        "thanos-prometheus: Prometheus sends alerts to alertmanager-main.thanos, but the stack declares no Service "
        "alertmanager-main in namespace thanos."]
    del prometheus["inputs"]["spec"]["alerting"]
    assert check_stack(ALERTING, azure) == [
        "thanos-prometheus: Prometheus evaluates alerting rules but sends them to no Alertmanager: set "
        "spec.alerting.alertmanagers."]
    rule = next(r for r in azure if r["type"] == "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    ruler = {"type": "kubernetes:monitoring.coreos.com/v1:ThanosRuler", "provider": rule["provider"],
             "inputs": {"metadata": {"name": "team-ruler", "namespace": "thanos"},
                        "spec": {"ruleSelector": {"matchLabels": {"app.kubernetes.io/part-of": "thanos"}}}}}
    assert check_stack(ALERTING, [rule, ruler]) == [
        "team-ruler: ThanosRuler evaluates alerting rules but sends them to no Alertmanager: set spec.alertmanagersUrl "
        "or spec.alertmanagersConfig."]
    ruler["inputs"]["spec"]["alertmanagersConfig"] = {"name": "am", "key": "config.yaml"}
    assert check_stack(ALERTING, [rule, ruler]) == []


def test_receiver_credentials_in_a_config_map_are_refused():
    def config_map(receivers):
        return {"type": "kubernetes:core/v1:ConfigMap", "inputs": {"metadata": {"name": "alertmanager", "namespace": "m"},
                "data": {"alertmanager.yml": yaml.safe_dump({"route": {"receiver": receivers[0]["name"]},
                                                             "receivers": receivers})}}}
    slack = {"name": "chat", "slack_configs": [{"api_url": "https://hooks.slack.com/services/T/B/X", "channel": "#a"}]}
    assert check_stack("thanos-alerting-receiver-secrets", [config_map([slack])]) == [
        "ConfigMap alertmanager (alertmanager.yml) holds credentials of receiver chat (slack_configs.api_url): keep the Alertmanager "
        "config in a Secret."]
    hook = {"name": "hook", "webhook_configs": [{"url": "https://x.example.com/alert?token=abc",
                                                 "http_config": {"basic_auth": {"username": "u", "password": "p"}}}]}
    assert check_stack("thanos-alerting-receiver-secrets", [config_map([hook])]) == [
        "ConfigMap alertmanager (alertmanager.yml) holds credentials of receiver hook "
        "(webhook_configs.http_config.basic_auth.password, webhook_configs.url): keep the Alertmanager config in a Secret."]
    from_files = {"name": "chat", "slack_configs": [{"api_url_file": "/etc/am/slack", "channel": "#a"}]}
    internal = {"name": "hook", "webhook_configs": [{"url": "http://relay.monitoring.svc:8080/alert"}]}
    assert check_stack("thanos-alerting-receiver-secrets", [config_map([from_files, internal])]) == []
