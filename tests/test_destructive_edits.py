"""Renames keep state, destructive edits are refused: `preflight --baseline` against an earlier plan of prod (the
real engine and provider judge the same on dev: tests/test_real_engine.py)."""

import json

import pytest
import yaml

import config
from components.renames import earlier_names

from tests.support.stacks import ROOT, run_preflight


def test_earlier_names_put_each_old_name_back_where_the_new_one_stands_whole():
    assert earlier_names("us-east-1-objectstore-illinois-compactor", {"illinois": ["chicago"]}) == [
        "us-east-1-objectstore-chicago-compactor"]
    assert earlier_names("k8s-illinois", {"illinois": ["chicago", "windy"]}) == ["k8s-chicago", "k8s-windy"]
    assert earlier_names("illinoisan-store", {"illinois": ["chicago"]}) == []  # not a whole part
    assert sorted(earlier_names("a-replicate-from-b", {"a": ["x"], "b": ["y"]})) == [
        "a-replicate-from-y", "x-replicate-from-b", "x-replicate-from-y"]


def stack_with(edit) -> dict:
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    edit(document["config"]["thanos:config"])
    return document


def test_an_earlier_name_in_use_or_given_twice_is_refused():
    def clash(c):
        c["regions"][0]["clusters"][0]["renamed-from"] = ["seattle"]
        c["regions"][1]["clusters"][0]["renamed-from"] = ["windy"]

    def twice(c):
        c["regions"][0]["clusters"][0]["renamed-from"] = ["windy"]
        c["regions"][1]["clusters"][0]["renamed-from"] = ["windy"]

    for edit, message in ((clash, "regions[0].clusters[0].renamed-from[0]: 'seattle' is the name of a cluster of "
                                  "this stack"),
                          (twice, "regions[1].clusters[0].renamed-from[0]: 'windy' is already an earlier name at "
                                  "regions[0].clusters[0].renamed-from[0]")):
        with pytest.raises(config.ConfigError) as err:
            config.load(stack_with(edit)["config"]["thanos:config"])
        assert message in str(err.value)


def rename_chicago(c):
    cluster = c["regions"][0]["clusters"][0]
    cluster.update(name="illinois", **{"renamed-from": ["chicago"]})
    c["regions"][0]["compactor-cluster"] = "illinois"
    c["global-view"]["host-cluster"] = "illinois"
    for route in c["observability"]["alertmanager"]["routes"]:
        route["clusters"] = ["illinois" if n == "chicago" else n for n in route.get("clusters", [])] or None
        if route["clusters"] is None:
            del route["clusters"]


def plan_edited(tmp_path, edit, baseline):
    """preflight of prod, edited, against `baseline`, in `tmp_path`: (exit code, output, plan)."""
    folder = tmp_path / "stack"
    folder.mkdir()
    (folder / "Pulumi.prod.yaml").write_text(yaml.safe_dump(stack_with(edit), sort_keys=False))
    out = tmp_path / "plan.json"
    proc = run_preflight("--config-file", str(folder / "Pulumi.prod.yaml"), "--baseline", str(baseline),
                         "--json", str(out), "--no-policy")
    return proc.returncode, proc.stdout + proc.stderr, json.loads(out.read_text()) if out.exists() else {}


@pytest.fixture
def baseline(planned, tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(planned["prod"].plan))
    return path


def test_renaming_a_prod_cluster_carries_every_resource_and_changes_no_selector_or_identity(planned, baseline, tmp_path):
    code, out, plan = plan_edited(tmp_path, rename_chicago, baseline)
    assert code == 0 and "Destructive edits against baseline.json: 0 refused" in out, out
    old = {r["urn"]: r for r in planned["prod"].plan["resources"]}
    new = plan["resources"]
    carried = {urn for r in new for urn in [r["urn"], *r["aliases"]] if urn in old}
    # Only the validation Jobs are new (their names hash their content, which names the cluster).
    gone = [u.rsplit("::", 1)[-1] for u in set(old) - carried]
    assert gone and all("-validate-" in name for name in gone), gone
    changed = [r for r in new if r["urn"] not in old]
    assert changed and all("illinois" in r["name"] or "-validate-" in r["name"] for r in changed)
    assert all(r["aliases"] for r in changed if "-validate-" not in r["name"])
    by_urn = {urn: r for r in new for urn in [r["urn"], *r["aliases"]]}
    for urn, before in old.items():
        if before["type"] in ("kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:Deployment"):
            assert by_urn[urn]["inputs"]["spec"]["selector"] == before["inputs"]["spec"]["selector"], urn
        if before["type"] in ("aws:iam/role:Role", "aws:s3/bucket:Bucket"):
            assert by_urn[urn]["inputs"].get("name") == before["inputs"].get("name"), urn
            assert by_urn[urn]["inputs"].get("bucket") == before["inputs"].get("bucket"), urn


def test_a_new_bucket_name_and_a_new_storage_class_are_refused_until_allowed(baseline, tmp_path):
    def edit(c):
        c["regions"][1]["storage"]["bucket"] = "acme-thanos-prod-us-west-2-new"
        c["thanos"].setdefault("prometheus", {})["storage-class"] = "gp3-fast"

    code, out, plan = plan_edited(tmp_path, edit, baseline)
    assert code == 1, out
    refused = {e["name"]: e for e in plan["destructive"]}
    bucket = refused["us-west-2-objectstore-bucket"]
    assert bucket["change"].startswith('changing bucket ("acme-thanos-prod-us-west-2" -> '
                                       '"acme-thanos-prod-us-west-2-new") replaces it')
    assert "thanos tools bucket replicate" in bucket["fix"] and not bucket["allowed"]
    prometheus = [e for name, e in refused.items() if name.endswith("-prometheus-statefulset-thanos-prometheus")]
    assert len(prometheus) == 2 and all("would apply to no existing claim" in e["change"]
                                        and "thanos.prometheus.storage-class" in e["fix"] for e in prometheus)
    assert "To go ahead with one, add its name to allow-destructive" in out

    def allowed(c):
        edit(c)
        c["allow-destructive"] = sorted(refused)

    (tmp_path / "stack").rename(tmp_path / "refused")
    code, out, plan = plan_edited(tmp_path, allowed, baseline)
    assert code == 0, out
    assert plan["destructive"] and all(e["allowed"] for e in plan["destructive"])
    assert f"0 refused, {len(refused)} allowed" in out


def test_an_unusable_baseline_is_named(tmp_path):
    bad = tmp_path / "state.json"
    bad.write_text('{"checkpoint": {}}')
    proc = run_preflight("prod", "--baseline", str(bad))
    assert proc.returncode == 2
    assert f"--baseline {bad}: neither `pulumi stack export` output nor a `preflight --json` plan" in proc.stderr



def test_dropping_renamed_from_after_the_rename_is_refused(baseline, tmp_path):
    """After a rename, the first name is still the cluster's identity: without `renamed-from` its selectors change."""
    first = tmp_path / "first"
    first.mkdir()
    code, out, renamed_plan = plan_edited(first, rename_chicago, baseline)
    assert code == 0, out
    (tmp_path / "renamed.json").write_text(json.dumps(renamed_plan))

    def dropped(c):
        rename_chicago(c)
        del c["regions"][0]["clusters"][0]["renamed-from"]

    second = tmp_path / "second"
    second.mkdir()
    code, out, plan = plan_edited(second, dropped, tmp_path / "renamed.json")
    assert code == 1, out
    store = next(e for e in plan["destructive"] if e["name"] == "illinois-store-statefulset-thanos-store")
    assert store["change"].startswith("changing spec.selector")
    assert "if a `renamed-from` was dropped, put it back" in store["fix"]


def ingestors(count, draining=0, allow=()):
    def edit(c):
        c["thanos"]["receive"].update(ingestors=count, draining=draining)
        if allow:
            c["allow-destructive"] = list(allow)
    return edit


def test_a_hashring_change_is_explained_and_a_one_step_shrink_refused(baseline, tmp_path):
    """prod, three zones: 6 -> 9 joins one ingestor per zone once ready; 9 -> 6 in one step is refused (the pods would
    go before the routers leave them); draining first is safe, and then lowering `ingestors` changes no ring."""
    def step(name, edit, against):
        (tmp_path / name).mkdir()
        return plan_edited(tmp_path / name, edit, against)

    code, out, grown = step("grow", ingestors(9), baseline)
    assert code == 0, out
    assert ("  chicago-receive-configmap-thanos-receive-hashring: hashring thanos/thanos-receive-hashring 6 -> 9 "
            "endpoints (+thanos-receive-us-east-1a-2, +thanos-receive-us-east-1b-2, +thanos-receive-us-east-1c-2): "
            "safe, they join once their pods are ready") in out
    nine = tmp_path / "nine.json"
    nine.write_text(json.dumps(grown))

    code, out, plan = step("shrink", ingestors(6), nine)
    assert code == 1, out
    refused = {e["name"]: e for e in plan["destructive"]}
    ring = refused["seattle-receive-configmap-thanos-receive-hashring"]
    assert ring["change"] == (
        "hashring thanos/thanos-receive-hashring 9 -> 6 endpoints: thanos-receive-us-west-2a-2, "
        "thanos-receive-us-west-2b-2, thanos-receive-us-west-2c-2 leave it in the same step as their pods go (the "
        "StatefulSet scales down before the routers restart on the new ring, so writes of their share miss quorum "
        "meanwhile)")
    assert ring["fix"] == ("Shrink in two steps: thanos.receive.draining: 3 with ingestors: 9, pulumi up (the ring "
                           "drops them, their pods keep running); then ingestors: 6 with draining: 0, pulumi up")
    assert sorted(refused) == ["chicago-receive-configmap-thanos-receive-hashring",
                               "seattle-receive-configmap-thanos-receive-hashring"]
    code, out, _ = step("allowed", ingestors(6, allow=sorted(refused)), nine)
    assert code == 0 and "0 refused, 2 allowed" in out, out

    code, out, drained = step("drain", ingestors(9, draining=3), nine)
    assert code == 0 and "0 refused" in out, out
    assert ("seattle-receive-configmap-thanos-receive-hashring: hashring thanos/thanos-receive-hashring 9 -> 6 "
            "endpoints (-thanos-receive-us-west-2a-2, -thanos-receive-us-west-2b-2, -thanos-receive-us-west-2c-2): "
            "safe, the routers restart on the new ring while those pods keep running; next step: ingestors: 6 with "
            "draining: 0") in out
    (tmp_path / "drained.json").write_text(json.dumps(drained))
    code, out, plan = step("lowered", ingestors(6), tmp_path / "drained.json")
    assert code == 0 and "0 refused" in out and "Hashring changes" not in out, out


def test_refusals_of_one_cause_are_one_entry_naming_the_resources(baseline, tmp_path):
    """A namespace change refuses every StatefulSet in it for the same reason: one entry says the cause and the fix
    once, with how many and the first names; each one's own refusal stays in the JSON."""
    def edit(c):
        c["namespace"] = "obs"

    code, out, plan = plan_edited(tmp_path, edit, baseline)
    assert code == 1, out
    statefulsets = [e for e in plan["destructive"] if "-statefulset-" in e["name"]]
    namespaces = [e for e in plan["destructive"] if "-namespace-" in e["name"]]
    assert len(statefulsets) == 26 and len(namespaces) == 2 and len(plan["destructive"]) == 28
    lines = out.splitlines()
    entries = [i for i, line in enumerate(lines) if line.startswith("  [refused] ")]
    assert len(entries) == 2
    moved, deleted = lines[entries[0]], lines[entries[1]]
    assert moved == f"  [refused] 26 resources: {statefulsets[0]['change']}. {statefulsets[0]['fix']}"
    assert moved.startswith('  [refused] 26 resources: changing metadata.namespace ("thanos" -> "obs") replaces it')
    assert lines[entries[0] + 1].endswith(" and 22 more (--verbose lists them)")
    assert lines[entries[0] + 1].strip().split(", ")[:3] == [e["name"] for e in statefulsets[:3]]
    assert deleted.startswith("  [refused] 2 resources: Namespaces would be deleted: deleting a namespace deletes")
    assert lines[entries[1] + 1] == "      chicago-namespace-namespace-thanos, seattle-namespace-namespace-thanos"
