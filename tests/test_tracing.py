"""Tracing (`tracing`): one OTLP config, checked with the key path, put on every Thanos container the plan runs."""

import json

import pytest
import yaml

import config
from components.thanos.flags import flag_problem
from tests.realtools.plan import kubernetes_objects
from tests.support.stacks import stack_config

TRACING = {"endpoint": "otel-collector.observability.svc:4317"}
WORKLOADS = ("Deployment", "StatefulSet")


def _tracing_configs(objects) -> dict[tuple[str, str, str, str], list[dict]]:
    """(cluster, namespace, workload, container) -> its --tracing.config documents, for every container of every
    workload."""
    found = {}
    for cluster, obj in objects:
        if obj["kind"] in WORKLOADS:
            for c in obj["spec"]["template"]["spec"]["containers"]:
                found[(cluster, obj["metadata"]["namespace"], obj["metadata"]["name"], c["name"])] = [
                    json.loads(a.split("=", 1)[1]) for a in c.get("args") or [] if a.startswith("--tracing.config=")]
    return found


def test_every_thanos_container_of_every_workload_traces_under_its_own_name():
    objects = kubernetes_objects("prod", {"tracing": {**TRACING, "sampler-param": 0.25}})
    image = stack_config("prod").get("thanos", {}).get("image") or config.load(stack_config("prod")).thanos.image
    thanos = {(cluster, o["metadata"]["namespace"], o["metadata"]["name"], c["name"]) for cluster, o in objects
              if o["kind"] in WORKLOADS for c in o["spec"]["template"]["spec"]["containers"]
              if c["image"].startswith(image.split("@")[0])}
    configs = _tracing_configs(objects)
    traced = {key for key, found in configs.items() if found}
    assert traced == thanos
    kinds = {key[-1] for key in traced}
    assert {"thanos-sidecar", "thanos-query", "thanos-query-frontend", "thanos-store", "thanos-compactor",
            "thanos-ruler", "thanos-receive", "thanos-receive-router", "thanos-bucket-web"} <= kinds, kinds
    assert all(len(found) == 1 for found in configs.values() if found)
    commands = {" ".join(w for w in c["args"] if not w.startswith("-")) for _, o in objects if o["kind"] in WORKLOADS
                for c in o["spec"]["template"]["spec"]["containers"] if any(a.startswith("--tracing.") for a in c.get("args") or [])}
    assert {"query", "sidecar", "tools bucket web"} <= commands, commands
    assert [flag_problem(command, "--tracing.config=x") for command in commands] == [None] * len(commands)
    queries = {key[:2]: found[0] for key, found in configs.items() if key[2:] == ("thanos-query-pods", "thanos-query")}
    document = queries[("chicago", "thanos")]
    assert document == {"type": "OTLP", "config": {
        "client_type": "grpc", "endpoint": "otel-collector.observability.svc:4317", "insecure": False,
        "service_name": "thanos-query", "sampler_type": "parentbasedtraceidratiobased", "sampler_param": "0.25",
        "resource_attributes": document["config"]["resource_attributes"]}}
    assert document["config"]["resource_attributes"] == {
        "cluster": "chicago", "k8s.namespace.name": "thanos", "k8s.deployment.name": "thanos-query-pods"}
    assert {d["config"]["resource_attributes"]["cluster"] for d in queries.values()} == {"chicago", "seattle", "global"}
    egress = {(cluster, o["metadata"]["namespace"]): o["spec"] for cluster, o in objects
              if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "thanos-tracing-egress"}
    assert set(egress) == {(c, ns) for c in ("chicago", "seattle") for ns in ("thanos", "thanos-global")}
    assert egress[("chicago", "thanos")]["egress"] == [{
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}],
        "ports": [{"protocol": "TCP", "port": 4317}]}]
    untraced = kubernetes_objects("prod")
    assert not any(_tracing_configs(untraced).values())


def test_an_operator_run_sidecar_traces_through_its_prometheus_resource():
    """prometheus-operator runs the sidecar: its Prometheus resource names a Secret holding the same config."""
    objects = kubernetes_objects("azure", {"tracing": TRACING})
    resources = [o for _, o in objects if o["kind"] == "Prometheus"]
    assert resources and all(r["spec"]["thanos"]["tracingConfig"] == {"name": "thanos-sidecar-tracing",
                                                                      "key": "tracing.yaml"} for r in resources)
    secrets = [o for _, o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "thanos-sidecar-tracing"]
    assert {s["metadata"]["namespace"] for s in secrets} == {r["metadata"]["namespace"] for r in resources}
    document = yaml.safe_load(secrets[0]["stringData"]["tracing.yaml"])
    assert document["type"] == "OTLP" and document["config"]["service_name"] == "thanos-sidecar"
    assert document["config"]["endpoint"] == TRACING["endpoint"]
    untraced = kubernetes_objects("azure")
    assert not [o for _, o in untraced if o["kind"] == "Secret" and o["metadata"]["name"] == "thanos-sidecar-tracing"]
    assert all("tracingConfig" not in o["spec"]["thanos"] for _, o in untraced if o["kind"] == "Prometheus")


@pytest.mark.parametrize(("tracing", "key", "message"), [
    ({"endpoint": "http://collector:4318"}, "tracing.endpoint", "has a scheme: give host:port only"),
    ({"endpoint": "collector"}, "tracing.endpoint", "is not host:port"),
    ({**TRACING, "sampler-param": 1.5}, "tracing.sampler-param", "less than or equal to 1"),
    ({**TRACING, "sampler-param": -0.1}, "tracing.sampler-param", "greater than or equal to 0"),
    ({**TRACING, "client-type": "thrift"}, "tracing.client-type", "'grpc' or 'http'"),
    ({**TRACING, "sampler-type": "alwayssample", "sampler-param": 0.5}, "tracing",
     "sampler-param is read only by traceidratiobased and parentbasedtraceidratiobased, not alwayssample"),
    ({"client-type": "http"}, "tracing.endpoint", "required"),
])
def test_bad_tracing_config_names_the_key(tracing, key, message):
    raw = stack_config("dev")
    raw["tracing"] = tracing
    with pytest.raises(config.ConfigError) as err:
        config.load(raw)
    assert any(path == key and message.lower() in text.lower() for path, text in err.value.problems), err.value.problems


def test_tracing_is_off_by_default_and_keeps_the_sampler_it_is_given():
    assert config.load(stack_config("dev")).tracing is None
    raw = stack_config("dev")
    raw["tracing"] = {**TRACING, "client-type": "http", "insecure": True, "sampler-type": "neversample"}
    spec = config.load(raw).tracing
    assert spec.thanos_config("thanos-store", {})["config"] == {
        "client_type": "http", "endpoint": TRACING["endpoint"], "insecure": True, "service_name": "thanos-store",
        "resource_attributes": {}, "sampler_type": "neversample"}
