"""Block producer rules (policies/thanos_policies/producers.py): block durations, external and replica labels,
the receive ring."""

import copy
import json

import yaml
from pulumi_policy import (
    ResourceValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

from ..support.policies import (DEPLOYMENT, K8S, OBJSTORE_ENV, POLICIES, STS, check, check_stack, compactor,
                                container, objstore_secret, options, set_flag, thanos_workload, workload)


def test_block_durations(prod):
    prometheus = workload(prod, "thanos-prometheus")["inputs"]
    assert check("thanos-producers-blocks-and-labels", STS, prometheus) == []
    set_flag(prometheus, "prometheus", "storage.tsdb.max-block-duration", "24h")
    assert check("thanos-producers-blocks-and-labels", STS, prometheus) == [
        "Prometheus with an uploading sidecar needs --storage.tsdb.min-block-duration = "
        "--storage.tsdb.max-block-duration = 2h (local compaction would lose or overlap blocks)."]


def test_ruler_label_drop_and_its_remediation(prod):
    ruler = workload(prod, "thanos-ruler")["inputs"]
    assert check("thanos-producers-blocks-and-labels", STS, ruler) == []
    set_flag(ruler, "thanos-ruler", "alert.label-drop", None)
    assert check("thanos-producers-blocks-and-labels", STS, ruler) == [
        "ruler HA must drop its replica label from alerts: add --alert.label-drop=rule_replica."]
    args = ResourceValidationArgs(STS, unknown_checking_proxy(ruler), "urn", "r", options(), None, {})
    fixed = POLICIES["thanos-producers-blocks-and-labels"].remediate(args)
    assert "--alert.label-drop=rule_replica" in container(fixed, "thanos-ruler")["args"]
    assert check("thanos-producers-blocks-and-labels", STS, fixed) == []


def test_replica_labels(prod):
    cluster = [r for r in prod if "chicago" in (r["provider"] or "")]
    assert check_stack("thanos-producers-replica-labels", cluster) == []
    broken = copy.deepcopy(cluster)
    query = next(r for r in broken if r["type"] == DEPLOYMENT and r["inputs"]["metadata"]["name"] == "thanos-query-pods")
    c = container(query["inputs"], "thanos-query")
    c["args"] = [a for a in c["args"] if a != "--query.replica-label=receive_replica"]
    assert check_stack("thanos-producers-replica-labels", broken) == [
        "query does not deduplicate on receive_replica: add --query.replica-label for each, or every replica's "
        "series shows up twice."]


def test_receive_ring(prod):
    cluster = [r for r in prod if "chicago" in (r["provider"] or "")]
    assert check_stack("thanos-producers-receive-ring", cluster) == []
    broken = copy.deepcopy(cluster)
    ring = next(r for r in broken if r["type"] == "kubernetes:core/v1:ConfigMap"
                and r["inputs"]["metadata"]["name"] == "thanos-receive-hashring")
    document = json.loads(ring["inputs"]["data"]["hashrings.json"])
    document[0]["endpoints"] = document[0]["endpoints"][:2]
    ring["inputs"]["data"]["hashrings.json"] = json.dumps(document)
    assert check_stack("thanos-producers-receive-ring", broken) == [
        "receive replication factor 3 exceeds the 2 hashring endpoints: every write fails "
        "(config: thanos.receive.replication-factor)."]


def test_external_labels(prod):
    cluster = [r for r in prod if "chicago" in (r["provider"] or "")]
    assert check_stack("thanos-producers-external-labels", cluster) == []
    broken = copy.deepcopy(cluster)
    config_map = next(r for r in broken if r["type"] == "kubernetes:core/v1:ConfigMap"
                      and r["inputs"]["metadata"]["name"] == "thanos-prometheus")
    document = yaml.safe_load(config_map["inputs"]["data"]["prometheus.yml"])
    del document["global"]["external_labels"]["prometheus_replica"]
    config_map["inputs"]["data"]["prometheus.yml"] = yaml.safe_dump(document)
    receive = next(r for r in broken if r["type"] == STS and r["inputs"]["metadata"]["name"] == "thanos-receive-us-east-1a")
    c = container(receive["inputs"], "thanos-receive")
    c["args"] = [a for a in c["args"] if "receive_replica" not in a]
    assert check_stack("thanos-producers-external-labels", broken) == [
        "thanos-prometheus: 2 Prometheus replicas share one external label set (add a per-pod replica label such as "
        "prometheus_replica: ${POD_NAME}).",
        "thanos-receive-us-east-1a: 2 receive replicas upload blocks with identical labels (add a per-pod replica "
        "label)."]


def test_receive_replication_factor_must_be_odd(prod):
    router = workload(prod, "thanos-receive-router")["inputs"]
    assert check("thanos-producers-blocks-and-labels", DEPLOYMENT, router) == []
    set_flag(router, "thanos-receive-router", "receive.replication-factor", "2")
    assert check("thanos-producers-blocks-and-labels", DEPLOYMENT, router) == [
        "receive replication factor 2 is even: use an odd factor (config: thanos.receive.replication-factor)."]


def test_prometheus_local_retention(prod):
    prometheus = workload(prod, "thanos-prometheus")["inputs"]
    set_flag(prometheus, "prometheus", "storage.tsdb.retention.time", "2h")
    assert check("thanos-producers-blocks-and-labels", STS, prometheus) == [
        "Prometheus keeps 2h locally: below 6h (three blocks) an object storage outage loses data "
        "(config: thanos.prometheus.retention)."]


def test_receive_needs_a_spare_ingestor(prod):
    cluster = copy.deepcopy([r for r in prod if "chicago" in (r["provider"] or "")])
    ring = next(r for r in cluster if r["type"] == "kubernetes:core/v1:ConfigMap"
                and r["inputs"]["metadata"]["name"] == "thanos-receive-hashring")
    document = json.loads(ring["inputs"]["data"]["hashrings.json"])
    document[0]["endpoints"] = document[0]["endpoints"][:3]
    ring["inputs"]["data"]["hashrings.json"] = json.dumps(document)
    assert check_stack("thanos-producers-receive-ring", cluster) == [
        "receive runs 3 ingestor(s) for replication factor 3: below 4 every ingestor holds every series, so a rollout "
        "leaves no room for one more failure before writes lose their quorum (config: thanos.receive.ingestors)."]
    assert check_stack("thanos-producers-receive-ring", cluster, {"minSpareIngestors": 0}) == []
    # A tenant's own ring, smaller than the default one, is named with its own key.
    tenant_ring = {**document[0], "hashring": "team-a", "tenants": ["team-a"], "tenant_matcher_type": "exact"}
    document[0]["endpoints"] = document[0]["endpoints"] * 2
    ring["inputs"]["data"]["hashrings.json"] = json.dumps([tenant_ring, document[0]])
    assert check_stack("thanos-producers-receive-ring", cluster) == [
        "receive runs 3 ingestor(s) of hashring team-a for replication factor 3: below 4 every ingestor holds every "
        "series, so a rollout leaves no room for one more failure before writes lose their quorum (config: "
        "tenancy.tenants[].dedicated-ingestors)."]


def test_ruler_replicas_need_a_per_pod_label(prod):
    ruler = workload(prod, "thanos-ruler")["inputs"]
    c = container(ruler, "thanos-ruler")
    c["args"] = [a for a in c["args"] if not a.startswith("--label=rule_replica=")]
    assert check("thanos-producers-blocks-and-labels", STS, ruler) == [
        "ruler replicas have no per-pod replica label (--label=<name>=\"$(POD_NAME)\"): their blocks overlap."]
    ruler["spec"]["replicas"] = 1
    assert check("thanos-producers-blocks-and-labels", STS, ruler) == []


def test_uploaders_need_external_labels(prod):
    cluster = copy.deepcopy([r for r in prod if "chicago" in (r["provider"] or "")])
    ruler = next(r for r in cluster if r["type"] == STS and r["inputs"]["metadata"]["name"] == "thanos-ruler"
                 and r["inputs"]["metadata"]["namespace"] == "thanos")
    c = container(ruler["inputs"], "thanos-ruler")
    c["args"] = [a for a in c["args"] if not a.startswith("--label=")]
    config_map = next(r for r in cluster if r["type"] == "kubernetes:core/v1:ConfigMap"
                      and r["inputs"]["metadata"]["name"] == "thanos-prometheus")
    document = yaml.safe_load(config_map["inputs"]["data"]["prometheus.yml"])
    del document["global"]["external_labels"]
    config_map["inputs"]["data"]["prometheus.yml"] = yaml.safe_dump(document)
    assert check_stack("thanos-producers-external-labels", cluster) == [
        "thanos-prometheus: Prometheus uploads blocks without external labels.",
        "thanos-ruler: thanos rule uploads blocks without --label external labels."]


def test_receive_replicas_with_one_label_set_on_one_bucket_are_refused():
    def receive(*labels: str) -> dict:
        return thanos_workload("StatefulSet", "receive", ["receive", "--objstore.config=$(OBJSTORE)", *labels],
                               replicas=3, env=OBJSTORE_ENV)
    assert check_stack("thanos-producers-external-labels", [objstore_secret(), receive(
        '--label=receive="true"', '--label=tenant="a"')]) == [
        "receive: 3 receive replicas upload blocks with identical labels (add a per-pod replica label)."]
    assert check_stack("thanos-producers-external-labels", [objstore_secret(), receive(
        '--label=receive="true"', '--label=replica="$(POD)"')]) == []


def test_offline_deduplication_of_prometheus_pairs_needs_the_penalty_function():
    prometheus = {"type": "kubernetes:monitoring.coreos.com/v1:Prometheus", "provider": K8S, "inputs": {
        "metadata": {"name": "k8s", "namespace": "mon"}, "spec": {"replicas": 2, "thanos": {"image": "x"}}}}
    query = thanos_workload("Deployment", "query", ["query", "--query.replica-label=prometheus_replica",
                                                    "--query.replica-label=replica"], replicas=2)
    one_to_one = compactor("compact", "--deduplication.replica-label=prometheus_replica")
    assert check_stack("thanos-producers-replica-labels", [objstore_secret(), prometheus, query, one_to_one]) == [
        "compact: the compactor deduplicates on prometheus_replica with the one-to-one function: Prometheus HA "
        "replicas (and rulers) scrape on their own clocks, so their blocks never match sample for sample and both "
        "copies stay, merged into one block that doubles every series; set --deduplication.func=penalty (one-to-one "
        "is right only for receive replicas)."]
    penalty = compactor("compact", "--deduplication.replica-label=prometheus_replica", "--deduplication.func=penalty")
    assert check_stack("thanos-producers-replica-labels", [objstore_secret(), prometheus, query, penalty]) == []
    # Receive replicas write identical blocks: one-to-one is right for their label.
    receive = thanos_workload("StatefulSet", "receive", ["receive", "--objstore.config=$(OBJSTORE)",
                                                         "--label=replica=$(POD)"], replicas=3, env=OBJSTORE_ENV)
    receive_only = compactor("compact", "--deduplication.replica-label=replica")
    assert check_stack("thanos-producers-replica-labels", [objstore_secret(), prometheus, query, receive,
                                                           receive_only]) == []
