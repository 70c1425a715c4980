"""HA rules (policies/thanos_policies/ha.py): anti-affinity, minimum replicas, disruption budgets, shared claims."""

import copy

from ..support.policies import DEPLOYMENT, K8S, STS, check, check_stack, thanos_workload, workload


def test_anti_affinity(prod):
    query = workload(prod, "thanos-query-pods")["inputs"]
    assert check("thanos-ha-anti-affinity", DEPLOYMENT, query) == []
    del query["spec"]["template"]["spec"]["affinity"]
    assert check("thanos-ha-anti-affinity", DEPLOYMENT, query) == [
        "query runs 2 replicas without hard pod anti-affinity (or a DoNotSchedule spread) on kubernetes.io/hostname: "
        "one node failure can take every replica down (config: thanos.node-spread)."]
    del query["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert "without a spread over topology.kubernetes.io/zone" in check("thanos-ha-anti-affinity", DEPLOYMENT, query)[1]


def test_min_replicas(prod):
    store = workload(prod, "thanos-store")["inputs"]
    assert check("thanos-ha-min-replicas", STS, store) == []
    store["spec"]["replicas"] = 1
    assert check("thanos-ha-min-replicas", STS, store) == [
        "store has 1 replica(s); at least 2 are required (config: thanos.store.replicas)."]
    assert check("thanos-ha-min-replicas", STS, store, {"minReplicas": 1}) == []
    # A tenant's own ingestors (this program marks them with thanos.io/hashring) name their own key.
    ingestors = workload(prod, "thanos-receive-us-east-1a")["inputs"]
    ingestors["spec"]["replicas"] = 1
    ingestors["spec"]["selector"]["matchLabels"]["thanos.io/hashring"] = "team-a"
    assert check("thanos-ha-min-replicas", STS, ingestors) == [
        "receive has 1 replica(s); at least 2 are required (config: tenancy.tenants[].dedicated-ingestors)."]


def test_pdb(prod):
    cluster = [r for r in prod if "chicago" in (r["provider"] or "")
               and (r["inputs"].get("metadata") or {}).get("namespace") == "thanos"]
    assert check_stack("thanos-ha-pdb", cluster) == []
    without = [r for r in cluster if not (r["type"].endswith("PodDisruptionBudget")
                                          and r["inputs"]["metadata"]["name"] == "thanos-ruler")]
    assert check_stack("thanos-ha-pdb", without) == [
        "thanos-ruler has 2 replicas and no PodDisruptionBudget selecting its pods."]
    blocking = copy.deepcopy(cluster)
    next(r for r in blocking if r["type"].endswith("PodDisruptionBudget")
         and r["inputs"]["metadata"]["name"] == "thanos-ruler")["inputs"]["spec"]["maxUnavailable"] = 0
    assert check_stack("thanos-ha-pdb", blocking) == [
        "the PodDisruptionBudget of thanos-ruler allows no disruption: it blocks every node drain."]


def test_replicas_sharing_one_read_write_once_claim_are_refused():
    def claim(mode: str) -> dict:
        return {"type": "kubernetes:core/v1:PersistentVolumeClaim", "provider": K8S, "inputs": {
            "metadata": {"name": "data", "namespace": "mon"}, "spec": {"accessModes": [mode]}}}
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    store = thanos_workload("Deployment", "store", ["store"], replicas=2, volumes=volumes)
    assert check_stack("thanos-ha-claims", [claim("ReadWriteOnce"), store]) == [
        "store: 2 replicas share the ReadWriteOnce claim data: it attaches to one node, so the other replicas never "
        "start (or, on one node, open the same data directory); give each replica its own claim (a StatefulSet's "
        "volumeClaimTemplates)."]
    assert check_stack("thanos-ha-claims", [claim("ReadWriteMany"), store]) == []
    single = thanos_workload("Deployment", "store", ["store"], replicas=1, volumes=volumes)
    assert check_stack("thanos-ha-claims", [claim("ReadWriteOnce"), single]) == []
    # A StatefulSet's claim templates are per replica; a claim in its pod's volumes is shared all the same.
    shared = thanos_workload("StatefulSet", "store", ["store"], replicas=3, volumes=volumes)
    assert check_stack("thanos-ha-claims", [claim("ReadWriteOnce"), shared]) == [
        "store: 3 replicas share the ReadWriteOnce claim data: it attaches to one node, so the other replicas never "
        "start (or, on one node, open the same data directory); give each replica its own claim (a StatefulSet's "
        "volumeClaimTemplates)."]


def test_the_global_tier_findings_name_its_own_keys(planned):
    """The global tier's workloads (in the global view's namespace) have their replica counts under global-view, its
    enforcing query under tenancy: a finding names that key, not the leaf clusters' thanos.* one."""
    dev = planned["dev"].plan["resources"]
    hints = {}
    for r in dev:
        metadata = r["inputs"].get("metadata") or {}
        if r["type"] in (DEPLOYMENT, STS) and metadata.get("namespace") == "thanos-global":
            for message in check("thanos-ha-min-replicas", r["type"], r["inputs"]):
                hints[metadata["name"]] = message.rsplit("(config: ", 1)[1].rstrip(").")
    assert hints == {"thanos-query-pods": "global-view.query.replicas",
                     "thanos-query-frontend-pods": "global-view.query-frontend.replicas",
                     "thanos-query-tenants-pods": "tenancy.query.replicas",
                     "thanos-ruler": "global-view.ruler.replicas",
                     "thanos-memcached-query-results": "global-view.cache.replicas"}
    leaf = workload(dev, "thanos-query-pods", namespace="thanos-chicago")
    assert leaf["inputs"]["metadata"]["namespace"] != "thanos-global"
    assert check("thanos-ha-min-replicas", DEPLOYMENT, leaf["inputs"]) == [
        "query has 1 replica(s); at least 2 are required (config: thanos.query.replicas)."]

    # In distributed mode the global tier's query in front of its ruler has its own key.
    rules = thanos_workload("Deployment", "thanos-query-rules-pods", ["query"], replicas=1)
    rules["inputs"]["metadata"]["labels"] = {"app.kubernetes.io/component": "query-rules"}
    assert check("thanos-ha-min-replicas", DEPLOYMENT, rules["inputs"]) == [
        "query has 1 replica(s); at least 2 are required (config: global-view.ruler.query.replicas)."]


def test_every_key_the_pack_names_is_a_key_of_the_stack_config():
    import re
    from pathlib import Path

    from config.reference import rows
    from policies.thanos_policies import ha

    pack = Path(ha.__file__).parent
    named = {m for path in pack.glob("*.py") for m in re.findall(r"fix\('([^']+)'\)", path.read_text())}
    named |= {key.replace("<pool>", "index") for key in ha.REPLICAS_KEY.values()} | set(ha.GLOBAL_REPLICAS_KEY.values())
    named |= {"tenancy.query.replicas", "global-view.ruler.query.replicas", "thanos.receive.router-replicas"}
    keys = {re.sub(r"\(\S+?\)", "", row[0]) for row in rows()}  # regions[].storage(aws).x -> regions[].storage.x
    unknown = sorted(k for k in named if k not in keys and not any(key.startswith(k + ".") for key in keys))
    assert len(named) > 25 and unknown == []
