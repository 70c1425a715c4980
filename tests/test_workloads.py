"""Workload builders (pure, no mocks) and the planned manifests: the Thanos invariants hold everywhere."""

import json

import pytest
import yaml

import config
from components.cluster import plan_cluster
from components.platform import common
from components.platform.common import component_role
from components.platform.kube import WORKLOAD_KINDS, ClusterContext, pod_references
from components.thanos import compactor, prometheus, query, receive, ruler, store
from tests.network_policies import reachable
from config.thanos import PrometheusSpec, ReceiveSpec, StoreSpec, ThanosSpec
from preflight.manifests import is_object

from tests.support.stacks import STACKS, stack_config

CTX = ClusterContext(cluster="chicago", region="us-east-1", namespace="thanos", image="quay.io/thanos/thanos:v0.42.4")


def flag_values(args, name):
    return [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]


def test_prometheus_block_durations_equal_and_two_hours():
    args = prometheus.prometheus_args(PrometheusSpec())
    assert flag_values(args, "storage.tsdb.min-block-duration") == flag_values(args, "storage.tsdb.max-block-duration") == ["2h"]
    assert "--web.enable-admin-api" not in args and "--web.enable-lifecycle" in args


def test_prometheus_external_labels_unique_and_persistent():
    labels = prometheus.external_labels(CTX)
    assert labels == {"cluster": "chicago", "region": "us-east-1", "prometheus_replica": "${POD_NAME}"}


def test_replica_labels_consistent_between_producers_query_and_compactor():
    stack = config.load(stack_config("prod"))
    plan = plan_cluster(stack, "thanos", compactor_here=True)
    query_args = query.query_args(stack.thanos.query, plan.endpoints, plan.replica_labels)
    assert set(flag_values(query_args, "query.replica-label")) == set(common.REPLICA_LABELS)
    ruler_labels = [label.split("=")[0] for label in ruler.ruler_labels(CTX)]
    receive_args = receive.ingestor_args(CTX, stack.thanos.receive)
    producers = {"prometheus_replica"} | set(ruler_labels) | {v.split("=")[0] for v in flag_values(receive_args, "label")}
    for label in common.REPLICA_LABELS:
        assert label in producers
    compact_args = compactor.compactor_args(stack.thanos.compactor, plan.compactor_dedup_labels)
    assert flag_values(compact_args, "deduplication.replica-label") == ["receive_replica"]
    assert not any(a.startswith("--deduplication.func") for a in compact_args)  # one-to-one, right for receive


def test_offline_dedup_of_receive_replicas_can_be_turned_off():
    raw = stack_config("prod")
    raw = {**raw, "thanos": {**raw["thanos"], "compactor": {**raw["thanos"]["compactor"],
                                                            "deduplicate-receive-replicas": False}}}
    assert plan_cluster(config.load(raw), "thanos", compactor_here=True).compactor_dedup_labels == []
    single = {**raw, "thanos": {**raw["thanos"], "receive": {"ingestors": 3, "replication-factor": 1}}}
    assert plan_cluster(config.load(single), "thanos", compactor_here=True).compactor_dedup_labels == []


def test_query_uses_endpoint_sd_config_not_removed_flags():
    stack = config.load(stack_config("prod"))
    plan = plan_cluster(stack, "thanos", compactor_here=False)
    args = query.query_args(stack.thanos.query, query.endpoint_sd_config(plan.endpoints), plan.replica_labels)
    assert not any(a.startswith(("--store=", "--endpoint=")) for a in args)
    sd = json.loads(flag_values(args, "endpoint.sd-config")[0])
    addresses = [e["address"] for e in sd["endpoints"]]
    assert all(e["strict"] is True for e in sd["endpoints"])
    assert any("thanos-prometheus-1.thanos-prometheus." in a for a in addresses)
    assert any("thanos-receive-" in a for a in addresses)


def test_query_lists_every_storeapi_pod_strict_so_a_dead_one_is_a_warning():
    """Every replica of every StoreAPI by its pod name, strict (an SD name cannot be, and a non-strict endpoint that
    dies is dropped from the answers without a warning); the ingestors exactly as the hashring names them."""
    stack = config.load(stack_config("prod"))
    plan = plan_cluster(stack, "thanos", compactor_here=True, cluster="chicago")
    spec = stack.thanos
    sd = query.endpoint_sd_config(plan.endpoints)
    assert all(e["strict"] is True and "+" not in e["address"] for e in sd["endpoints"])
    assert len(plan.endpoints) == len(set(plan.endpoints)) == (
        spec.prometheus.replicas + len(store.shard_names(spec.store)) * spec.store.replicas + spec.ruler.replicas
        + spec.receive.ingestors)
    ring = receive.hashring(spec.receive, "thanos", ("us-east-1a", "us-east-1b", "us-east-1c"))
    ring_addresses = {e["address"] for e in ring[0]["endpoints"]}
    assert ring_addresses == {a for a in plan.endpoints if ".thanos-receive." in a}, ring_addresses


def test_hashring_covers_the_replication_factor():
    spec = ReceiveSpec(ingestors=5, replication_factor=3)
    ring = receive.hashring(spec, "thanos")
    assert len(ring[0]["endpoints"]) == 5 >= spec.replication_factor
    assert ring[0]["algorithm"] == "ketama"
    assert ring[0]["endpoints"][0] == "thanos-receive-0.thanos-receive.thanos.svc.cluster.local:10901"
    local = flag_values(receive.ingestor_args(CTX, spec), "receive.local-endpoint")[0]
    assert local == "$(POD_NAME).thanos-receive.$(POD_NAMESPACE).svc.cluster.local:10901"
    assert flag_values(receive.router_args(CTX, spec), "receive.replication-factor") == ["3"]


def test_store_shards_cover_every_block_exactly_once():
    spec = StoreSpec(shards=3)
    configs = [store.shard_relabel_config(i, 3) for i in range(3)]
    assert {c[0]["modulus"] for c in configs} == {3}
    assert sorted(c[1]["regex"] for c in configs) == ["0", "1", "2"]
    assert store.shard_names(spec) == ["thanos-store-0", "thanos-store-1", "thanos-store-2"]
    assert store.store_endpoints(spec, "thanos")[:2] == ["thanos-store-0-0.thanos-store-0.thanos.svc.cluster.local:10901",
                                                         "thanos-store-0-1.thanos-store-0.thanos.svc.cluster.local:10901"]
    assert len(store.store_endpoints(spec, "thanos")) == 3 * spec.replicas


def test_store_has_limits_and_a_chunk_pool_within_its_memory():
    args = store.store_args(CTX, StoreSpec(), config.load(stack_config("prod")).thanos.caches, 0)
    assert flag_values(args, "store.limits.request-series") == ["1000000"]
    assert flag_values(args, "store.limits.request-samples") == ["100000000"]
    assert flag_values(args, "chunk-pool-size") == ["1024MiB"]  # a quarter of the 4Gi limit


@pytest.mark.parametrize("stack", STACKS)
def test_every_pod_is_hardened_probed_and_sized(planned, stack):
    pods = containers = 0
    # Only a ServiceAccount bound to a (read-only) ClusterRole gets its token: Prometheus and kube-state-metrics.
    bound = {(subject["namespace"], subject["name"]) for binding in planned[stack].objects("ClusterRoleBinding")
             for subject in binding["subjects"]}
    # azure leaves node and cluster metrics to its own prometheus-operator stack; its operator-mode Prometheus still
    # discovers every ServiceMonitor target through the API server, so it keeps the read-only discovery role.
    collecting = stack != "azure"
    assert {name for _, name in bound} == ({"thanos-prometheus", "thanos-kube-state-metrics"} if collecting
                                           else {"thanos-prometheus"})
    for obj in planned[stack].objects():
        if obj["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        pod = obj["spec"]["template"]["spec"]
        pods += 1
        containers += len(pod["containers"])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        account = (obj["metadata"]["namespace"], pod.get("serviceAccountName"))
        assert pod["automountServiceAccountToken"] is (account in bound), obj["metadata"]["name"]
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not any(
            "hostPath" in v for v in pod.get("volumes", [])), obj["metadata"]["name"]
        for c in pod["containers"]:
            ctx = c["securityContext"]
            name = f"{obj['metadata']['name']}/{c['name']}"
            assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["capabilities"]["drop"] == ["ALL"], name
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], name
            if obj["kind"] != "Job":
                assert "livenessProbe" in c and "readinessProbe" in c, name
            if c["image"].startswith("quay.io/thanos/thanos:"):
                assert c["livenessProbe"]["httpGet"]["path"] == "/-/healthy", name
                assert c["readinessProbe"]["httpGet"]["path"] == "/-/ready", name
    assert pods >= 12 and containers > pods  # every workload, Prometheus with its sidecar and ruler with its reloader


@pytest.mark.parametrize("stack", STACKS)
def test_multi_replica_workloads_have_pdb_anti_affinity_and_zone_spread(planned, stack):
    for cluster in planned[stack].clusters():
        check_disruption_and_spread(planned[stack].objects(cluster=cluster), stack)


def check_disruption_and_spread(objects, stack):
    pdbs = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    hpas = {o["spec"]["scaleTargetRef"]["name"]: o for o in objects if o["kind"] == "HorizontalPodAutoscaler"}
    for obj in objects:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        replicas = obj["spec"].get("replicas") or hpas[obj["metadata"]["name"]]["spec"]["minReplicas"]
        selector = obj["spec"]["selector"]["matchLabels"]
        labels = obj["spec"]["template"]["metadata"]["labels"]
        # Exactly one PDB may select a pod: the eviction API refuses pods that two budgets select.
        matching = [p for p in pdbs if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        if replicas < 2:
            assert not matching, f"{obj['metadata']['name']}: a PDB on a singleton blocks drains"
            continue
        assert len(matching) == 1, obj["metadata"]["name"]
        assert matching[0]["spec"]["maxUnavailable"] >= 1
        pod = obj["spec"]["template"]["spec"]
        anti_affinity = pod["affinity"]["podAntiAffinity"]
        if stack == "dev":  # node-spread ScheduleAnyway: one kind node, replicas may share it
            terms = [t["podAffinityTerm"] for t in anti_affinity["preferredDuringSchedulingIgnoredDuringExecution"]]
        else:
            terms = anti_affinity["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms[0]["topologyKey"] == "kubernetes.io/hostname"
        assert terms[0]["labelSelector"]["matchLabels"].items() <= selector.items()
        spread = pod["topologySpreadConstraints"][0]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone"
        assert spread["whenUnsatisfiable"] == ("ScheduleAnyway" if stack == "dev" else "DoNotSchedule")


def test_draining_ingestors_leave_the_ring_but_keep_running_and_serving_queries():
    """`draining: 3` of 9 over three zones: each zone's highest ingestor leaves the ring (what `ingestors: 6` would
    remove), every StatefulSet keeps its three pods, and Query still lists all nine (they hold the recent samples)."""
    zoned = ClusterContext(**{**CTX.__dict__, "zones": ("a", "b", "c")})
    spec = ReceiveSpec(ingestors=9, draining=3)
    objects = receive.build_receive(zoned, spec)
    ring_map = next(o for o in objects if o["kind"] == "ConfigMap")
    ring = json.loads(ring_map["data"]["hashrings.json"])[0]
    assert [e["address"].split(".")[0] for e in ring["endpoints"]] == [
        f"thanos-receive-{zone}-{i}" for zone in "abc" for i in range(2)]
    assert json.loads(ring_map["data"]["hashrings.json"]) == receive.hashring(ReceiveSpec(ingestors=6), "thanos",
                                                                               zoned.zones)
    assert [o["spec"]["replicas"] for o in objects if o["kind"] == "StatefulSet"] == [3, 3, 3]
    assert len(receive.receive_endpoints(spec, "thanos", zoned.zones)) == 9
    # The routers carry the ring's hash: a new ring restarts them.
    router = next(o for o in objects if o["kind"] == "Deployment")
    annotations = router["spec"]["template"]["metadata"]["annotations"]
    assert annotations[receive.HASHRING_ANNOTATION] == receive.ring_hash(ring_map["data"]["hashrings.json"])
    undrained = receive.build_receive(zoned, ReceiveSpec(ingestors=9))
    assert next(o for o in undrained if o["kind"] == "Deployment")["spec"]["template"]["metadata"]["annotations"][
        receive.HASHRING_ANNOTATION] != annotations[receive.HASHRING_ANNOTATION]


def test_scaling_ingestors_never_changes_their_pod_template():
    """A new template would roll the ingestors the ring lists while the new ones start (1 -> 3 added spread rules)."""
    def template(count):
        spec = ReceiveSpec(ingestors=count, replication_factor=1)
        return next(o for o in receive.build_receive(CTX, spec) if o["kind"] == "StatefulSet")["spec"]["template"]

    assert template(1) == template(3) == template(9)


def test_receive_pdb_allows_floor_rf_over_two(planned):
    pdb = next(o for o in planned["prod"].objects("PodDisruptionBudget") if o["metadata"]["name"] == "thanos-receive")
    assert pdb["spec"]["maxUnavailable"] == 1  # floor(3 / 2)


@pytest.mark.parametrize("stack", STACKS)
def test_one_compactor_per_bucket_never_scaled(planned, stack):
    compactors = [o for o in planned[stack].objects("StatefulSet") if o["metadata"]["name"] == "thanos-compactor"]
    assert len(compactors) == len(config.load(stack_config(stack)).regions)
    for c in compactors:
        assert c["spec"]["replicas"] == 1 and c["spec"]["volumeClaimTemplates"]
        assert "--wait" in c["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [h for h in planned[stack].objects("HorizontalPodAutoscaler")
                if h["spec"]["scaleTargetRef"]["name"] == "thanos-compactor"]


def test_prod_compactor_settings(planned):
    c = next(o for o in planned["prod"].objects("StatefulSet") if o["metadata"]["name"] == "thanos-compactor")
    args = c["spec"]["template"]["spec"]["containers"][0]["args"]
    assert flag_values(args, "retention.resolution-raw") == ["30d"]
    assert flag_values(args, "retention.resolution-5m") == ["180d"] and flag_values(args, "retention.resolution-1h") == ["2y"]
    assert flag_values(args, "delete-delay") == ["48h"]
    assert c["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "211Gi"  # the capacity plan


def test_ruler_drops_its_replica_label_from_alerts(planned):
    ruler = next(o for o in planned["prod"].objects("StatefulSet") if o["metadata"]["name"] == "thanos-ruler")
    args = ruler["spec"]["template"]["spec"]["containers"][0]["args"]
    assert 'rule_replica="$(POD_NAME)"' in flag_values(args, "label")
    assert flag_values(args, "alert.label-drop") == ["rule_replica"]
    assert ruler["spec"]["replicas"] == 2


def test_objstore_is_only_in_a_secret_mounted_as_a_file(planned):
    for stack in STACKS:
        for obj in planned[stack].objects("ConfigMap"):
            for key, text in obj.get("data", {}).items():
                if key.endswith(".py"):
                    continue  # the validation script
                document = yaml.safe_load(text)
                assert not (isinstance(document, dict) and {"type", "config"} <= set(document)), obj["metadata"]
        for obj in planned[stack].objects():
            if obj["kind"] in ("Deployment", "StatefulSet"):
                for c in obj["spec"]["template"]["spec"]["containers"]:
                    assert not any(a.startswith("--objstore.config=") for a in c.get("args", []))


def test_prod_has_hpa_for_query_and_frontend(planned):
    targets = sorted({h["spec"]["scaleTargetRef"]["name"] for h in planned["prod"].objects("HorizontalPodAutoscaler")})
    assert targets == ["thanos-query-frontend-pods", "thanos-query-pods"]


def test_services_are_named_for_the_thanos_mixin(planned):
    names = {s["metadata"]["name"] for s in planned["prod"].objects("Service")}
    for component in ("query", "query-frontend", "store", "compactor", "ruler", "receive", "sidecar", "bucket-web"):
        assert any(f"thanos-{component}" in n for n in names), component
    scrape = yaml.safe_load(next(c for c in planned["prod"].objects("ConfigMap")
                                 if c["metadata"]["name"] == "thanos-prometheus")["data"]["prometheus.yml"])
    jobs = {j["job_name"] for j in scrape["scrape_configs"]}
    assert {"thanos-compactor", "thanos-sidecar", "thanos-ruler", "thanos-receive"} <= jobs


def pod(namespace, name, instance=None, **extra):
    """A pod of the plan's labels: name, role (app.kubernetes.io/component), part-of and instance."""
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component_role(name.removeprefix("thanos-")),
              "app.kubernetes.io/part-of": "thanos", **extra}
    if instance:
        labels["app.kubernetes.io/instance"] = instance
    return {"ns": namespace, "labels": labels}


def test_network_policies_allow_exactly_the_port_table(planned):
    """The dev policies evaluated with Kubernetes' semantics: each flow of the port table is open, and the flows the
    old policies allowed from anywhere (remote-write, query-frontend) or that no one needs are closed. dev has
    tenants: the ingress controller reaches only the tenant gate, which reaches the query-frontend (a tenant's
    readers) and the global query (operators)."""
    policies = planned["dev"].objects("NetworkPolicy")
    leaf_query, leaf_store = pod("thanos-chicago", "thanos-query", "chicago"), pod("thanos-chicago", "thanos-store", "chicago")
    sidecar = pod("thanos-chicago", "thanos-prometheus", "chicago")
    global_query = pod("thanos-global", "thanos-query", "global")
    global_frontend = pod("thanos-global", "thanos-query-frontend", "global")
    gate = pod("thanos-global", "thanos-tenant-gate", "global")
    stranger = {"ns": "default", "labels": {"app": "curl"}}
    controller = {"ns": "ingress-nginx", "labels": {"app.kubernetes.io/name": "ingress-nginx"}}
    dns = {"ns": "kube-system", "labels": {"k8s-app": "kube-dns"}}
    allowed = [(global_query, leaf_query, 10901), (leaf_query, sidecar, 10901), (leaf_query, leaf_store, 10901),
               (controller, gate, 10902), (gate, global_frontend, 10902), (gate, global_query, 10902),
               (leaf_store, {"ip": "52.216.0.1"}, 443),
               (global_query, pod("thanos-seattle", "thanos-query", "seattle"), 10901)]
    denied = [(global_query, leaf_store, 10901), (global_query, leaf_query, 10902), (stranger, leaf_query, 10901),
              (stranger, pod("thanos-chicago", "thanos-query-frontend", "chicago"), 10902),
              (stranger, pod("thanos-chicago", "thanos-receive-router", "chicago"), 19291),
              (controller, global_query, 10902), (leaf_query, {"ip": "52.216.0.1"}, 443),
              (global_query, {"ip": "52.216.0.1"}, 443), (stranger, global_frontend, 10902),
              (controller, global_frontend, 10902), (stranger, gate, 10902)]
    for source, target, port in allowed:
        assert reachable(policies, source, target, port), (source, target, port)
    for source, target, port in denied:
        assert not reachable(policies, source, target, port), (source, target, port)
    for protocol in ("UDP", "TCP"):  # SRV answers that do not fit UDP are retried over TCP
        assert reachable(policies, global_query, dns, 53, protocol) and reachable(policies, sidecar, dns, 53, protocol)
    assert not reachable(policies, global_query, dns, 80)


def test_every_pod_carries_the_role_the_policies_select_by(planned):
    for stack in STACKS:
        for obj in planned[stack].objects():
            if obj["kind"] in WORKLOAD_KINDS:
                spec = obj["spec"].get("jobTemplate", {}).get("spec", obj["spec"])
                labels = spec["template"]["metadata"]["labels"]
                if labels.get("app.kubernetes.io/part-of") == "thanos":
                    name = labels["app.kubernetes.io/name"]
                    assert labels["app.kubernetes.io/component"] == component_role(name.removeprefix("thanos-")), name


def test_grafana_beside_a_clusters_query_frontend_reaches_it():
    """Without a global view Grafana runs in the cluster namespace and reads that query-frontend; nothing else does."""
    from components.platform.namespace import baseline_policies, cluster_flows

    ctx = ClusterContext(cluster="c", region="r", namespace="thanos", image="quay.io/thanos/thanos:v0.42.4")
    grafana, frontend = pod("thanos", "thanos-grafana", "c"), pod("thanos", "thanos-query-frontend", "c")
    with_grafana = baseline_policies(ctx, [], cluster_flows(False, grafana=True))
    assert reachable(with_grafana, grafana, frontend, 10902)
    assert not reachable(with_grafana, pod("thanos", "thanos-compactor", "c"), frontend, 10902)
    assert not reachable(baseline_policies(ctx, [], cluster_flows(False)), grafana, frontend, 10902)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_inside_a_namespace_each_server_accepts_only_its_clients(planned, stack):
    """A compromised pod of a Thanos namespace reaches no admin or write endpoint it has no business with: not
    Prometheus' API (lifecycle, and the TSDB if an admin API were on; only the routers query it, for their head-series
    limits), not the ingestors past the routers, not a cache
    it does not use, not Alertmanager; Grafana, which trusts its auth-proxy header, is reached only through the entry
    point."""
    cluster, namespace = ("chicago", "thanos-chicago") if stack == "dev" else ("chicago", "thanos")
    policies = planned[stack].objects("NetworkPolicy", cluster=cluster)
    def here(name):
        return pod(namespace, name, cluster)
    prometheus, compactor, query = here("thanos-prometheus"), here("thanos-compactor"), here("thanos-query")
    receive, router, store = here("thanos-receive"), here("thanos-receive-router"), here("thanos-store")
    frontend, bucket_web = here("thanos-query-frontend"), here("thanos-bucket-web")
    index_cache, results_cache = here("thanos-memcached-index"), here("thanos-memcached-query-results")
    alertmanager, ruler = here("thanos-alertmanager"), here("thanos-ruler")
    allowed = [(query, prometheus, 10901), (query, store, 10901), (query, receive, 10901), (router, receive, 10901),
               (store, index_cache, 11211), (frontend, results_cache, 11211), (frontend, query, 10902),
               (ruler, query, 10902), (ruler, alertmanager, 9093), (prometheus, alertmanager, 9093),
               (prometheus, compactor, 10902), (prometheus, prometheus, 9090), (prometheus, index_cache, 9150),
               (bucket_web, router, 19291), (router, prometheus, 9090)]  # the last: its head-series limits
    denied = [(compactor, prometheus, 9090), (query, prometheus, 9090), (bucket_web, prometheus, 9090),
              (receive, prometheus, 9090),
              (compactor, receive, 19291), (compactor, receive, 10901), (router, receive, 19291),
              (compactor, index_cache, 11211), (frontend, index_cache, 11211), (store, results_cache, 11211),
              (compactor, alertmanager, 9093), (bucket_web, store, 10901), (compactor, query, 10902),
              (store, prometheus, 10901)]
    for source, target, port in allowed:
        assert reachable(policies, source, target, port), (source["labels"]["app.kubernetes.io/name"],
                                                           target["labels"]["app.kubernetes.io/name"], port)
    for source, target, port in denied:
        assert not reachable(policies, source, target, port), (source["labels"]["app.kubernetes.io/name"],
                                                               target["labels"]["app.kubernetes.io/name"], port)
    tier = planned[stack].objects("NetworkPolicy", cluster="chicago")
    grafana = pod("thanos-global", "thanos-grafana", "global")
    global_frontend = pod("thanos-global", "thanos-query-frontend", "global")
    global_query = pod("thanos-global", "thanos-query", "global")
    assert not reachable(tier, global_frontend, grafana, 3000) and not reachable(tier, global_query, grafana, 3000)
    if stack == "dev":  # tenants: only operators reach Grafana, through the gate, and it reads every tenant
        gate = pod("thanos-global", "thanos-tenant-gate", "global")
        assert reachable(tier, gate, grafana, 3000) and reachable(tier, grafana, global_query, 10902)
        assert not reachable(tier, grafana, global_frontend, 10902)
        assert not reachable(tier, {"ns": "ingress-nginx", "labels": {"app": "x"}}, grafana, 3000)
    else:
        assert reachable(tier, grafana, global_frontend, 10902)
    if stack == "prod":  # oauth2-proxy signs users in; Grafana trusts its X-Forwarded-Email
        proxy = pod("thanos-global", "thanos-oauth2-proxy", "global")
        assert reachable(tier, proxy, grafana, 3000) and reachable(tier, proxy, global_frontend, 10902)
        assert not reachable(tier, {"ns": "ingress-nginx", "labels": {"app": "x"}}, grafana, 3000)


def test_network_policies_let_the_observing_half_through_and_nothing_else(planned):
    """Alertmanager gossips on TCP and UDP and is reached by its own Prometheus and rulers and the global ruler of its
    cluster; Prometheus scrapes anything; kube-state-metrics is scraped by the Prometheus of either simulated cluster;
    Grafana is reached through the tenant gate (dev has tenants; the gate checks basic auth) and reaches the global
    query (every tenant)."""
    policies = planned["dev"].objects("NetworkPolicy")
    chicago_am = pod("thanos-chicago", "thanos-alertmanager", "chicago")
    seattle_am = pod("thanos-seattle", "thanos-alertmanager", "seattle")
    chicago_prometheus = pod("thanos-chicago", "thanos-prometheus", "chicago")
    seattle_prometheus = pod("thanos-seattle", "thanos-prometheus", "seattle")
    ksm = pod("thanos-chicago", "kube-state-metrics", "chicago")
    global_ruler, grafana = pod("thanos-global", "thanos-ruler", "global"), pod("thanos-global", "thanos-grafana", "global")
    controller = {"ns": "ingress-nginx", "labels": {"app.kubernetes.io/name": "ingress-nginx"}}
    gate = pod("thanos-global", "thanos-tenant-gate", "global")
    stranger = {"ns": "default", "labels": {"app": "curl"}}
    allowed = [(chicago_am, chicago_am, 9094, "UDP"), (chicago_am, chicago_am, 9094, "TCP"),
               (chicago_prometheus, chicago_am, 9093, "TCP"),
               (pod("thanos-chicago", "thanos-ruler", "chicago"), chicago_am, 9093, "TCP"),
               (global_ruler, chicago_am, 9093, "TCP"), (chicago_am, {"ip": "3.4.5.6"}, 443, "TCP"),
               (chicago_prometheus, pod("default", "some-app"), 8080, "TCP"), (seattle_prometheus, ksm, 8080, "TCP"),
               (ksm, {"ip": "10.96.0.1"}, 443, "TCP"), (gate, grafana, 3000, "TCP"),
               (grafana, pod("thanos-global", "thanos-query", "global"), 10902, "TCP"),
               (chicago_prometheus, pod("thanos-global", "thanos-query", "global"), 10902, "TCP"),
               (chicago_prometheus, pod("thanos-global", "thanos-memcached-query-results", "global"), 9150, "TCP")]
    denied = [(stranger, chicago_am, 9093, "TCP"), (global_ruler, seattle_am, 9093, "TCP"),
              (seattle_am, chicago_am, 9094, "UDP"), (stranger, ksm, 8080, "TCP"), (stranger, grafana, 3000, "TCP"),
              (controller, grafana, 3000, "TCP"), (grafana, pod("thanos-chicago", "thanos-query", "chicago"), 10902, "TCP"),
              (seattle_prometheus, pod("thanos-global", "thanos-query", "global"), 10902, "TCP"),
              (pod("thanos-chicago", "thanos-query", "chicago"), {"ip": "3.4.5.6"}, 443, "TCP")]
    for source, target, port, protocol in allowed:
        assert reachable(policies, source, target, port, protocol), (source, target, port, protocol)
    for source, target, port, protocol in denied:
        assert not reachable(policies, source, target, port, protocol), (source, target, port, protocol)



IMDS, POD_IDENTITY_AGENT, S3 = {"ip": "169.254.169.254"}, {"ip": "169.254.170.23"}, {"ip": "52.216.0.1"}


@pytest.mark.parametrize("stack,cluster", [("prod", "chicago"), ("azure", "amsterdam"), ("gcp", "iowa")])
def test_no_pod_reaches_the_nodes_credentials_unless_its_identity_goes_through_them(planned, stack, cluster):
    """IRSA and Azure workload identity never use the instance metadata service: no pod reaches link-local on any
    port. GKE's Workload Identity is served by the metadata server: bucket users reach it there, nothing else does."""
    policies = planned[stack].objects("NetworkPolicy", cluster=cluster)
    store, compactor = pod("thanos", "thanos-store", cluster), pod("thanos", "thanos-compactor", cluster)
    open_egress = [pod("thanos", "thanos-alertmanager", cluster), pod("thanos", "thanos-prometheus", cluster), store]
    for source in (store, compactor):
        assert reachable(policies, source, S3, 443)
    gke = stack == "gcp"
    assert reachable(policies, store, IMDS, 80) == gke and reachable(policies, compactor, IMDS, 80) == gke
    for source in open_egress:
        for target, port in ((IMDS, 443), (IMDS, 8080), (POD_IDENTITY_AGENT, 80), (POD_IDENTITY_AGENT, 443)):
            assert not reachable(policies, source, target, port), (source["labels"], target, port)
        if not gke:
            assert not reachable(policies, source, IMDS, 80), source["labels"]
    assert not reachable(policies, pod("thanos", "thanos-alertmanager", cluster), IMDS, 80)


def test_leaf_grpc_accepts_only_the_configured_networks(planned):
    leaf = next(p for p in planned["prod"].objects("NetworkPolicy", cluster="seattle")
                if p["metadata"]["name"] == "thanos-leaf-grpc-ingress")
    assert leaf["spec"]["ingress"] == [{"from": [{"ipBlock": {"cidr": "10.10.0.0/16"}}, {"ipBlock": {"cidr": "10.20.0.0/16"}}],
                                        "ports": [{"port": 10901, "protocol": "TCP"}]}]
    service = next(s for s in planned["prod"].objects("Service", cluster="seattle")
                   if s["metadata"]["name"] == "thanos-query-grpc")
    assert service["spec"]["type"] == "LoadBalancer" and [p["port"] for p in service["spec"]["ports"]] == [10901]
    assert service["spec"]["loadBalancerSourceRanges"] == ["10.10.0.0/16", "10.20.0.0/16"]
    assert service["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"


def test_namespace_enforces_restricted_pod_security(planned):
    namespace = planned["prod"].objects("Namespace")[0]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_store_time_partitions_times_hash_shards():
    spec = StoreSpec(shards=2, time_partitions=[{"max-time": "2w"}, {"min-time": "3w"}])
    assert store.shard_names(spec) == ["thanos-store-t0-0", "thanos-store-t0-1", "thanos-store-t1-0",
                                       "thanos-store-t1-1"]
    caches = config.load(stack_config("prod")).thanos.caches
    old = store.store_args(CTX, spec, caches, 1, 0)
    new = store.store_args(CTX, spec, caches, 0, 1)
    assert flag_values(old, "max-time") == ["-2w"] and not flag_values(old, "min-time")
    assert flag_values(new, "min-time") == ["-3w"] and not flag_values(new, "max-time")
    assert json.loads(flag_values(old, "selector.relabel-config")[0])[1]["regex"] == "1"
    objects = store.build_store(CTX, spec, caches)
    selectors = [o["spec"]["selector"]["matchLabels"]["thanos.io/shard"] for o in objects if o["kind"] == "StatefulSet"]
    assert selectors == ["t0-0", "t0-1", "t1-0", "t1-1"]


def test_receive_runs_per_zone_with_a_zone_aware_hashring(planned):
    """prod lists three zones per cluster: one ingestor StatefulSet per zone, pinned by node affinity, all under the
    one headless Service, and every hashring endpoint tagged with its zone (ketama then spreads a series' copies)."""
    objects = [o for o in planned["prod"].objects() if o["metadata"].get("namespace") == "thanos"]
    chicago = [o for o in objects if o["metadata"]["labels"].get("app.kubernetes.io/instance") == "chicago"]
    ingestors = {o["metadata"]["name"]: o for o in chicago if o["kind"] == "StatefulSet"
                 and o["metadata"]["name"].startswith("thanos-receive-")}
    zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert sorted(ingestors) == [f"thanos-receive-{z}" for z in zones]
    for zone in zones:
        sts = ingestors[f"thanos-receive-{zone}"]
        assert sts["spec"]["replicas"] == 2 and sts["spec"]["serviceName"] == "thanos-receive"
        term = sts["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"][0]
        assert term == {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}
    ring_map = next(o for o in chicago if o["metadata"]["name"] == "thanos-receive-hashring")
    ring = json.loads(ring_map["data"]["hashrings.json"])[0]
    assert ring["algorithm"] == "ketama"
    assert [e["az"] for e in ring["endpoints"]] == [z for z in zones for _ in range(2)]
    assert ring["endpoints"][0]["address"] == "thanos-receive-us-east-1a-0.thanos-receive.thanos.svc.cluster.local:10901"
    service = next(o for o in chicago if o["kind"] == "Service" and o["metadata"]["name"] == "thanos-receive")
    assert "thanos.io/zone" not in service["spec"]["selector"]


def test_receive_defaults_leave_headroom():
    spec = ReceiveSpec()
    assert (spec.ingestors, spec.replication_factor, spec.retention) == (4, 3, "2d")
    assert receive.zone_statefulsets(ReceiveSpec(ingestors=4), ("a", "b", "c")) == [
        ("thanos-receive-a", "a", 2), ("thanos-receive-b", "b", 1), ("thanos-receive-c", "c", 1)]


def test_zone_spread_is_a_config_choice():
    pod = common.pod_spec("sa", [], selector={"a": "b"}, replicas=2, zone_spread="ScheduleAnyway")
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert common.pod_spec("sa", [], selector={"a": "b"}, replicas=2)["topologySpreadConstraints"][0][
        "whenUnsatisfiable"] == "DoNotSchedule"
    assert ThanosSpec().zone_spread == "DoNotSchedule"
    assert config.load(stack_config("dev")).thanos.zone_spread == "ScheduleAnyway"


def test_node_spread_is_a_config_choice():
    hard = common.pod_spec("sa", [], selector={"a": "b"}, replicas=2)["affinity"]["podAntiAffinity"]
    assert list(hard) == ["requiredDuringSchedulingIgnoredDuringExecution"]
    soft = common.pod_spec("sa", [], selector={"a": "b"}, replicas=2, node_spread="ScheduleAnyway")
    assert list(soft["affinity"]["podAntiAffinity"]) == ["preferredDuringSchedulingIgnoredDuringExecution"]
    assert ThanosSpec().node_spread == "DoNotSchedule"
    assert config.load(stack_config("dev")).thanos.node_spread == "ScheduleAnyway"


@pytest.mark.parametrize("stack", STACKS)
def test_objects_wait_for_their_namespace_and_workloads_for_what_their_pods_use(planned, stack):
    # The real engine creates in parallel what no dependency orders: a pod created before its ServiceAccount fails
    # (FailedCreate) and the rollout stalls.
    resources = planned[stack].plan["resources"]
    children: dict[str, list[str]] = {}
    for r in resources:
        children.setdefault(r["parent"], []).append(r["urn"])

    def descendants(urn: str) -> set[str]:
        found = {urn}
        for child in children.get(urn, []):
            found |= descendants(child)
        return found

    def waits_for(urn: str, seen: set[str] | None = None) -> set[str]:
        seen = set() if seen is None else seen
        for dependency in next(r for r in resources if r["urn"] == urn)["dependsOn"]:
            for reached in descendants(dependency) - seen:
                seen.add(reached)
                waits_for(reached, seen)
        return seen

    objects = {(r["provider"], r["inputs"]["metadata"].get("namespace", ""), r["type"].split(":")[-1],
                r["inputs"]["metadata"]["name"]): r for r in resources
               if r["custom"] and is_object(r["type"])}
    missing = []
    for (provider, namespace, kind, name), r in objects.items():
        needs = [(provider, "", "Namespace", namespace)] if namespace else []
        if kind in WORKLOAD_KINDS:
            manifest = {"kind": kind, "spec": r["inputs"].get("spec", {})}
            needs += [(provider, namespace, k, n) for k, n in pod_references(manifest)]
        before = waits_for(r["urn"])
        missing += [f"{kind} {namespace}/{name} -> {need[2]} {need[3]}" for need in needs
                    if need in objects and objects[need]["urn"] not in before]
    assert not missing, missing
    assert any(kind == "StatefulSet" for _, _, kind, _ in objects)


@pytest.mark.parametrize("stack", STACKS)
def test_kubernetes_providers_change_secrets_and_configmaps_in_place(planned, stack):
    providers = planned[stack].resources("pulumi:providers:kubernetes")
    assert providers
    for provider in providers:
        inputs = provider["inputs"]
        assert str(inputs.get("enableSecretMutable")).lower() == "true", inputs
        assert str(inputs.get("enableConfigMapMutable")).lower() == "true", inputs


@pytest.mark.parametrize("stack", STACKS)
def test_statefulsets_keep_one_pod_management_policy_at_every_replica_count(planned, stack):
    # Immutable: a policy that followed the replica count would make a scale from 1 to 2 replace the StatefulSet.
    policies = {s["inputs"]["metadata"]["name"]: s["inputs"]["spec"]["podManagementPolicy"]
                for s in planned[stack].resources("kubernetes:apps/v1:StatefulSet")}
    assert policies and set(policies.values()) == {"Parallel"}, policies


@pytest.mark.parametrize("stack", STACKS)
def test_every_statefulset_claim_is_sized_in_place_never_by_replacing_the_statefulset(planned, stack):
    # The provider replaces a StatefulSet whose claim templates change: the templates are ignored after creation and
    # each replica's claim carries the size instead (grown where its StorageClass allows, refused where not).
    resources = planned[stack].plan["resources"]
    patches = {(r["provider"], r["inputs"]["metadata"]["namespace"], r["inputs"]["metadata"]["name"]): r
               for r in resources if r["type"] == "kubernetes:core/v1:PersistentVolumeClaimPatch"}
    statefulsets = [r for r in resources if r["type"] == "kubernetes:apps/v1:StatefulSet"]
    assert statefulsets
    for sts in statefulsets:
        spec, name = sts["inputs"]["spec"], sts["inputs"]["metadata"]["name"]
        for claim in spec.get("volumeClaimTemplates") or []:
            for ordinal in range(spec["replicas"]):
                patch = patches.pop((sts["provider"], sts["inputs"]["metadata"]["namespace"],
                                     f"{claim['metadata']['name']}-{name}-{ordinal}"))
                assert patch["inputs"]["spec"]["resources"] == claim["spec"]["resources"]
                assert patch["inputs"]["metadata"]["namespace"] == sts["inputs"]["metadata"]["namespace"]
                assert sts["urn"] in patch["dependsOn"]
    assert not patches, sorted(patches)


def test_every_cache_client_names_addresses_that_resolve_without_a_ready_cache_pod():
    """Thanos' memcached client exits at start when no address resolves, which an SRV name over a headless Service
    does whenever no cache pod is ready: clients name one ClusterIP Service per pod instead (a Service name resolves
    to its virtual IP whatever its pods do), and each such Service selects exactly that StatefulSet pod."""
    from components.thanos import memcached

    spec = config.load(stack_config("prod")).thanos.caches.index
    objects = memcached.build_memcached(CTX, "index", spec)
    workload = next(o for o in objects if o["kind"] == "StatefulSet")
    assert workload["spec"]["serviceName"] == "thanos-memcached-index" and workload["spec"]["replicas"] == spec.replicas
    services = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Service"}
    assert services["thanos-memcached-index"]["clusterIP"] == "None"  # the exporter's scrape target
    addresses = memcached.index_cache_config("thanos", spec)["config"]["addresses"]
    assert len(addresses) == spec.replicas > 1
    for i, address in enumerate(addresses):
        assert "+" not in address and address == f"thanos-memcached-index-{i}.thanos.svc.cluster.local:11211"
        per_pod = services[f"thanos-memcached-index-{i}"]
        assert "clusterIP" not in per_pod  # a virtual IP, never headless
        assert per_pod["selector"] == {**workload["spec"]["selector"]["matchLabels"],
                                       "statefulset.kubernetes.io/pod-name": f"thanos-memcached-index-{i}"}
    for config_of in (memcached.caching_bucket_config, memcached.results_cache_config):
        assert all("+" not in a for a in config_of("thanos", spec)["config"]["addresses"])


def test_vertical_compaction_runs_only_on_receive_streams():
    """A deduplication label turns vertical compaction on for every stream a compactor sees: receive's replicated
    streams get a compactor shard of their own (selected by the tenant label only receive writes), and the other
    shard, which sees every Prometheus and ruler stream, has none, so an overlap there halts instead of merging."""
    stack = config.load(stack_config("prod"))
    plan = plan_cluster(stack, "thanos", compactor_here=True, cluster="chicago")
    objects = compactor.build_compactor(CTX, stack.thanos.compactor, plan.compactor_dedup_labels)
    shards = {o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]["args"]
              for o in objects if o["kind"] == "StatefulSet"}
    assert set(shards) == {"thanos-compactor", "thanos-compactor-receive"}
    selectors = {name: json.loads(flag_values(args, "selector.relabel-config")[0]) for name, args in shards.items()}
    assert selectors == {"thanos-compactor": [{"action": "drop", "regex": ".+", "source_labels": ["tenant_id"]}],
                         "thanos-compactor-receive": [{"action": "keep", "regex": ".+", "source_labels": ["tenant_id"]}]}
    assert flag_values(shards["thanos-compactor"], "deduplication.replica-label") == []
    assert flag_values(shards["thanos-compactor-receive"], "deduplication.replica-label") == ["receive_replica"]
    # receive announces its tenant under the default label name, and nothing else the compactors see does
    assert not flag_values(receive.ingestor_args(CTX, stack.thanos.receive), "receive.tenant-label-name")
    assert all("tenant_id" not in label for label in ruler.ruler_labels(CTX))
    single = compactor.build_compactor(CTX, stack.thanos.compactor, [])
    assert [o["metadata"]["name"] for o in single if o["kind"] == "StatefulSet"] == ["thanos-compactor"]
    assert not any(a.startswith("--selector.relabel-config") for a in single[1]["spec"]["template"]["spec"]["containers"][0]["args"])


def test_gke_load_balancers_reach_the_entry_point_and_other_addresses_do_not(planned):
    """gcp's entry point is a GKE regional internal L7 load balancer (gke-l7-rilb): its proxies send from the region's
    proxy-only subnet and its health checks from Google's ranges, neither of them pods. Both reach oauth2-proxy (on the
    host and the standby); the internet, and pods of other namespaces, do not."""
    for cluster in ("iowa", "belgium"):
        policies = planned["gcp"].objects("NetworkPolicy", cluster=cluster)
        proxy = pod("thanos-global", "thanos-oauth2-proxy", "global")
        for source in ("35.191.3.4", "130.211.1.2", "10.128.254.9"):  # health check, front end, proxy-only subnet
            assert reachable(policies, {"ip": source}, proxy, 4180), (cluster, source)
        assert not reachable(policies, {"ip": "8.8.8.8"}, proxy, 4180)
        assert not reachable(policies, {"ip": "35.191.3.4"}, pod("thanos-global", "thanos-query-frontend", "global"), 10902)
        assert not reachable(policies, {"ns": "team-a", "labels": {"app": "x"}}, proxy, 4180)
    from components.platform.namespace import gke_l7_sources
    from config.global_view import EntryPointSpec

    spec = {"class": "gke-l7-global-external-managed", "host": "t.example.com", "oidc-issuer-url": "https://i.example",
            "oidc-client-id": "c", "email-domains": ["example.com"]}
    assert [p["ipBlock"]["cidr"] for p in gke_l7_sources("gcp", EntryPointSpec(**spec), ["10.0.0.0/8"])] == [
        "35.191.0.0/16", "130.211.0.0/22"]  # the global classes' front ends: the VPC is not admitted
    assert gke_l7_sources("aws", EntryPointSpec(**spec), []) == []
    with pytest.raises(ValueError, match="global-view.network-cidrs"):
        gke_l7_sources("gcp", EntryPointSpec(**{**spec, "class": "gke-l7-rilb"}), [])


def test_routers_reload_write_limits_from_a_file_with_head_series_counted_by_the_cluster_prometheus():
    from components.thanos.receive import HEAD_SERIES_LIMITING, build_receive
    from config.limits import resolve
    from config.tenancy import Tenant
    from config.thanos import ReceiveSpec

    spec = ReceiveSpec(ingestors=6, replication_factor=3)
    tenants = [Tenant(name="team-a", limits={"head-series": 10000, "request-size": "1Mi"})]
    objects = build_receive(CTX, spec, limits=resolve(spec, tenants))
    limits = yaml.safe_load(next(o for o in objects if o["metadata"]["name"] == "thanos-receive-limits")
                            ["data"]["limits.yaml"])
    write = limits["write"]
    assert write["global"] == {
        "max_concurrency": 21, "meta_monitoring_url": f"http://thanos-prometheus.{CTX.namespace}.svc.cluster.local:9090",
        "meta_monitoring_limit_query": 'sum by (tenant) (prometheus_tsdb_head_series{job="thanos-receive",'
                                       f'namespace="{CTX.namespace}"}}) / 3'}
    assert write["default"] == {"head_series_limit": 1332000, "request": {
        "size_bytes_limit": 8 * 1024**2, "series_limit": 10000, "samples_limit": 10000}}
    assert write["tenants"] == {"team-a": {"head_series_limit": 10000, "request": {
        "size_bytes_limit": 1024**2, "series_limit": 10000, "samples_limit": 10000}}}
    router = next(o for o in objects if o["kind"] == "Deployment")
    pod = router["spec"]["template"]
    args = pod["spec"]["containers"][0]["args"]
    assert "--receive.limits-config-file=/etc/thanos/limits/limits.yaml" in args
    assert {"name": "limits", "configMap": {"name": "thanos-receive-limits"}} in pod["spec"]["volumes"]
    assert pod["metadata"]["annotations"][HEAD_SERIES_LIMITING] == "on"
    ingestor = next(o for o in objects if o["kind"] == "StatefulSet")
    assert not any("limits-config" in a for a in ingestor["spec"]["template"]["spec"]["containers"][0]["args"])
@pytest.mark.parametrize("stack", STACKS)
def test_every_pod_runs_as_a_service_account_the_plan_declares(planned, stack):
    """A pod naming a ServiceAccount its namespace lacks is never created (its ReplicaSet's pods are refused)."""
    plan = planned[stack]
    for cluster in plan.clusters():
        objects = plan.objects(cluster=cluster)
        accounts = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects if o["kind"] == "ServiceAccount"}
        for o in objects:
            spec = o.get("spec") or {}
            pod = (spec.get("jobTemplate", {}).get("spec", {}).get("template") or spec.get("template") or {}).get("spec")
            if pod and pod.get("serviceAccountName"):
                assert (o["metadata"].get("namespace"), pod["serviceAccountName"]) in accounts, \
                    f"{cluster}: {o['kind']} {o['metadata']['name']} runs as {pod['serviceAccountName']}"


def test_a_stateless_ruler_remote_writes_to_the_routers_and_has_no_bucket():
    from components.platform.kube import ClusterContext
    from components.thanos.ruler import build_ruler
    from config.thanos import RulerSpec

    ctx = ClusterContext("chicago", "us-central", "thanos-chicago", "quay.io/thanos/thanos:v0.42.4")
    url = "https://thanos-receive-router.thanos-chicago.svc.cluster.local:19291/api/v1/receive"
    objects = build_ruler(ctx, RulerSpec(stateless=True), "dnssrv+_http._tcp.q", remote_write=url,
                          writer_secret="thanos-remote-write-client-tls")
    ruler = next(o for o in objects if o["kind"] == "StatefulSet")["spec"]["template"]["spec"]
    args = ruler["containers"][0]["args"]
    written = yaml.safe_load(flag_values(args, "remote-write.config")[0])["remote_write"]
    assert [(w["url"], w["tls_config"]["cert_file"]) for w in written] == [(url, "/etc/thanos/tls/tls.crt")]
    assert not flag_values(args, "objstore.config-file") and not flag_values(args, "tsdb.retention")
    assert 'cluster="chicago"' in flag_values(args, "label")  # its series keep the cluster they are about
    secrets = {v["secret"]["secretName"] for v in ruler["volumes"] if "secret" in v}
    assert secrets == {"thanos-remote-write-client-tls", "thanos-ca-bundle"}, secrets
