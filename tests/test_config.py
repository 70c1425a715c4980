"""The stack config: every shipped stack loads; each class of bad input is refused with its key path."""

import copy

import pytest
import yaml

import config
from config.base import cpu_millicores, duration_seconds, memory_bytes

from tests.support.stacks import ROOT, STACKS, run_preflight, stack_config


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stack_loads(stack):
    loaded = config.load(stack_config(stack))
    assert loaded.regions and all(r.clusters for r in loaded.regions)


def test_four_stacks_ship_dev_prod_gcp_azure():
    assert {"dev", "prod", "gcp", "azure"} <= set(STACKS)
    providers = {s: {r.storage.provider for r in config.load(stack_config(s)).regions} for s in STACKS}
    assert providers["dev"] == {"in-cluster"} and providers["prod"] == {"aws"}
    assert providers["gcp"] == {"gcp"} and providers["azure"] == {"azure"}


def test_prod_has_the_seed_shape():
    prod = config.load(stack_config("prod"))
    assert [r.name for r in prod.regions] == ["us-east-1", "us-west-2"]
    assert prod.cluster_names() == ["chicago", "seattle"]
    retention = prod.thanos.compactor.retention
    assert (retention.raw, retention.res_5m, retention.res_1h) == ("30d", "180d", "2y")
    assert prod.regions[0].storage.replication.destination == "us-west-2"
    assert prod.protect_data is True


def problems(raw) -> dict[str, str]:
    with pytest.raises(config.ConfigError) as err:
        config.load(raw)
    return dict(err.value.problems)


def prod():
    return copy.deepcopy(stack_config("prod"))


def test_unknown_key_is_named():
    raw = prod()
    raw["regions"][0]["clusters"][0]["kubernetess"] = {}
    assert "unknown key" in problems(raw)["regions[0].clusters[0].kubernetess"]


def test_an_unknown_key_gets_the_allowed_key_it_resembles():
    raw = prod()
    raw["thanos"]["compactor"]["storageSize"] = "200Gi"
    raw["regions"][1]["storage"]["bucketName"] = "b"
    raw["globalView"] = {}
    raw["thanos"].setdefault("query", {})["zzz"] = 1
    found = problems(raw)
    assert found["thanos.compactor.storageSize"] == "unknown key: did you mean storage-size?"
    assert found["regions[1].storage.bucketName"] == "unknown key: did you mean bucket?"  # among aws storage's keys
    assert found["globalView"] == "unknown key: did you mean global-view?"
    assert found["thanos.query.zzz"] == "unknown key (check the spelling; keys are kebab-case)"


def test_a_bad_value_does_not_hide_the_cross_field_problems():
    """One pass names every problem it can: a bad duration and an unknown key beside a replication destination that
    names no region (a cross-field rule, checked on the stack with the bad values dropped)."""
    raw = prod()
    raw["thanos"]["compactor"]["retention"]["raw"] = "30x"
    raw["thanos"]["compactor"]["storageSize"] = "5Gi"
    raw["regions"][0]["storage"]["replication"]["destination"] = "nowhere"
    found = problems(raw)
    assert set(found) == {"thanos.compactor.retention.raw", "thanos.compactor.storageSize",
                          "regions[0].storage.replication.destination"}
    assert "'nowhere' is not defined in regions" in found["regions[0].storage.replication.destination"]
    # A cross-field problem about a dropped value itself is not reported (the default stood in for it).
    raw = prod()
    raw["regions"][0]["storage"]["replication"]["destination"] = 5
    assert set(problems(raw)) == {"regions[0].storage.replication.destination"}
    # What cannot be dropped (a missing required key) leaves the cross-field rules for the next run.
    raw = prod()
    del raw["regions"][0]["storage"]["bucket"]
    raw["regions"][1]["storage"]["replication"]["destination"] = "nowhere"
    assert set(problems(raw)) == {"regions[0].storage.bucket"}


def test_non_number_where_a_number_goes():
    raw = prod()
    raw["thanos"]["query"] = {"replicas": "two"}
    assert "integer" in problems(raw)["thanos.query.replicas"]


def test_negative_replicas():
    raw = prod()
    raw["thanos"]["store"] = {"replicas": -1}
    assert "greater than or equal to 1" in problems(raw)["thanos.store.replicas"]


def test_bad_duration():
    raw = prod()
    raw["thanos"]["query"] = {"timeout": "banana"}
    assert "'banana' is not a duration" in problems(raw)["thanos.query.timeout"]


def test_missing_required_key():
    raw = prod()
    del raw["regions"][0]["storage"]["bucket"]
    assert problems(raw)["regions[0].storage.bucket"] == "Field required"


def test_unknown_storage_provider():
    raw = prod()
    raw["regions"][0]["storage"]["provider"] = "oracle"
    assert "provider must be one of aws, gcp, azure, in-cluster" in problems(raw)["regions[0].storage"]


def test_clusters_sharing_a_bucket_are_warned_about():
    raw = prod()
    warnings: list[str] = []
    config.load(copy.deepcopy(raw), warnings=warnings)
    assert not [w for w in warnings if w.startswith("storage:")], warnings  # one cluster per region
    second = {**copy.deepcopy(raw["regions"][0]["clusters"][0]), "name": "detroit"}
    second["kubernetes"] = {"stack": "acme/eks/detroit"}
    raw["regions"][0]["clusters"].append(second)
    config.load(raw, warnings=warnings)
    assert "storage: regions[0].clusters chicago, detroit write one bucket: a writer identity of one can overwrite " \
           "the blocks of the others" in " ".join(warnings), warnings


@pytest.mark.parametrize("days", ["36h", "12h"])
def test_in_cluster_noncurrent_versions_expire_in_whole_days(days):
    raw = copy.deepcopy(stack_config("dev"))
    raw["regions"][0]["storage"]["noncurrent-version-expiration"] = days
    assert f"noncurrent-version-expiration {days} must be whole days" in problems(raw)["regions[0].storage"]


@pytest.mark.parametrize("retention, expected", [
    ({"raw": "1d"}, "raw 1d is below 40h"),
    ({"raw": "30d", "5m": "5d"}, "5m 5d is below 10d"),
    ({"raw": "90d", "5m": "30d", "1h": "1y"}, "5m 30d is shorter than raw 90d"),
    ({"raw": "30d", "5m": "90d", "1h": "60d"}, "1h 60d is shorter than 5m 90d"),
    ({"raw": "0d", "5m": "180d", "1h": "0d"}, "5m 180d is shorter than raw 0d"),
])
def test_contradictory_retention(retention, expected):
    raw = prod()
    raw["thanos"]["compactor"]["retention"] = retention
    assert expected in problems(raw)["thanos.compactor.retention"]


def test_retention_forever_and_without_downsampling_is_fine():
    raw = prod()
    raw["thanos"]["compactor"]["retention"] = {"raw": "0d", "5m": "0d", "1h": "0d"}
    config.load(raw)
    raw["thanos"]["compactor"]["retention"] = {"raw": "1d", "5m": "1d", "1h": "1d", "downsampling": False}
    config.load(raw)


def test_duplicate_names():
    raw = prod()
    raw["regions"][1]["name"] = "us-east-1"
    raw["regions"][1]["clusters"][0]["name"] = "chicago"
    found = problems(raw)
    assert "appears twice" in found["regions[1].name"]
    assert "already defined at regions[0].clusters[0]" in found["regions[1].clusters[0].name"]


def test_replication_destination_must_exist_and_differ():
    raw = prod()
    raw["regions"][0]["storage"]["replication"]["destination"] = "eu-west-1"
    raw["regions"][1]["storage"]["replication"]["destination"] = "us-west-2"
    found = problems(raw)
    assert "region 'eu-west-1' is not defined" in found["regions[0].storage.replication.destination"]
    assert "another region than the source" in found["regions[1].storage.replication.destination"]


def test_two_compactors_on_one_bucket_refused():
    raw = prod()
    raw["regions"][1]["storage"]["bucket"] = raw["regions"][0]["storage"]["bucket"]
    assert "two compactors would own one bucket" in problems(raw)["regions[1].storage"]


def test_dr_bucket_cannot_be_another_regions_primary():
    raw = prod()
    raw["regions"][0]["storage"]["replication"]["bucket"] = raw["regions"][1]["storage"]["bucket"]
    assert "two compactors would own one bucket" in problems(raw)["regions[1].storage"]


def test_receive_quorum_rules():
    raw = prod()
    raw["thanos"]["receive"] = {"ingestors": 2, "replication-factor": 4}
    message = problems(raw)["thanos.receive"]
    assert "is even" in message and "exceeds ingestors 2" in message


def test_draining_leaves_the_ring_its_replication_factor_and_every_zone():
    raw = prod()
    raw["thanos"]["receive"] = {"ingestors": 9, "draining": 7}
    assert problems(raw)["thanos.receive"] == (
        "draining 7 of 9 ingestors leaves 2 in the hashring, fewer than replication-factor 3: a ketama ring with "
        "fewer endpoints than the factor stops the routers; drain fewer")
    raw["thanos"]["receive"] = {"ingestors": 9, "draining": 2}
    assert problems(raw) == {"thanos.receive.draining": (
        "draining 2 of 9 ingestors leaves 7 in the hashring over 3 zones (cluster seattle): drain a multiple of 3 "
        "that leaves at least one in each zone")}
    raw["thanos"]["receive"] = {"ingestors": 9, "draining": 3}
    assert config.load(raw).thanos.receive.in_ring == 6


def test_every_problem_reported_at_once():
    raw = prod()
    raw["regions"][0]["clusters"][0]["bogus"] = 1
    raw["thanos"]["query"] = {"replicas": -1, "timeout": "banana"}
    raw["thanos"]["compactor"]["retention"] = {"raw": "1d"}
    assert len(problems(raw)) == 4


def test_compactor_cluster_must_be_in_region():
    raw = prod()
    raw["regions"][0]["compactor-cluster"] = "seattle"
    assert "is not a cluster of this region" in problems(raw)["regions[0].compactor-cluster"]


def test_aws_cluster_needs_an_oidc_issuer():
    raw = prod()
    raw["regions"][0]["clusters"][0]["kubernetes"] = {"context": "chicago"}
    assert "workload identity" in problems(raw)["regions[0].clusters[0].oidc-issuer"]


def test_latest_image_refused():
    raw = prod()
    raw["thanos"]["image"] = "quay.io/thanos/thanos:latest"
    assert "pinned" in problems(raw)["thanos"]


@pytest.mark.parametrize("value, seconds", [("30d", 30 * 86400), ("1h30m", 5400), ("2y", 2 * 365 * 86400),
                                            ("500ms", 0.5), ("0d", 0)])
def test_duration_parsing(value, seconds):
    assert duration_seconds(value) == seconds


def test_quantities():
    assert memory_bytes("2Gi") == 2 * 1024**3 and memory_bytes("512M") == 512 * 10**6
    assert cpu_millicores("250m") == 250 and cpu_millicores("2") == 2000
    with pytest.raises(ValueError):
        memory_bytes("lots")


def test_preflight_exits_2_naming_every_bad_key_and_registers_nothing(tmp_path):
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    raw = document["config"]["thanos:config"]
    raw["regions"][0]["clusters"][0]["bogus"] = 1
    raw["thanos"]["query"] = {"replicas": -1, "timeout": "banana", "max-concurrent": "many"}
    raw["thanos"]["compactor"]["retention"] = {"raw": "1d"}
    bad = tmp_path / "Pulumi.broken.yaml"
    bad.write_text(yaml.safe_dump(document))
    proc = run_preflight("--config-file", str(bad), "--json", str(tmp_path / "plan.json"))
    assert proc.returncode == 2
    for path in ("regions[0].clusters[0].bogus", "thanos.query.replicas", "thanos.query.timeout",
                 "thanos.query.max-concurrent", "thanos.compactor.retention"):
        assert path in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "plan.json").exists()


def test_preflight_exits_2_on_a_missing_config_key(tmp_path):
    bad = tmp_path / "Pulumi.empty.yaml"
    bad.write_text("config: {}\n")
    proc = run_preflight("--config-file", str(bad))
    assert proc.returncode == 2 and "no thanos:config key" in proc.stderr


@pytest.mark.parametrize("partitions, expected", [
    ([{"max-time": "2w"}, {"min-time": "1w"}], "does not reach past time-partitions[0].max-time 2w"),
    ([{"min-time": "8w", "max-time": "2w"}, {"min-time": "3w"}], "the first time partition must have no min-time"),
    ([{"max-time": "2w"}, {"min-time": "3w", "max-time": "1d"}], "the last time partition must have no max-time"),
])
def test_store_time_partitions_must_cover_all_time(partitions, expected):
    raw = prod()
    raw["thanos"]["store"] = {"time-partitions": partitions}
    assert expected in problems(raw)["thanos.store"]


def test_store_deletion_marks_delay_below_delete_delay():
    raw = prod()
    raw["thanos"]["store"] = {"ignore-deletion-marks-delay": "48h"}
    assert "must be below compactor.delete-delay 48h" in problems(raw)["thanos"]


def test_azure_refuses_replicate_deletes_it_cannot_honour():
    raw = copy.deepcopy(stack_config("azure"))
    assert config.load(raw).regions[0].storage.replication is not None
    raw["regions"][0]["storage"]["replication"]["replicate-deletes"] = False
    assert problems(raw) == {"regions[0].storage": (
        "replication.replicate-deletes is not supported on Azure: object replication copies new and changed blobs "
        "and never replicates deletes; remove the key")}


def test_the_dr_lock_needs_a_dr_copy_and_whole_days():
    raw = prod()
    assert config.load(raw).regions[0].storage.dr_immutable_for == "30d"  # on by default wherever a copy is made
    raw["regions"][0]["storage"]["dr-immutable-for"] = "12h"
    assert problems(raw) == {"regions[0].storage": "dr-immutable-for 12h is shorter than a day (Object Lock counts days)"}
    raw["regions"][0]["storage"]["dr-immutable-for"] = None
    assert "the DR copy would mirror every delete of the source with nothing locked" in problems(raw)["regions[0].storage"]
    raw["regions"][0]["storage"]["replication"]["replicate-deletes"] = False
    assert config.load(raw).regions[0].storage.dr_immutable_for is None
    del raw["regions"][0]["storage"]["replication"]
    raw["regions"][0]["storage"]["dr-immutable-for"] = "30d"
    assert "dr-immutable-for needs replication" in problems(raw)["regions[0].storage"]


def test_image_digests_are_checked_where_they_are_given():
    raw = prod()
    raw["image-digests"] = {"quay.io/thanos/thanos": "sha256:1234"}
    assert "'sha256:1234' is not a digest" in problems(raw)["image-digests"]
    raw["image-digests"] = {"quay.io/thanos/thanos:v0.42.4": "sha256:" + "0" * 64}
    assert "must be a repository without tag or digest" in problems(raw)["image-digests"]
    raw = prod()
    raw["thanos"]["image"] = "quay.io/thanos/thanos:v0.42.4@sha256:" + "0" * 64
    assert "give the version tag here and the digest in image-digests" in problems(raw)["thanos"]


def test_azure_accounts_can_close_their_public_endpoint():
    raw = copy.deepcopy(stack_config("azure"))
    assert config.load(raw).regions[0].storage.public_network_access == "Enabled"
    raw["regions"][0]["storage"]["public-network-access"] = "Disabled"
    assert config.load(raw).regions[0].storage.public_network_access == "Disabled"
    raw["regions"][0]["storage"]["public-network-access"] = "Off"
    assert problems(raw) == {"regions[0].storage.public-network-access": "Input should be 'Enabled' or 'Disabled' (got 'Off')"}


def test_cluster_zones_must_hold_the_replication_factor():
    raw = prod()
    raw["regions"][0]["clusters"][0]["zones"] = ["us-east-1a", "us-east-1b"]
    raw["regions"][1]["clusters"][0]["zones"] = ["us-west-2a", "us-west-2a", "us-west-2b"]
    raw["thanos"]["receive"] = {"ingestors": 3}
    assert problems(raw) == {
        "regions[0].clusters[0].zones": "2 zone(s) cannot hold the 3 copies of thanos.receive.replication-factor in "
                                        "distinct zones: list at least that many zones",
        "regions[1].clusters[0].zones": "a zone is listed twice"}
    raw["regions"][1]["clusters"][0]["zones"] = ["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"]
    raw["regions"][0]["clusters"][0]["zones"] = ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert problems(raw) == {"regions[1].clusters[0].zones": "thanos.receive.ingestors 3 is below the 4 zones: every "
                                                             "zone needs an ingestor"}


def test_replicated_ingestors_must_split_evenly_over_the_zones():
    """With a zone-aware hashring each zone's copies stay on its own ingestors: 4 over 3 zones leaves two zones with a
    lone ingestor carrying what two share in the third."""
    raw = prod()
    raw["thanos"]["receive"] = {"ingestors": 4}
    found = problems(raw)
    assert found == {"thanos.receive.ingestors": (
        "4 ingestors over 3 zones (cluster seattle, regions[1].clusters[0].zones) run 2 in us-west-2a but 1 in "
        "us-west-2b, us-west-2c: the zone-aware hashring puts a series' copies in distinct zones and each zone's "
        "copies on that zone's ingestors only, so an ingestor of us-west-2b, us-west-2c carries more series than one "
        "of us-west-2a; set a multiple of 3 (3 or 6)")}
    with pytest.raises(config.ConfigError) as err:
        config.load(raw)
    assert "thanos.receive.ingestors: 4 ingestors over 3 zones (cluster chicago" in str(err.value)
    raw["thanos"]["receive"] = {"ingestors": 7}
    assert "run 3 in us-west-2a but 2 in us-west-2b, us-west-2c" in problems(raw)["thanos.receive.ingestors"]
    for evenly in (3, 6, 9):
        raw["thanos"]["receive"] = {"ingestors": evenly}
        assert config.load(raw).thanos.receive.ingestors == evenly
    # Without replication a series has one copy wherever it lands: nothing piles up in a zone.
    raw["thanos"]["receive"] = {"ingestors": 4, "replication-factor": 1}
    assert config.load(raw).thanos.receive.ingestors == 4
    raw["thanos"]["receive"] = {"ingestors": 4}
    for region in raw["regions"]:
        for cluster in region["clusters"]:
            del cluster["zones"]
    assert config.load(raw).thanos.receive.ingestors == 4


def test_oauth2_proxy_needs_an_explicit_allow_list_and_no_wildcard():
    raw = prod()
    del raw["global-view"]["entry-point"]["email-domains"]
    assert "email-domains or allowed-groups" in problems(raw)["global-view.entry-point"]
    raw["global-view"]["entry-point"]["email-domains"] = ["*"]
    assert "a wildcard lets in every account" in problems(raw)["global-view.entry-point"]
    raw["global-view"]["entry-point"].update({"email-domains": [], "allowed-groups": ["sre"]})
    assert config.load(raw)  # groups alone narrow every domain


def test_the_allow_list_becomes_oauth2_proxy_flags():
    from components.global_view.entry_point import oauth2_proxy_args
    from config.global_view import EntryPointSpec

    base = {"class": "eg", "host": "thanos.example.com", "oidc-issuer-url": "https://idp.example.com",
            "oidc-client-id": "thanos"}
    domains = oauth2_proxy_args(EntryPointSpec(**base, **{"email-domains": ["acme.example.com"]}), "thanos-global")
    assert [a for a in domains if a.startswith(("--email-domain", "--allowed-group"))] == [
        "--email-domain=acme.example.com"]
    groups = oauth2_proxy_args(EntryPointSpec(**base, **{"allowed-groups": ["sre", "oncall"]}), "thanos-global")
    assert [a for a in groups if a.startswith(("--email-domain", "--allowed-group"))] == [
        "--email-domain=*", "--allowed-group=sre", "--allowed-group=oncall"]


def test_write_limits_resolve_tenant_over_receive_over_defaults():
    from config.limits import resolved_limits

    raw = copy.deepcopy(stack_config("dev"))
    raw["thanos"]["receive"]["limits"] = {"request-series": 4000}
    raw["tenancy"] = {"tenants": [{"name": "team-a", "limits": {"head-series": 20000}},
                                  {"name": "team-b", "limits": {"request-size": "0"}}]}
    limits = resolved_limits(config.load(raw))
    # dev's one ingestor of 1Gi, replication factor 1: (1Gi / 1.5 - 256 MiB) / 8 KiB = 54613 series, to a thousand.
    assert (limits.capacity, limits.default.head_series, limits.default.request_series) == (54000, 54000, 4000)
    assert (limits.default.request_samples, limits.default.request_size) == (10000, 8 * 1024**2)
    assert limits.tenants["team-a"] == limits.default.__class__(20000, 4000, 10000, 8 * 1024**2)
    assert limits.tenants["team-b"].request_size == 0 and limits.tenants["team-b"].head_series == 54000


def test_nonsense_write_limits_are_refused_with_their_key_path():
    raw = copy.deepcopy(stack_config("dev"))
    raw["thanos"]["receive"]["limits"] = {"head-series": 5000}
    raw["tenancy"] = {"tenants": [{"name": "team-a", "limits": {"head-series": 1000000}},
                                  {"name": "team-b", "limits": {"request-series": 6000}}]}
    found = problems(raw)
    assert found["thanos.receive.limits.head-series"] == ("request-series 10000 is above head-series 5000: one request "
                                                          "could carry more series than the tenant may hold")
    assert found["tenancy.tenants[0].limits.head-series"].startswith(
        "1000000 is above the 54000 series the ingestors' memory holds: they would run out of memory")
    assert found["tenancy.tenants[1].limits.request-series"].startswith("request-series 6000 is above head-series 5000")
    tiny = copy.deepcopy(stack_config("dev"))
    tiny["thanos"]["receive"]["resources"]["limits"]["memory"] = "300Mi"
    assert "holds no series" in problems(tiny)["thanos.receive.limits.head-series"]
def test_tenants_are_refused_where_nothing_would_enforce_them_or_where_the_platform_runs():
    raw = prod()
    raw["tenancy"] = {"tenants": [{"name": "team-a", "namespaces": ["team-a", "thanos"]},
                                  {"name": "team-b", "namespaces": ["team-a", "thanos-global"]}]}
    # A namespace in two tenants: one tenant per namespace (its series carry one tenant_id).
    assert "'team-a' already belongs to tenants[0] (team-a)" in problems(raw)["tenancy"]
    raw["tenancy"]["tenants"][1]["namespaces"] = ["thanos-global"]
    found = problems(raw)
    assert "is the namespace of cluster 'chicago'" in found["tenancy.tenants[0].namespaces[1]"]
    assert "is the namespace of the global view" in found["tenancy.tenants[1].namespaces[0]"]
    del raw["global-view"]
    assert "only the global tier's query enforces a tenant" in problems(raw)["tenancy.tenants"]


def test_no_tenants_needs_no_global_view():
    raw = prod()
    del raw["global-view"]
    config.load(raw)


def test_tenants_planned_series_size_the_ingestors_and_their_own_head_series_limits():
    """A tenant's remote-write-series: its head-series limit defaults to it and half again; their sum feeds the
    capacity plan's receive sizes when capacity.remote-write-series is 0; a limit below what the tenant writes, a sum
    above capacity.remote-write-series, or a tenant beyond the ingestors' memory are refused with the key path."""
    from config.capacity import inputs_for
    from config.limits import resolved_limits

    raw = prod()
    raw["tenancy"] = {"tenants": [{"name": "team-a", "remote-write-series": 40000},
                                  {"name": "team-b", "remote-write-series": 100000, "limits": {"head-series": 120000}},
                                  {"name": "team-c"}]}
    stack = config.load(raw)
    limits = resolved_limits(stack)
    assert (limits.tenants["team-a"].head_series, limits.tenants["team-b"].head_series) == (60000, 120000)
    assert limits.tenants["team-c"].head_series == limits.default.head_series
    assert inputs_for(stack, stack.regions[0]).remote_write_series == 200000  # capacity's own, above the sum
    raw["capacity"]["remote-write-series"] = 0
    summed = config.load(raw)
    assert inputs_for(summed, summed.regions[0]).remote_write_series == 140000

    raw["capacity"]["remote-write-series"] = 100000
    raw["tenancy"]["tenants"][1]["limits"]["head-series"] = 90000
    raw["tenancy"]["tenants"][0]["remote-write-series"] = 10_000_000
    found = problems(raw)
    assert found["capacity.remote-write-series"].startswith("100000 is below the 10100000 series the tenants write")
    assert found["tenancy.tenants[1].limits.head-series"].startswith(
        "90000 is below the 100000 series the tenant writes (remote-write-series)")
    assert "above the" in found["tenancy.tenants[0].remote-write-series"]


def test_a_stateless_ruler_needs_receive_and_the_global_ruler_keeps_its_blocks():
    raw = prod()
    raw["thanos"]["receive"] = {"enabled": False}
    raw["thanos"]["ruler"] = {"stateless": True}
    assert "set thanos.receive.enabled" in problems(raw)["thanos.ruler.stateless"]
    raw = prod()
    raw["global-view"].setdefault("ruler", {})["stateless"] = True
    assert "the global tier has no receive" in problems(raw)["global-view.ruler"]


def test_the_pulumi_new_answers_are_read_at_their_path_in_thanos_config():
    """`pulumi new` writes the template's answers as `thanos:config.<path>` keys (Pulumi.yaml `template:`); they fold
    into thanos:config beside what `pulumi config set --path` put there, and the template's answers alone load."""
    template = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["template"]["config"]
    answers = {key: value["default"] for key, value in template.items()}
    loaded = config.load(config.fold_path_keys(answers))
    assert loaded.cluster_names() == ["main"] and loaded.regions[0].storage.provider == "in-cluster"
    merged = config.fold_path_keys({"thanos:config": {"regions": [{"clusters": [{"zones": ["a"]}]}]},
                                    "thanos:config.regions[0].clusters[0].name": "main"})
    assert merged == {"regions": [{"clusters": [{"zones": ["a"], "name": "main"}]}]}
    assert config.fold_path_keys({"thanos:other": 1}) is None


@pytest.mark.parametrize("keys, message", [
    ({"thanos:config": {"environment": "dev"}, "thanos:config.environment": "prod"},
     "environment: thanos:config.environment is set twice: in thanos:config and as its own key; keep one "
     "(pulumi config rm 'thanos:config.environment')"),
    ({"thanos:config.regions[1].name": "b"}, "regions[1].name: thanos:config.regions[1].name does not fit"),
    ({"thanos:config": {"namespace": "a"}, "thanos:config.namespace.x": "b"}, "namespace.x: thanos:config.namespace.x does not fit"),
    ({"thanos:config.regions..name": "b"}, "thanos:config.regions..name is not a key path"),
])
def test_a_pulumi_new_answer_that_does_not_fit_names_its_key(keys, message):
    with pytest.raises(config.ConfigError) as refused:
        config.fold_path_keys(keys)
    assert message in str(refused.value)
