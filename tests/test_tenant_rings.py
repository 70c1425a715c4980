"""A tenant's own hashring (`tenancy.tenants[].dedicated-ingestors`): config refuses a ring receive would not load,
the plan lists it before the default ring over StatefulSets of its own, orders it like the shared ring, sizes its
ingestors from the tenant's series, and `preflight --baseline` explains each of its changes. The real routers and
ingestors keep each tenant on its ring: tests/test_real_tenant_rings.py."""

import copy
import json
from dataclasses import replace

import pytest
import yaml

import config
from capacity import plan
from components.cluster import plan_cluster
from components.observability import rules as jobs
from components.observability.replicas import planned_replicas
from components.platform.kube import ClusterContext
from components.thanos import receive
from config.capacity import inputs_for, needed_sizes, plans, ring_loads
from config.limits import resolved_limits
from config.tenancy import Tenant
from config.thanos import ReceiveSpec

from tests.network_policies import reachable
from tests.support.stacks import ROOT, run_preflight, stack_config

CTX = ClusterContext(cluster="chicago", region="us-east-1", namespace="thanos", image="quay.io/thanos/thanos:v0.42.4")
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


def prod_with(*tenants: dict) -> dict:
    """prod's thanos:config with these tenants."""
    raw = copy.deepcopy(stack_config("prod"))
    raw["tenancy"] = {"tenants": list(tenants)}
    return raw


def problems(raw: dict) -> dict[str, str]:
    with pytest.raises(config.ConfigError) as err:
        config.load(raw)
    return dict(err.value.problems)


def test_a_ring_receive_would_not_load_is_refused_with_its_key_path():
    """Below the replication factor receive refuses the whole ring file and every router stops; zoned, each zone
    needs as many of the tenant's ingestors; a drain leaves the factor; names stay valid StatefulSet names."""
    at = "tenancy.tenants[0]"
    assert problems(prod_with({"name": "team-a", "dedicated-ingestors": 2}))[f"{at}.dedicated-ingestors"].startswith(
        "2 is below thanos.receive.replication-factor 3: receive refuses a ketama ring with fewer endpoints than the "
        "factor, and every router stops on it")
    assert problems(prod_with({"name": "team-a", "dedicated-ingestors": 4}))[f"{at}.dedicated-ingestors"].startswith(
        "4 dedicated ingestors (0 draining) over the 3 zones us-east-1a, us-east-1b, us-east-1c: give each zone as many")
    drained = problems(prod_with({"name": "team-a", "dedicated-ingestors": 6, "dedicated-draining": 4}))
    assert drained[f"{at}.dedicated-draining"].startswith(
        "draining 4 of 6 dedicated ingestors leaves 2 in the tenant's ring, fewer than thanos.receive.replication-factor")
    assert "leaves the tenant's ring empty" in problems(prod_with(
        {"name": "team-a", "dedicated-draining": 1}))[f"{at}.dedicated-draining"]
    long_name = "t" * 30
    assert "longer than 52 characters" in problems(prod_with(
        {"name": long_name, "dedicated-ingestors": 6}))[f"{at}.name"]
    unzoned = copy.deepcopy(stack_config("dev"))
    unzoned["tenancy"]["tenants"] = [{"name": "router", "dedicated-ingestors": 1}]
    assert "the shared ingestors or the routers already use" in problems(unzoned)[f"{at}.name"]
    off = prod_with({"name": "team-a", "dedicated-ingestors": 6})
    off["thanos"]["receive"]["enabled"] = False
    assert problems(off)[f"{at}.dedicated-ingestors"] == "thanos.receive is off: there are no ingestors to dedicate"
    config.load(prod_with({"name": "team-a", "dedicated-ingestors": 6, "dedicated-draining": 3}))


def test_the_tenants_ring_comes_first_over_statefulsets_of_its_own():
    """receive takes the first ring whose tenants hold the writer's tenant, and a ring without tenants takes every
    tenant: the tenant's ring (exact match) comes before the default ring. Its StatefulSet runs the shared ingestors'
    pod under the one headless Service (so its --receive.local-endpoint is its own pod's address), selected apart by
    RING_LABEL; one PDB covers every ingestor; Query lists every ingestor."""
    spec = ReceiveSpec(ingestors=1, replication_factor=1)
    tenant = Tenant(name="team-a", dedicated_ingestors=2)
    objects = receive.build_receive(CTX, spec, dedicated=[tenant])
    ring = json.loads(next(o for o in objects if o["kind"] == "ConfigMap"
                           and o["metadata"]["name"] == receive.HASHRING)["data"]["hashrings.json"])
    address = "{}.thanos-receive.thanos.svc.cluster.local:10901".format
    assert ring == [
        {"hashring": "team-a", "tenants": ["team-a"], "tenant_matcher_type": "exact", "algorithm": "ketama",
         "endpoints": [address("thanos-receive-team-a-0"), address("thanos-receive-team-a-1")]},
        {"hashring": "default", "tenants": [], "algorithm": "ketama", "endpoints": [address("thanos-receive-0")]}]
    statefulsets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "StatefulSet"}
    assert list(statefulsets) == ["thanos-receive", "thanos-receive-team-a"]
    own, shared = statefulsets["thanos-receive-team-a"]["spec"], statefulsets["thanos-receive"]["spec"]
    assert own["replicas"] == 2 and own["serviceName"] == "thanos-receive"
    assert own["selector"]["matchLabels"] == {**shared["selector"]["matchLabels"], receive.RING_LABEL: "team-a"}
    assert own["template"]["spec"] == shared["template"]["spec"]
    assert own["volumeClaimTemplates"] == shared["volumeClaimTemplates"]
    budgets = [o for o in objects if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == "thanos-receive"]
    assert [b["spec"]["selector"]["matchLabels"] for b in budgets] == [shared["selector"]["matchLabels"]]
    assert receive.receive_endpoints(spec, "thanos", (), [tenant]) == [
        address("thanos-receive-0"), address("thanos-receive-team-a-0"), address("thanos-receive-team-a-1")]

    zoned = ClusterContext(**{**CTX.__dict__, "zones": ZONES})
    objects = receive.build_receive(zoned, ReceiveSpec(ingestors=6), dedicated=[
        Tenant(name="team-a", dedicated_ingestors=6, dedicated_draining=3)])
    ring = json.loads(next(o for o in objects if o["kind"] == "ConfigMap"
                           and o["metadata"]["name"] == receive.HASHRING)["data"]["hashrings.json"])
    assert [e["address"].split(".")[0] for e in ring[0]["endpoints"]] == [
        f"thanos-receive-team-a-{zone}-0" for zone in ZONES]  # draining 3: each zone's highest leaves the ring
    assert {e["az"] for e in ring[0]["endpoints"]} == set(ZONES)
    pinned = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "StatefulSet"}
    assert list(pinned) == [*(f"thanos-receive-{z}" for z in ZONES), *(f"thanos-receive-team-a-{z}" for z in ZONES)]
    terms = pinned["thanos-receive-team-a-us-east-1b"]["template"]["spec"]["affinity"]["nodeAffinity"]
    assert terms["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"][0][
        "values"] == ["us-east-1b"]
    assert pinned["thanos-receive-team-a-us-east-1b"]["replicas"] == 2


def test_the_stack_counts_every_ingestor_where_it_lists_or_expects_them():
    stack = config.load(prod_with({"name": "team-a", "dedicated-ingestors": 6}, {"name": "team-b"}))
    cluster = plan_cluster(stack, "thanos", compactor_here=True, cluster="chicago")
    ingestors = [a for a in cluster.endpoints if ".thanos-receive." in a]
    assert len(ingestors) == 12 and sum("thanos-receive-team-a-" in a for a in ingestors) == 6
    assert planned_replicas(stack, "thanos", cluster.scraped)[(jobs.RECEIVE, "thanos", "thanos-receive")] == 12
    assert stack.ingestors() == 12


def test_the_tenants_series_size_its_own_ingestors_and_its_head_series_limit():
    """prod: 200000 remote-write series per cluster over 6 shared ingestors; team-a writes 150000 of them on 3 of its
    own (one per zone): its ingestors are sized for its head-series limit (150000 and half again: alone on them, the
    tenant may hold that much), the shared ones for the other 50000; one receive.resources serves both, so the plan
    sizes it for the fuller ring. A dedicated tenant's limit defaults to its own ring's memory."""
    raw = prod_with({"name": "team-a", "dedicated-ingestors": 3, "remote-write-series": 150000},
                    {"name": "team-c", "dedicated-ingestors": 3}, {"name": "team-b"})
    stack = config.load(raw)
    assert ring_loads(stack) == [(50000, 6), (225000, 3), (0, 3)]
    inputs = inputs_for(stack, stack.regions[0])
    fuller = plan(replace(inputs, remote_write_series=225000, receive_ingestors=3)).sizes.receive_memory
    assert fuller > plan(inputs).sizes.receive_memory  # what sizing every series over the shared ring would give
    assert needed_sizes(stack)["receive.resources"] == fuller
    assert plans(stack)[stack.regions[0].name].sizes.receive_memory == fuller  # `python -m capacity` shows the same
    limits = resolved_limits(stack)
    assert limits.tenants["team-a"].head_series == 225000  # its series and half again
    assert limits.tenants["team-c"].head_series == limits.rings["team-c"] == limits.capacity // 2  # half the ingestors
    assert limits.tenants["team-b"].head_series == limits.default.head_series == limits.capacity
    del raw["capacity"]  # the sizes given: a tenant beyond what its own ingestors hold is refused
    raw["tenancy"]["tenants"][1]["remote-write-series"] = 10 * limits.rings["team-c"]
    found = problems(raw)["tenancy.tenants[1].remote-write-series"]
    assert "series the tenant's own ingestors' memory holds" in found and "dedicated-ingestors" in found


def preflight(tmp_path, name: str, tenants: list[dict], baseline=None):
    """preflight of prod with these tenants (against `baseline`): (exit code, output, plan path)."""
    folder = tmp_path / name
    folder.mkdir()
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    document["config"]["thanos:config"]["tenancy"] = {"tenants": tenants}
    (folder / "Pulumi.prod.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    out = folder / "plan.json"
    proc = run_preflight("--config-file", str(folder / "Pulumi.prod.yaml"), "--json", str(out), "--no-policy",
                         *(("--baseline", str(baseline)) if baseline else ()))
    return proc.returncode, proc.stdout + proc.stderr, out


def test_a_tenants_ring_is_ordered_like_the_shared_one_and_each_change_explained(tmp_path):
    """Added: the ring waits for the tenant's StatefulSets (each after the one before), the routers for the ring;
    shrunk in one step: refused, with the tenant's keys; drained: safe; given back to the default ring: safe."""
    code, out, base = preflight(tmp_path, "base", [{"name": "team-a"}])
    assert code == 0, out
    six = {"name": "team-a", "dedicated-ingestors": 6}
    code, out, added = preflight(tmp_path, "added", [six], base)
    assert code == 0, out
    own = [f"thanos-receive-team-a-us-east-1{z}-{i}" for z in "abc" for i in range(2)]
    assert ("  chicago-receive-configmap-thanos-receive-hashring: hashring thanos/thanos-receive-hashring ring team-a "
            f"0 -> 6 endpoints ({', '.join('+' + p for p in own)}): safe, they join once their pods are ready (the "
            "ring waits for the StatefulSet rollout, then the routers restart on it); tenant team-a's writes move to "
            "them then") in out
    assert "ring default" not in out and "thanos-receive-hashring 6 -> " not in out  # the shared ring is unchanged
    by_name = {r["name"]: r for r in json.loads(added.read_text())["resources"]}
    statefulsets = [by_name[f"chicago-receive-statefulset-thanos-receive-{z}"]["urn"]
                    for z in ("us-east-1a", "us-east-1b", "us-east-1c", *(f"team-a-us-east-1{x}" for x in "abc"))]
    ring = by_name["chicago-receive-configmap-thanos-receive-hashring"]
    assert set(statefulsets) <= set(ring["dependsOn"])
    by_urn = {r["urn"]: r for r in by_name.values()}
    for index in range(1, len(statefulsets)):  # one zone's, then one ring's, after the other
        assert statefulsets[index - 1] in by_urn[statefulsets[index]]["dependsOn"]
    assert ring["urn"] in by_name["chicago-receive-deployment-thanos-receive-router"]["dependsOn"]
    # The tenant's ingestors are ingestors to the NetworkPolicies: the routers, Query and Prometheus reach them, and
    # nothing else reaches their gRPC.
    policies = [r["inputs"] for r in by_name.values() if r["type"] == "kubernetes:networking.k8s.io/v1:NetworkPolicy"
                and r["name"].startswith("chicago-")]

    def pod(name):
        template = next(r for r in by_name.values() if r["type"] in ("kubernetes:apps/v1:StatefulSet",
                                                                      "kubernetes:apps/v1:Deployment")
                        and r["name"].startswith("chicago-") and r["inputs"]["metadata"]["name"] == name)
        return {"ns": "thanos", "labels": template["inputs"]["spec"]["template"]["metadata"]["labels"]}
    own_pod = pod("thanos-receive-team-a-us-east-1a")
    for client, port in (("thanos-receive-router", 10901), ("thanos-query-pods", 10901), ("thanos-prometheus", 10902)):
        assert reachable(policies, pod(client), own_pod, port), client
    assert not reachable(policies, pod("thanos-compactor"), own_pod, 10901)

    code, out, plan_path = preflight(tmp_path, "shrunk", [{**six, "dedicated-ingestors": 3}], added)
    assert code == 1, out
    refused = {e["name"]: e for e in json.loads(plan_path.read_text())["destructive"]}
    edit = refused["chicago-receive-configmap-thanos-receive-hashring"]
    assert edit["change"].startswith("hashring thanos/thanos-receive-hashring ring team-a 6 -> 3 endpoints: "
                                     "thanos-receive-team-a-us-east-1a-1, ")
    assert edit["fix"] == ("Shrink in two steps: dedicated-draining: 3 with tenant team-a's dedicated-ingestors: 6, "
                           "pulumi up (the ring drops them, their pods keep running); then tenant team-a's "
                           "dedicated-ingestors: 3 with dedicated-draining: 0, pulumi up")

    code, out, _ = preflight(tmp_path, "drained", [{**six, "dedicated-draining": 3}], added)
    assert code == 0 and "0 refused" in out, out
    assert ("safe, the routers restart on the new ring while those pods keep running; next step: tenant team-a's "
            "dedicated-ingestors: 3 with dedicated-draining: 0") in out

    code, out, _ = preflight(tmp_path, "removed", [{"name": "team-a"}], added)
    assert ("ring team-a 6 -> 0 endpoints (" in out and "safe, tenant team-a's writes move to the default ring when "
            "the routers restart, before its StatefulSets are deleted at the end of the step") in out, out
