"""Query rules (policies/thanos_policies/query.py): deduplication labels and function, strict StoreAPI endpoints."""

import copy
import json

import yaml

from ..support.policies import (K8S, OBJSTORE_ENV, _config_map, _mounting, _service, check_stack, chicago, container,
                                named, objstore_secret, thanos_workload)


NOT_STRICT = ("a non-strict endpoint that fails its health check is dropped without a warning, so the query answers "
              "success without that data")
STRICT_FIX = ("List each StoreAPI by its static per-pod address with strict: true (--endpoint.sd-config), so a dead "
              "one stays in the set and the answer warns.")


def _endpoints(query: dict) -> tuple[list[str], int, dict]:
    """The query container's args, the index of its --endpoint.sd-config and that config."""
    args = container(query["inputs"], "thanos-query")["args"]
    i = next(i for i, a in enumerate(args) if a.startswith("--endpoint.sd-config="))
    return args, i, json.loads(args[i].split("=", 1)[1])


def test_a_query_read_by_an_aborting_ruler_or_a_caching_frontend_lists_every_storeapi_strict(prod):
    """A non-strict endpoint that fails is dropped and the answer is a silent success: an aborting group evaluates on
    it, and the query-frontend caches it."""
    policy = "thanos-query-strict-endpoints"
    resources = chicago(prod)
    assert check_stack(policy, resources) == []
    args, i, sd = _endpoints(named(resources, "Deployment", "thanos-query-pods", "thanos"))
    del sd["endpoints"][0]["strict"]
    args[i] = f"--endpoint.sd-config={json.dumps(sd)}"
    loose = sd["endpoints"][0]["address"]
    cached = (f"thanos-query-pods: its StoreAPI endpoint(s) {loose} are not strict, and thanos query-frontend "
              f"thanos-query-frontend-pods caches its answers (--query-range.response-cache-config): {NOT_STRICT}, "
              "and the frontend caches the incomplete answer (it refuses only warned ones) and serves it after the "
              f"store is back, until the entry expires. {STRICT_FIX}")
    assert check_stack(policy, resources) == [cached]
    # The plan's ruler groups warn; one that aborts (Thanos' default when a group names no strategy) is misled too.
    rules = named(resources, "ConfigMap", "thanos-ruler-rules", "thanos")["inputs"]["data"]
    document = yaml.safe_load(rules["thanos.yaml"])
    del document["groups"][0]["partial_response_strategy"]
    rules["thanos.yaml"] = yaml.safe_dump(document)
    assert check_stack(policy, resources) == [
        f"thanos-query-pods: its StoreAPI endpoint(s) {loose} are not strict, and thanos rule thanos-ruler evaluates "
        f"groups with partial_response_strategy abort (thanos-end-to-end) on its answers: {NOT_STRICT} and those "
        f"groups evaluate on it instead of aborting. {STRICT_FIX}", cached]
    sd["endpoints"][0]["strict"] = True
    args[i] = f"--endpoint.sd-config={json.dumps(sd)}"
    assert check_stack(policy, resources) == []


def test_rulers_of_any_shape_that_abort_through_a_query_with_discovered_endpoints_are_refused():
    policy = "thanos-query-strict-endpoints"
    query = thanos_workload("Deployment", "query", ["query", "--endpoint=dnssrv+_grpc._tcp.store.mon.svc",
                                                    "--endpoint-strict=store-0.store.mon.svc:10901"], replicas=2)
    services = [_service("query", "query"), _service("store", "store", headless=True)]
    groups = {"groups": [{"name": "slo", "rules": [{"alert": "Burn", "expr": "vector(1)"}]},
                         {"name": "capacity", "partial_response_strategy": "warn", "rules": []}]}
    rules = _config_map("rules", "slo.yaml", yaml.safe_dump(groups))
    ruler = _mounting(thanos_workload("StatefulSet", "ruler", ["rule", "--rule-file=/etc/rules/*.yaml",
                                                               "--query=dnssrv+_http._tcp.query.mon.svc"]),
                      "rules", "rules", "/etc/rules")
    aborting = (f"query: its StoreAPI endpoint(s) dnssrv+_grpc._tcp.store.mon.svc are not strict, and thanos rule "
                f"ruler evaluates groups with partial_response_strategy abort (slo) on its answers: {NOT_STRICT} and "
                f"those groups evaluate on it instead of aborting. {STRICT_FIX}")
    assert check_stack(policy, [*services, query, rules, ruler]) == [aborting]
    by_config = _mounting(thanos_workload("StatefulSet", "ruler", [
        "rule", "--rule-file=/etc/rules/*.yaml",
        '--query.config=[{"static_configs": ["query:9090"], "scheme": "http"}]']), "rules", "rules", "/etc/rules")
    assert check_stack(policy, [*services, query, rules, by_config]) == [aborting]
    warned = _config_map("rules", "slo.yaml", yaml.safe_dump({"groups": groups["groups"][1:]}))
    assert check_stack(policy, [*services, query, warned, ruler]) == []
    # prometheus-operator: a ThanosRuler's queryEndpoints and the PrometheusRules its ruleSelector picks.
    operator = {"type": "kubernetes:monitoring.coreos.com/v1:ThanosRuler", "provider": K8S, "inputs": {
        "metadata": {"name": "tr", "namespace": "mon"},
        "spec": {"queryEndpoints": ["dnssrv+_http._tcp.query.mon.svc"], "ruleSelector": {"matchLabels": {"r": "1"}}}}}
    picked = {"type": "kubernetes:monitoring.coreos.com/v1:PrometheusRule", "provider": K8S, "inputs": {
        "metadata": {"name": "k8s", "namespace": "mon", "labels": {"r": "1"}},
        "spec": {"groups": [{"name": "k8s", "partial_response_strategy": "abort", "rules": []}]}}}
    assert check_stack(policy, [*services, query, operator, picked]) == [
        aborting.replace("thanos rule ruler", "ThanosRuler tr").replace("(slo)", "(k8s)")]
    strict = thanos_workload("Deployment", "query", ["query", "--endpoint-strict=store-0.store.mon.svc:10901"])
    assert check_stack(policy, [*services, strict, rules, ruler, operator, picked]) == []


def test_receive_replicas_are_deduplicated_with_chain_and_prometheus_pairs_with_penalty(prod):
    policy = "thanos-query-dedup-func"
    assert check_stack(policy, prod) == []  # its queries deduplicate Prometheus, ruler and receive replicas: penalty
    receive = thanos_workload("StatefulSet", "receive", ["receive", "--objstore.config=$(OBJSTORE)",
                                                         "--label=replica=$(POD)"], replicas=3, env=OBJSTORE_ENV)
    query = thanos_workload("Deployment", "query", ["query", "--query.replica-label=replica"], replicas=2)
    assert check_stack(policy, [objstore_secret(), receive, query]) == [
        "query: query deduplicates only receive replicas (replica) with the penalty function (the default "
        "--deduplication.func): receive copies carry identical timestamps, and penalty drops about two samples of "
        "every series whenever the copy it follows goes away (an ingestor restart); set --deduplication.func=chain."]
    chain = thanos_workload("Deployment", "query", ["query", "--query.replica-label=replica",
                                                    "--deduplication.func=chain"], replicas=2)
    assert check_stack(policy, [objstore_secret(), receive, chain]) == []
    prometheus = {"type": "kubernetes:monitoring.coreos.com/v1:Prometheus", "provider": K8S, "inputs": {
        "metadata": {"name": "k8s", "namespace": "mon"}, "spec": {"replicas": 2, "thanos": {"image": "x"}}}}
    both = ["query", "--query.replica-label=replica", "--query.replica-label=prometheus_replica"]
    assert check_stack(policy, [objstore_secret(), receive, prometheus,
                                thanos_workload("Deployment", "query", both, replicas=2)]) == []
    assert check_stack(policy, [objstore_secret(), receive, prometheus, thanos_workload(
        "Deployment", "query", [*both, "--deduplication.func=chain"], replicas=2)]) == [
        "query: query deduplicates prometheus_replica with --deduplication.func=chain: Prometheus HA replicas and "
        "rulers scrape and evaluate on their own clocks, so chain interleaves both copies' samples (a counter seems "
        "to reset at every switch); use penalty, and give receive replicas a query of their own if they need chain."]


def test_every_query_dedups_on_every_replica_label_never_on_identity(prod):
    resources = [copy.deepcopy(r) for r in prod]
    assert check_stack("thanos-query-dedup-labels", resources) == []
    global_query = named(resources, "Deployment", "thanos-query-pods", "thanos-global")
    args = container(global_query["inputs"], "thanos-query")["args"]
    args[:] = [a for a in args if a != "--query.replica-label=receive_replica"] + ["--query.replica-label=cluster"]
    leaf = named(resources, "Deployment", "thanos-query-pods", "thanos")
    container(leaf["inputs"], "thanos-query")["args"].append("--query.replica-label=region")
    assert sorted(check_stack("thanos-query-dedup-labels", resources)) == [
        "query deduplicates on cluster, which tells clusters or producers apart: their different series would be "
        "merged into one. Remove it from --query.replica-label.",
        "query deduplicates on region, which tells clusters or producers apart: their different series would be "
        "merged into one. Remove it from --query.replica-label.",
        "query over other clusters does not deduplicate on receive_replica: a stacked query does not deduplicate for "
        "the one above it, so the global view shows every replica. Add --query.replica-label for each."]


DISTRIBUTED = ["query", "--query.mode=distributed", "--query.partition-label=cluster"]


def test_a_distributed_query_does_not_claim_the_prometheus_engine(prod):
    policy = "thanos-query-distributed-engine"
    assert check_stack(policy, prod) == []
    claimed = thanos_workload("Deployment", "query", [*DISTRIBUTED, "--query.promql-engine=prometheus"], replicas=2)
    assert check_stack(policy, [claimed]) == [
        "query: query runs --query.mode=distributed with --query.promql-engine=prometheus, but distributed mode runs "
        "only on the Thanos engine and Thanos switches to it silently: set --query.promql-engine=thanos."]
    for args in ([*DISTRIBUTED, "--query.promql-engine=thanos"], DISTRIBUTED,
                 ["query", "--query.mode=local", "--query.promql-engine=prometheus"]):
        assert check_stack(policy, [thanos_workload("Deployment", "query", args, replicas=2)]) == []


def test_a_distributed_query_lists_no_store_only_endpoint_of_the_stack(prod):
    policy = "thanos-query-distributed-endpoints"
    assert check_stack(policy, prod) == []
    ruler = thanos_workload("StatefulSet", "ruler", ["rule", "--query=query.mon.svc:10902"], replicas=2)
    leaf = thanos_workload("Deployment", "leaf", ["query", "--endpoint-strict=store-0.store.mon.svc:10901"])
    services = [_service("ruler", "ruler", headless=True), _service("leaf", "leaf")]
    sd = {"endpoints": [{"address": "leaf.mon.svc:10901", "strict": True},
                        {"address": "ruler-0.ruler.mon.svc:10901", "strict": True},
                        {"address": "query.other-region.example:10901", "strict": True}]}
    root = thanos_workload("Deployment", "root", [*DISTRIBUTED, "--query.promql-engine=thanos",
                                                  f"--endpoint.sd-config={json.dumps(sd)}"], replicas=2)
    assert check_stack(policy, [*services, ruler, leaf, root]) == [
        "root: query runs --query.mode=distributed but lists endpoint(s) that serve no Query API: "
        "ruler-0.ruler.mon.svc:10901 (rule). Distributed mode queries only endpoints serving the Query API (thanos "
        "query), so their series are missing from every answer without a warning; put a query in front of them and "
        "list that, or use --query.mode=local."]
    # The same query in local mode reads the ruler's StoreAPI; an address the stack does not declare is not judged.
    local = copy.deepcopy(root)
    container(local["inputs"], "root")["args"][1] = "--query.mode=local"
    assert check_stack(policy, [*services, ruler, leaf, local]) == []
    by_flag = thanos_workload("Deployment", "root", [*DISTRIBUTED, "--endpoint=dnssrv+_grpc._tcp.ruler.mon.svc"])
    assert check_stack(policy, [*services, ruler, by_flag])[0].startswith(
        "root: query runs --query.mode=distributed but lists endpoint(s) that serve no Query API: "
        "dnssrv+_grpc._tcp.ruler.mon.svc (rule).")


def test_a_distributed_query_reads_the_global_ruler_through_a_leaf_query_partitioned_by_its_label(prod):
    """The wiring the plan uses with the global ruler on: a query in front of the ruler, listed by the distributed
    root; with `cluster` alone as partition label the ruler's series sit in no partition and are refused, with its
    `tier` added they pass; so does the store-only policy, which judges the leaf query and not the ruler behind it."""
    policy = "thanos-query-distributed-partitions"
    assert check_stack(policy, prod) == []
    ruler = thanos_workload("StatefulSet", "ruler", ["rule", "--query=query.mon.svc:10902", '--label=tier="global"',
                                                     '--label=rule_replica="$(POD_NAME)"'], replicas=2)
    rules = thanos_workload("Deployment", "rules", ["query", "--endpoint-strict=ruler-0.ruler.mon.svc:10901"], replicas=2)
    services = [_service("ruler", "ruler", headless=True), _service("rules", "rules")]
    sd = {"endpoints": [{"address": "query.chicago.example:10901", "strict": True},
                        {"address": "rules.mon.svc:10901", "strict": True}]}
    root = thanos_workload("Deployment", "root", [*DISTRIBUTED, "--query.promql-engine=thanos",
                                                  f"--endpoint.sd-config={json.dumps(sd)}"], replicas=2)
    assert check_stack(policy, [*services, ruler, rules, root]) == [
        "root: query runs --query.mode=distributed with --query.partition-label cluster, but reads producers that "
        "carry none of them: ruler-0.ruler.mon.svc:10901 through rules.mon.svc:10901 (labels tier). Their series sit "
        "in no partition, so a join on the partition labels is answered by each leaf alone and misses them; add a "
        "--query.partition-label those producers carry."]
    assert check_stack("thanos-query-distributed-endpoints", [*services, ruler, rules, root]) == []
    partitioned = copy.deepcopy(root)
    container(partitioned["inputs"], "root")["args"].append("--query.partition-label=tier")
    assert check_stack(policy, [*services, ruler, rules, partitioned]) == []
    # Without partition labels Thanos partitions on every external label: nothing to judge; nor in local mode.
    for args in (["query", "--query.mode=distributed", f"--endpoint.sd-config={json.dumps(sd)}"],
                 ["query", "--query.partition-label=cluster", f"--endpoint.sd-config={json.dumps(sd)}"]):
        assert check_stack(policy, [*services, ruler, rules, thanos_workload("Deployment", "root", args, 2)]) == []
