"""The capacity planner: the operations guide's example, public measurements within their stated ranges, properties
that must hold for any input, and a stack sized by it (with an explicit size below the plan refused)."""

import copy
import itertools
import json
import subprocess
import sys

import pytest
import yaml

import config
from capacity import Constants, Inputs, plan
from capacity.planner import bucket_bytes_over_time, raw_bytes_per_sample

from tests.support.stacks import ROOT, run_preflight, stack_config

GB = 1e9
GUIDE_CONSTANTS = Constants(raw_chunk_bytes_per_sample=2.0, index_overhead={"medium": 0.0}, bytes_per_5m_window=6,
                            bytes_per_1h_window=6, block_slack_days=0)


def guide(**changes) -> Inputs:
    """The operations guide's example: 100k series at 15 s, raw 30 d, 5m 90 d, 1h 2 y, one copy."""
    base = dict(active_series=100_000, scrape_interval_s=15, prometheus_replicas=1, retention_raw_days=30,
                retention_5m_days=90, retention_1h_days=730, delete_delay_hours=0, receive_dedup=False)
    return Inputs(**{**base, **changes})


def test_the_guides_example_with_its_own_formulas():
    """The guide printed 17.2 TB; its own formulas give 60.62 GB (raw 34.56 + 5m 15.55 + 1h 10.51)."""
    bucket = plan(guide(constants=GUIDE_CONSTANTS)).bucket
    assert [(r.name, round(r.bytes / GB, 2)) for r in bucket.resolutions] == [("raw", 34.56), ("5m", 15.55),
                                                                            ("1h", 10.51)]
    assert round(bucket.total_bytes / GB, 2) == 60.62
    assert 17.2e12 / bucket.total_bytes == pytest.approx(284, abs=1)


def test_the_guides_example_with_the_recommended_constants():
    """B_RAW 2.0 (incl. index), B_5M 7, B_1H 9: 68.5 GB flat, 78 GB with the average block slack, 88 GB at peak;
    an HA pair without offline dedup doubles it."""
    recommended = Constants(raw_chunk_bytes_per_sample=2.0, index_overhead={"medium": 0.0})
    flat = plan(guide(constants=Constants(raw_chunk_bytes_per_sample=2.0, index_overhead={"medium": 0.0},
                                          block_slack_days=0))).bucket
    assert flat.total_bytes / GB == pytest.approx(68.47, abs=0.01)
    bucket = plan(guide(constants=recommended)).bucket
    assert bucket.total_bytes / GB == pytest.approx(78.1, abs=0.1)
    assert bucket.peak_bytes / GB == pytest.approx(87.8, abs=0.1)
    pair = plan(guide(constants=recommended, prometheus_replicas=2)).bucket
    assert pair.total_bytes == pytest.approx(2 * bucket.total_bytes)
    assert plan(guide(constants=recommended)).cost.storage_usd == pytest.approx(78.1 * 0.023, abs=0.01)


def test_compactor_disk_of_the_example():
    """2 x one stream's 14 days of raw x 1.2 = 38.7 GB (the docs' 100 GB default is the floor)."""
    inputs = guide(constants=Constants(raw_chunk_bytes_per_sample=2.0, index_overhead={"medium": 0.0},
                                       compactor_disk_floor=0))
    assert plan(inputs).sizes.compactor_disk / GB == pytest.approx(2 * 16.128 * 1.2, rel=0.001)
    assert plan(guide()).sizes.compactor_disk == 100 * 1024**3


@pytest.mark.parametrize("churn, samples, measured_bytes, source", [
    ("high", 283_164_613_922, 707_183_107_867, "thanos#4833: a 2-week block of 6.25M series, 2.50 B/sample"),
    ("low", 220_088_505, 411e6, "thanos#8139: a 2-day raw block, 1.87 B/sample"),
])
def test_raw_bytes_per_sample_reproduce_public_blocks(churn, samples, measured_bytes, source):
    """Within 10% of each measured block, and inside the 1.3-2.5 B/sample range the sources state."""
    per_sample = raw_bytes_per_sample(Inputs(active_series=1, churn=churn))
    assert 1.3 <= per_sample <= 2.5
    assert samples * per_sample == pytest.approx(measured_bytes, rel=0.10), source


def test_5m_windows_and_head_memory_reproduce_public_numbers():
    c = Constants()
    assert 3_866_901 * c.bytes_per_5m_window == pytest.approx(27e6, rel=0.01)  # thanos#8139: 27 MB 5m block
    mimir = plan(Inputs(active_series=300_000)).sizes.prometheus_memory
    assert mimir == pytest.approx(2.5e9, rel=0.15)  # Mimir: 2.5 GB per 300k in-memory series
    rule_of_thumb = plan(Inputs(active_series=1_500_000)).sizes.prometheus_memory
    assert 10e9 <= rule_of_thumb <= 1.3 * 10e9  # prometheus#4553: ~10 GB for 1.5M series, "8kB per series"


def sizes_of(inputs: Inputs) -> tuple[float, ...]:
    p = plan(inputs)
    return (p.bucket.total_bytes, p.bucket.peak_bytes, p.cost.storage_usd, p.sizes.prometheus_memory,
            p.sizes.prometheus_disk, p.sizes.compactor_disk, p.sizes.store_disk)


GRID = list(itertools.product([10_000, 300_000, 5_000_000], [15, 60], [7, 30], [1, 2], ["low", "high"]))


@pytest.mark.parametrize("series, scrape, raw_days, replicas, churn", GRID)
def test_more_series_retention_replicas_or_clusters_never_need_less(series, scrape, raw_days, replicas, churn):
    base = Inputs(active_series=series, scrape_interval_s=scrape, retention_raw_days=raw_days,
                  retention_5m_days=max(raw_days, 30), prometheus_replicas=replicas, churn=churn)
    for bigger in (dict(active_series=series * 2), dict(retention_raw_days=raw_days + 10),
                   dict(retention_5m_days=base.retention_5m_days + 30), dict(retention_1h_days=1000),
                   dict(prometheus_replicas=replicas + 1), dict(clusters=2)):
        more = sizes_of(Inputs(**{**base.__dict__, **bigger}))
        assert all(m >= b for m, b in zip(more, sizes_of(base), strict=True)), bigger
    grown = sizes_of(Inputs(**{**base.__dict__, "active_series": series * 2}))
    assert grown[0] > sizes_of(base)[0]


@pytest.mark.parametrize("series, scrape, raw_days, replicas, churn", GRID)
def test_offline_dedup_never_increases_the_bucket(series, scrape, raw_days, replicas, churn):
    base = dict(active_series=series, scrape_interval_s=scrape, retention_raw_days=raw_days, churn=churn,
                prometheus_replicas=replicas, remote_write_series=series // 2)
    for field in ("prometheus_dedup", "receive_dedup"):
        without = plan(Inputs(**{**base, field: False})).bucket
        with_dedup = plan(Inputs(**{**base, field: True})).bucket
        assert with_dedup.total_bytes <= without.total_bytes and with_dedup.peak_bytes <= without.peak_bytes


def test_the_bucket_grows_to_its_steady_state():
    inputs = Inputs(active_series=100_000)
    days = [0, 1, 30, 100, 400, 800]
    series = bucket_bytes_over_time(inputs, days)
    assert [v == 0 for v in series["5m"][:2]] == [True, True] and series["1h"][2] > 0
    for values in series.values():
        assert values == sorted(values)
    final = sum(values[-1] for values in series.values())
    assert final == pytest.approx(sum(r.bytes for r in plan(inputs).bucket.resolutions))


def test_bad_planner_inputs_are_named():
    with pytest.raises(ValueError, match="churn must be one of low, medium, high, not 'wild'"):
        plan(Inputs(active_series=1, churn="wild"))
    with pytest.raises(ValueError, match="storage class of aws must be one of STANDARD, STANDARD_IA, GLACIER_IR"):
        plan(Inputs(active_series=1, storage_class="DEEP_ARCHIVE"))


# --- a stack sized by the plan ------------------------------------------------------------------------------------

def test_prod_sizes_are_the_plans(planned):
    """prod has `capacity:`: its PVCs, memory requests and cache sizes are exactly what the planner says."""
    from config.capacity import needed_sizes

    stack = config.load(stack_config("prod"))
    needed = needed_sizes(stack)
    objects = planned["prod"].objects("StatefulSet") + planned["prod"].objects("Deployment")
    chicago = {o["metadata"]["name"]: o for o in objects if o["metadata"]["labels"]["app.kubernetes.io/instance"] == "chicago"}

    def claim(name):
        return chicago[name]["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]

    def memory(name, container):
        c = next(c for c in chicago[name]["spec"]["template"]["spec"]["containers"] if c["name"] == container)
        return c["resources"]["requests"]["memory"]

    gib = lambda n: f"{-(-n // 1024**3)}Gi"  # noqa: E731
    mib = lambda n: f"{-(-n // 1024**2)}Mi"  # noqa: E731
    assert claim("thanos-prometheus") == gib(needed["prometheus.storage-size"])
    assert claim("thanos-compactor") == gib(needed["compactor.storage-size"]) != "100Gi"
    assert claim("thanos-store") == gib(needed["store.storage-size"])
    assert memory("thanos-prometheus", "prometheus") == mib(needed["prometheus.resources"])
    assert memory("thanos-query-pods", "thanos-query") == mib(needed["query.resources"])
    assert memory("thanos-receive-us-east-1a", "thanos-receive") == mib(needed["receive.resources"])
    index = next(c for c in chicago["thanos-memcached-index"]["spec"]["template"]["spec"]["containers"])
    assert index["args"][0] == f"-m{-(-needed['caches.index.memory-mb'] // 1024**2)}"


def test_an_explicit_size_below_the_plan_is_refused_with_the_number_needed(tmp_path):
    raw = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    raw["config"]["thanos:config"]["thanos"]["compactor"]["storage-size"] = "150Gi"
    raw["config"]["thanos:config"]["thanos"]["prometheus"] = {"resources": {"requests": {"memory": "2Gi"},
                                                                           "limits": {"memory": "4Gi"}}}
    path = tmp_path / "Pulumi.small.yaml"
    path.write_text(yaml.safe_dump(raw))
    proc = run_preflight("--config-file", str(path), "--no-policy")
    assert proc.returncode == 2
    from preflight.cli import key_lines

    line = key_lines(path, "thanos:config")
    assert proc.stderr.splitlines()[1:] == [
        "  - thanos.prometheus.resources.requests.memory: 2Gi is below the 8069Mi the capacity plan needs "
        f"(1000000 active series per cluster) (Pulumi.small.yaml:{line('thanos.prometheus.resources.requests.memory')})",
        "  - thanos.compactor.storage-size: 150Gi is below the 211Gi the capacity plan needs "
        f"(1000000 active series per cluster) (Pulumi.small.yaml:{line('thanos.compactor.storage-size')})"]
    assert yaml.safe_dump(raw).splitlines()[line("thanos.compactor.storage-size") - 1].strip() == "storage-size: 150Gi"
    raw["config"]["thanos:config"]["capacity"]["enforce"] = "warn"
    path.write_text(yaml.safe_dump(raw))
    proc = run_preflight("--config-file", str(path), "--no-policy")
    assert proc.returncode == 0
    assert "warning: capacity: thanos.compactor.storage-size: 150Gi is below the 211Gi" in proc.stderr


def test_sizes_set_explicitly_above_the_plan_are_kept():
    raw = copy.deepcopy(stack_config("prod"))
    raw["thanos"]["compactor"]["storage-size"] = "500Gi"
    assert config.load(raw).thanos.compactor.storage_size == "500Gi"
    raw.pop("capacity")
    assert config.load(raw).thanos.compactor.storage_size == "500Gi"


def run_capacity(*args):
    return subprocess.run([sys.executable, "-m", "capacity", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_the_command_prints_a_table_json_and_a_plot(tmp_path):
    proc = run_capacity("prod", "--json", str(tmp_path / "plan.json"), "--plot", str(tmp_path / "bucket.png"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("bucket of ") == 2 and "monthly cost on aws STANDARD with its DR copy: $" in proc.stdout
    document = json.loads((tmp_path / "plan.json").read_text())
    assert sorted(document) == ["us-east-1", "us-west-2"]
    east = document["us-east-1"]
    assert [r["name"] for r in east["bucket"]["resolutions"]] == ["raw", "5m", "1h"]
    assert east["monthlyCost"]["prices_dated"] == "2026-03" and east["monthlyCost"]["totalUsd"] > 0
    image = (tmp_path / "bucket.png").read_bytes()
    assert image[:8] == b"\x89PNG\r\n\x1a\n" and len(image) > 20_000


def test_the_command_without_a_stack_prints_its_usage():
    proc = run_capacity()
    assert proc.returncode == 2 and proc.stderr.startswith("usage: python -m capacity")
    assert "give a STACK" in proc.stderr and "Traceback" not in proc.stderr


def test_the_command_refuses_a_stack_without_capacity_inputs():
    proc = run_capacity("dev")
    assert proc.returncode == 2
    assert "Pulumi.dev.yaml has no capacity: section in thanos:config" in proc.stderr
    proc = run_capacity("dev", "--series", "50000")
    assert proc.returncode == 0 and "50,000 active series each" in proc.stdout
    assert "set below the plan: thanos.compactor.storage-size: 5Gi is below the 100Gi" in proc.stdout


def test_a_storage_class_the_cloud_does_not_price_is_named():
    raw = copy.deepcopy(stack_config("prod"))
    raw["capacity"]["storage-class"] = "DEEP_ARCHIVE"
    with pytest.raises(config.ConfigError) as err:
        config.load(raw)
    assert err.value.problems == [("capacity.storage-class", "storage class of aws must be one of STANDARD, "
                                                             "STANDARD_IA, GLACIER_IR, not 'DEEP_ARCHIVE'")]


def test_a_stack_made_by_pulumi_new_gets_its_plan(tmp_path):
    """`pulumi new` writes the template's answers as `thanos:config.<path>` keys; the command reads them as the
    program does, and `thanos:config.capacity.active-series` counts as a capacity section."""
    answers = {"thanos:config.environment": "dev", "thanos:config.regions[0].name": "local",
               "thanos:config.regions[0].storage.provider": "in-cluster",
               "thanos:config.regions[0].storage.bucket": "thanos",
               "thanos:config.regions[0].clusters[0].name": "main",
               "thanos:config.regions[0].clusters[0].kubernetes.context": "kind-mine"}
    stack_file = tmp_path / "Pulumi.mine.yaml"
    stack_file.write_text(yaml.safe_dump({"config": answers}))
    proc = run_capacity("mine", "--config-file", str(stack_file), "--series", "20000")
    assert proc.returncode == 2  # receive is on by default, and nothing says what arrives through it
    assert "capacity.remote-write-series: is 0 while thanos.receive is enabled" in proc.stderr, proc.stderr
    stack_file.write_text(yaml.safe_dump({"config": {**answers, "thanos:config.capacity.remote-write-series": 50000}}))
    proc = run_capacity("mine", "--config-file", str(stack_file), "--series", "20000")
    assert proc.returncode == 0, proc.stderr
    assert "bucket of local" in proc.stdout and "20,000 active series each" in proc.stdout
    stack_file.write_text(yaml.safe_dump({"config": {**answers, "thanos:config.capacity.active-series": 30000,
                                                     "thanos:config.capacity.remote-write-series": 50000}}))
    proc = run_capacity("mine", "--config-file", str(stack_file))
    assert proc.returncode == 0 and "30,000 active series each" in proc.stdout, proc.stderr
    stack_file.write_text(yaml.safe_dump({"config": {**answers, "thanos:config.regions[2].name": "far"}}))
    proc = run_capacity("mine", "--config-file", str(stack_file), "--series", "20000")
    assert proc.returncode == 2 and proc.stderr.startswith("invalid stack configuration in Pulumi.mine.yaml"), proc.stderr
    assert "regions[2].name: thanos:config.regions[2].name does not fit thanos:config there" in proc.stderr
