"""The observing half, checked by the tools that consume it: promtool (rules and their unit tests), amtool (config and
routes), a real Alertmanager on loopback, the Grafana dashboard schema, a PromQL parser with the metric catalogue,
and the prometheus-operator CRD schemas (operator mode)."""

import dataclasses
import json
import re
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import promql_parser
import pytest
import yaml

import config as stack_config
from components.cluster import plan_cluster
from components.observability import rules as jobs
from components.observability.alertmanager import alertmanager_args, alertmanager_config, render_config
from components.observability.dashboards import all_dashboards, panel_queries
from components.observability.mixin import RUNBOOK as MIXIN_RUNBOOK
from components.observability.mixin import mixin_alerts, mixin_version
from components.observability.rules import PLATFORM_NOTES, all_alerts, platform_rule_groups, ruler_rule_groups
from components.observability.operator import service_monitor
from components.observability.replicas import planned_replicas
from components.platform.kube import ClusterContext
from components.thanos.prometheus import ScrapeJob, prometheus_config
from config.observability import ReceiverSpec, WebhookReceiver

from tests.support.stacks import ROOT, STACKS, stack_config as raw_stack_config
from .rule_cases import CASES
from .test_artifacts import tool

EVERYTHING = {jobs.SIDECAR, jobs.QUERY, jobs.QUERY_FRONTEND, jobs.STORE, jobs.RULER, jobs.COMPACTOR, jobs.RECEIVE,
              jobs.RECEIVE_ROUTER, jobs.BUCKET_WEB, jobs.PROMETHEUS, jobs.ALERTMANAGER, jobs.MEMCACHED,
              jobs.KUBE_STATE_METRICS, jobs.BUCKET_REPLICATE, jobs.TLS_PROBE}
GRAFANA_SCHEMAS = ROOT / "reference" / "grafana"
METRICS = json.loads((ROOT / "reference" / "exported-metrics.json").read_text())["exporters"]


def load(stack: str):
    return stack_config.load(raw_stack_config(stack))


def promtool_groups(groups: list[dict]) -> list[dict]:
    """Groups as promtool 2.42 reads them: `partial_response_strategy` is Thanos' own field."""
    return [{k: v for k, v in g.items() if k != "partial_response_strategy"} for g in groups]


def prod_replicas() -> dict[tuple[str, str, str], int]:
    """What prod plans behind each Service chicago's Prometheus scrapes."""
    prod = load("prod")
    return planned_replicas(prod, "thanos", plan_cluster(prod, "thanos", compactor_here=True, cluster="chicago").scraped)


def every_rule_group() -> list[dict]:
    return promtool_groups(platform_rule_groups(EVERYTHING, runbooks="docs/runbooks.md", kubernetes=True,
                                                replicas=prod_replicas()) +
                           ruler_rule_groups("chicago", "docs/runbooks.md"))


def humanize(value: float) -> str:
    """Prometheus' `humanize` template function: four significant digits and an SI prefix."""
    if value == 0:
        return f"{value:.4g}"
    prefixes, scale = (("k", "M", "G", "T"), 1 / 1000) if abs(value) >= 1 else (("m", "u", "n", "p"), 1000)
    prefix = ""
    for candidate in prefixes:
        if (abs(value) < 1000) if scale < 1 else (abs(value) >= 1):
            break
        prefix, value = candidate, value * scale
    return f"{value:.4g}{prefix}"


def render(template: str, labels: dict[str, str], value: float | None = None) -> str:
    """An annotation as Prometheus renders it: `$labels.<name>`, and `$value` (plain or humanized) when the case
    gives the alert's value."""
    def value_of(match: re.Match) -> str:
        assert value is not None, f"the case of an alert printing $value gives its value: {template}"
        return humanize(value) if match.group(1) else f"{value:g}"
    text = re.sub(r"\{\{ ?\$labels\.(\w+) ?\}\}", lambda m: labels[m.group(1)], template)
    return re.sub(r"\{\{ ?\$value( \| humanize)? ?\}\}", value_of, text)


def case_tests(case, rule: dict) -> list[dict]:
    """The promtool test groups of one case: the alert fires with exactly its labels and rendered text, or stays
    silent."""
    labels = {**case.labels, **rule["labels"]}
    annotations = {k: render(v, labels, case.value) for k, v in rule["annotations"].items()}
    return [{"interval": case.interval,
             "input_series": [{"series": s, "values": v} for s, v in {**case.extra, **series}.items()],
             "alert_rule_test": [{"eval_time": case.at, "alertname": case.alert, "exp_alerts": expected}]}
            for series, expected in ((case.fire, [{"exp_labels": labels, "exp_annotations": annotations}]),
                                     (case.quiet, []))]


def write_unit_tests(folder: Path, groups: list[dict], only: str | None = None) -> list[str]:
    """A rule file and a test file per alert; promtool evaluates every rule of its rule files at every step, so one
    rule per file keeps the hundred test groups fast. Returns the test files."""
    rules = {r["alert"]: (g["name"], r) for g in groups for r in g["rules"] if "alert" in r}
    written = []
    for case in CASES:
        if only and case.alert != only:
            continue
        group, rule = rules[case.alert]
        (folder / f"{case.alert}.rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": group, "rules": [rule]}]}))
        (folder / f"{case.alert}.test.yaml").write_text(yaml.safe_dump(
            {"rule_files": [f"{case.alert}.rules.yaml"], "evaluation_interval": "1m", "tests": case_tests(case, rule)},
            sort_keys=False))
        written.append(f"{case.alert}.test.yaml")
    return written


def test_rules_pass_promtool_and_every_alert_fires_and_stays_quiet_in_its_unit_tests(tmp_path):
    groups = every_rule_group()
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    check = subprocess.run([tool("promtool"), "check", "rules", "--lint-fatal", str(tmp_path / "rules.yaml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    recorded = [r for g in groups for r in g["rules"] if "record" in r]
    assert f"SUCCESS: {len(alerts) + len(recorded)} rules found" in check.stdout
    files = write_unit_tests(tmp_path, groups)
    # The recording rule the overview reads, computed from two counters.
    (tmp_path / "recorded.test.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "tests": [
        {"interval": "1m", "input_series": [
            {"series": 'http_requests_total{job="thanos-query", instance="a", handler="query", code="200"}',
             "values": "0+60x10"},
            {"series": 'http_requests_total{job="thanos-query", instance="b", handler="query", code="200"}',
             "values": "0+120x10"}],
         "promql_expr_test": [{"expr": "job_handler_code:http_requests:rate5m", "eval_time": "10m", "exp_samples": [
             {"labels": 'job_handler_code:http_requests:rate5m{job="thanos-query", handler="query", code="200"}',
              "value": 3}]}]}]}))
    proc = subprocess.run([tool("promtool"), "test", "rules", *files, "recorded.test.yaml"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert len(files) == len(CASES) == len(alerts) and proc.stdout.count("SUCCESS") == len(files) + 1


def test_a_broken_alert_fails_its_unit_test(tmp_path):
    """The unit tests see a threshold change: the forward-failure alert at 40% no longer fires on 30% failures."""
    groups = every_rule_group()
    for group in groups:
        for rule in group["rules"]:
            if rule.get("alert") == "ThanosReceiveHighForwardRequestFailures":
                assert "> 20" in rule["expr"]
                rule["expr"] = rule["expr"].replace("> 20", "> 40")
    files = write_unit_tests(tmp_path, groups, only="ThanosReceiveHighForwardRequestFailures")
    proc = subprocess.run([tool("promtool"), "test", "rules", *files], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1 and "ThanosReceiveHighForwardRequestFailures" in proc.stdout + proc.stderr


def test_every_alert_has_cases_text_and_a_runbook_section():
    """The platform's own alerts link their section of docs/runbooks.md, the mixin's the upstream runbook's; every
    alert of both has a firing and a quiet unit test."""
    own = [a.name for a in all_alerts()]
    upstream = [r["alert"] for rules in mixin_alerts().values() for r in rules]
    names = own + upstream
    assert len(names) == len(set(names)) >= 60
    assert sorted(c.alert for c in CASES) == sorted(names), "every alert has a firing and a quiet unit test"
    for case in CASES:
        assert case.fire != case.quiet, case.alert
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    sections = {line.removeprefix("### ").strip().lower() for line in runbooks.splitlines() if line.startswith("### ")}
    for rule in (r for g in every_rule_group() for r in g["rules"] if "alert" in r):
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 40, rule["alert"]
        url, anchor = rule["annotations"]["runbook_url"].split("#", 1)
        if rule["alert"] in upstream:
            assert (url, anchor) == (MIXIN_RUNBOOK, f"alert-name-{rule['alert'].lower()}"), rule["alert"]
            notes = rule["annotations"].get("platform_runbook_url")
            assert (notes is not None) is (rule["alert"] in PLATFORM_NOTES), rule["alert"]
            assert notes is None or notes.split("#", 1)[1] in sections, rule["alert"]
        else:
            assert anchor == rule["alert"].lower() and anchor in sections, rule["alert"]
    # Every section is an alert's (or a procedure the sections link), and every mixin alert with one carries it.
    assert {s for s in sections if s.lower() in {u.lower() for u in upstream}} == {n.lower() for n in PLATFORM_NOTES}


def test_the_vendored_mixin_is_the_pinned_thanos_releases():
    """components/observability/mixin/ holds what the Thanos release the plan pins renders (its Go module's
    examples/alerts/alerts.yaml and examples/dashboards/*.json, as ci/vendor-mixin.sh copies them): an upgrade of
    THANOS_IMAGE without a new copy fails here."""
    from config.thanos import THANOS_IMAGE

    version = THANOS_IMAGE.rsplit(":", 1)[1]
    assert mixin_version() == version
    proc = subprocess.run(["go", "mod", "download", "-json", f"github.com/thanos-io/thanos@{version}"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    module = Path(json.loads(proc.stdout)["Dir"])
    vendored = ROOT / "components" / "observability" / "mixin"
    assert (module / "examples" / "alerts" / "alerts.yaml").read_bytes() == (vendored / "alerts.yaml").read_bytes()
    upstream = {p.name: p.read_bytes() for p in (module / "examples" / "dashboards").glob("*.json")}
    assert len(upstream) >= 9
    assert {p.name: p.read_bytes() for p in (vendored / "dashboards").iterdir()} == upstream


@pytest.mark.parametrize("stack", STACKS)
def test_every_mixin_alert_of_what_a_cluster_runs_is_planned(planned, stack):
    """Each cluster's planned rule file holds every alert the upstream mixin defines for the Thanos components that
    cluster's Prometheus watches (the bucket-replicate group aside: not scraped here), by its upstream name."""
    plan = planned[stack]
    upstream = {component: {r["alert"] for r in rules} for component, rules in mixin_alerts().items()}
    checked = 0
    for cluster in plan.clusters():
        groups = planned_rule_file(plan, cluster)
        names = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
        jobs_here = {g["name"].removesuffix(".mixin") for g in groups if g["name"].endswith(".mixin")}
        assert not [r["alert"] for g in groups for r in g["rules"] if 'job=~".*' in r.get("expr", "")], cluster
        for component in jobs_here:
            assert upstream[component] <= names, (cluster, component, upstream[component] - names)
            checked += len(upstream[component])
        assert {jobs.QUERY, jobs.STORE, jobs.SIDECAR} <= jobs_here, (cluster, jobs_here)
    assert checked >= 20


def test_a_cluster_gets_only_the_alerts_of_what_it_runs():
    dev = load("dev")
    chicago = plan_cluster(dev, "thanos-chicago", compactor_here=True, cluster="chicago").rule_scope
    seattle = plan_cluster(dev, "thanos-seattle", compactor_here=True, cluster="seattle").rule_scope
    assert jobs.BUCKET_REPLICATE in chicago and jobs.BUCKET_REPLICATE not in seattle  # chicago copies to seattle
    raw = raw_stack_config("dev")
    raw["thanos"]["receive"]["enabled"] = False
    raw["observability"] = {"collection": {"kube-state-metrics": False}, "alertmanager": {"enabled": False}}
    raw["thanos"]["ruler"]["alertmanagers"] = ["dnssrv+http://_web._tcp.alertmanager-operated.monitoring.svc"]
    raw["global-view"]["ruler"] = {"alertmanagers": ["dnssrv+http://_web._tcp.alertmanager-operated.monitoring.svc"]}
    quiet = plan_cluster(stack_config.load(raw), "thanos", compactor_here=False, cluster="chicago").rule_scope
    groups = {g["name"] for g in platform_rule_groups(set(quiet), runbooks="r", kubernetes=False, replicas={})}
    for absent in (jobs.RECEIVE, jobs.COMPACTOR, jobs.ALERTMANAGER, jobs.KUBE_STATE_METRICS, jobs.BUCKET_REPLICATE):
        assert f"{absent}.alerts" not in groups and f"{absent}.mixin" not in groups
    assert {f"{jobs.QUERY}.mixin", f"{jobs.SIDECAR}.mixin", f"{jobs.SIDECAR}.alerts", "platform.alerts"} <= groups
    assert all("container_" not in r["expr"] for g in platform_rule_groups(set(quiet), runbooks="r", kubernetes=False,
                                                                           replicas={})
               for r in g["rules"]), "no cAdvisor recording rules without Kubernetes collection"


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_collects_alerts_evaluates_rules_and_has_grafana(planned, stack, tmp_path):
    """What preflight shows of each cluster: a 3-replica Alertmanager, the platform's rules (a ConfigMap, or a
    PrometheusRule in operator mode) that promtool accepts, collection beyond Thanos, and Grafana."""
    plan = planned[stack]
    settings = load(stack)
    for cluster in plan.clusters():
        objects = plan.objects(cluster=cluster)
        namespace = next(o["metadata"]["namespace"] for o in objects if o["kind"] == "StatefulSet"
                         and o["metadata"]["name"] == "thanos-ruler" and o["metadata"]["namespace"] != "thanos-global")
        alertmanager = next(o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "thanos-alertmanager")
        assert alertmanager["spec"]["replicas"] == settings.observability.alertmanager.replicas
        rules = [o for o in objects if o["kind"] == "PrometheusRule"] or \
                [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "thanos-prometheus-rules"]
        assert len(rules) == 1
        name = rules[0]["metadata"]["name"]
        text = plan.files(cluster, namespace, name)["rules.yaml" if rules[0]["kind"] == "PrometheusRule" else "platform.yaml"]
        path = tmp_path / f"{cluster}.yaml"
        path.write_text(yaml.safe_dump({"groups": promtool_groups(yaml.safe_load(text)["groups"])}))
        proc = subprocess.run([tool("promtool"), "check", "rules", "--lint-fatal", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        if settings.observability.collection.mode == "managed":
            prometheus = yaml.safe_load(plan.files(cluster, namespace, "thanos-prometheus")["prometheus.yml"])
            jobs_here = {j["job_name"] for j in prometheus["scrape_configs"]}
            assert {"kubelet", "cadvisor", "apiserver", "kubernetes-pods", "kubernetes-services", "alertmanager",
                    "thanos-memcached-index"} <= jobs_here
            assert prometheus["alerting"]["alertmanagers"][0]["api_version"] == "v2"
            query = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "thanos-query")
            tier = settings.global_view.namespace
            beside = cluster in (settings.global_view.host_cluster, settings.global_view.standby_cluster)
            assert any(f".{tier}.svc" in name for name in query["dns_sd_configs"][0]["names"]) is beside
            # The pair's two copies of an alert differ only by the replica label: dropped, Alertmanager merges them.
            assert prometheus["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "prometheus_replica"}]
        else:
            assert {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceMonitor"} >= {
                "prometheus", "thanos-query", "thanos-sidecar", "alertmanager", "thanos-memcached-index"}
    grafana = [o for o in plan.objects("Deployment") if o["metadata"]["name"] == "thanos-grafana"]
    assert len(grafana) == (2 if settings.global_view.standby_cluster else 1)


def planned_rule_file(plan, cluster: str) -> list[dict]:
    """The rule groups a cluster's Prometheus loads, as the plan wrote them (ConfigMap, or PrometheusRule)."""
    for obj in plan.objects(cluster=cluster):
        name, namespace = obj["metadata"]["name"], obj["metadata"].get("namespace")
        if obj["kind"] == "PrometheusRule":
            return promtool_groups(yaml.safe_load(plan.files(cluster, namespace, name)["rules.yaml"])["groups"])
        if obj["kind"] == "ConfigMap" and name == "thanos-prometheus-rules":
            return promtool_groups(yaml.safe_load(plan.files(cluster, namespace, name)["platform.yaml"])["groups"])
    raise LookupError(f"{cluster} has no rules")


def recorded_replicas(groups: list[dict]) -> dict[tuple[str, str, str], int]:
    """(job, namespace, service) -> the count the rules record for it."""
    found = {}
    for rule in (r for g in groups for r in g["rules"] if r.get("record") == jobs.PLANNED):
        labels = rule["labels"]
        found[(labels["job"], labels["namespace"], labels["service"])] = int(re.fullmatch(r"vector\((\d+)\)", rule["expr"])[1])
    return found


def pods_behind(objects: list[dict], namespace: str, service: str) -> int:
    """The pods a Service selects, as the plan runs them: workload replicas, the HPA minimum when an HPA owns the
    count, a `Prometheus` resource's replicas (its pods carry the operator's name label)."""
    here = [o for o in objects if o["metadata"].get("namespace") == namespace]
    selector = next(o for o in here if o["kind"] == "Service" and o["metadata"]["name"] == service)["spec"]["selector"]
    floors = {o["spec"]["scaleTargetRef"]["name"]: o["spec"]["minReplicas"]
              for o in here if o["kind"] == "HorizontalPodAutoscaler"}
    total = 0
    for obj in here:
        if obj["kind"] in ("StatefulSet", "Deployment"):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            replicas = obj["spec"].get("replicas", floors.get(obj["metadata"]["name"]))
        elif obj["kind"] == "Prometheus":
            labels = {**obj["spec"]["podMetadata"]["labels"], "operator.prometheus.io/name": obj["metadata"]["name"]}
            replicas = obj["spec"]["replicas"]
        else:
            continue
        if selector.items() <= labels.items():
            total += replicas
    return total


def scraped_services(plan, cluster: str) -> set[tuple[str, str, str]]:
    """(job, namespace, service) of every Service a cluster's Prometheus finds its targets through: its DNS SRV
    jobs, or its ServiceMonitors (operator mode) but the two cluster-wide collectors'."""
    objects = plan.objects(cluster=cluster)
    monitors = [o for o in objects if o["kind"] == "ServiceMonitor"
                and o["metadata"]["name"] not in ("kube-state-metrics", "node-exporter")]
    if monitors:
        return {(m["metadata"]["name"], namespace, service) for m in monitors
                for namespace in m["spec"]["namespaceSelector"]["matchNames"]
                for service in m["spec"]["endpoints"][0]["relabelings"][0]["regex"].split("|")}
    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "thanos-prometheus")
    text = plan.files(cluster, config["metadata"]["namespace"], "thanos-prometheus")["prometheus.yml"]
    return {(job["job_name"], *reversed(re.fullmatch(r"_[^.]+\._tcp\.([^.]+)\.([^.]+)\.svc\..*", name).groups()))
            for job in yaml.safe_load(text)["scrape_configs"] for sd in job.get("dns_sd_configs", [])
            for name in sd["names"]}


def test_the_rules_record_the_pods_the_plan_runs_behind_every_scraped_service(planned):
    """Every Service a cluster's Prometheus scrapes has its planned count recorded, and that count is the pods the
    plan's own objects put behind it: the zoned ingestors together, every store shard and DR store, the global tier
    beside the host cluster, autoscaled Deployments at their HPA minimum, operator mode's `Prometheus`."""
    checked = 0
    for stack in STACKS:
        plan = planned[stack]
        for cluster in plan.clusters():
            recorded = recorded_replicas(planned_rule_file(plan, cluster))
            assert set(recorded) == scraped_services(plan, cluster), (stack, cluster)
            objects = plan.objects(cluster=cluster)
            actual = {key: pods_behind(objects, key[1], key[2]) for key in recorded}
            assert recorded == actual, (stack, cluster)
            checked += len(recorded)
    prod = recorded_replicas(planned_rule_file(planned["prod"], "chicago"))
    assert prod[(jobs.RECEIVE, "thanos", "thanos-receive")] == 6  # two per zone, three zones
    assert prod[(jobs.QUERY, "thanos-global", "thanos-query-pods")] == 2  # the HPA minimum
    assert prod[(jobs.PROMETHEUS, "thanos", "thanos-prometheus")] == 2
    assert checked > 50


def expected_alert(groups: list[dict], name: str, key: tuple[str, str, str]) -> dict:
    """The alert `name` of these rules firing for one (job, namespace, service), with its rendered text."""
    rule = next(r for g in groups for r in g["rules"] if r.get("alert") == name)
    labels = {**dict(zip(("job", "namespace", "service"), key, strict=True)), **rule["labels"]}
    return {"exp_labels": labels, "exp_annotations": {k: render(v, labels) for k, v in rule["annotations"].items()}}


def up_series(targets: set[tuple[str, str, str, str]]) -> list[dict]:
    """An `up` series at 1 for every (job, namespace, service, instance) target, the labels the scrape jobs give."""
    return [{"series": f'up{{job="{j}", namespace="{n}", service="{s}", instance="{i}"}}', "values": "1x30"}
            for j, n, s, i in sorted(targets)]


def replica_alerts(replica_down: list[dict], missing: list[dict]) -> list[dict]:
    return [{"eval_time": "25m", "alertname": "PrometheusReplicaDown", "exp_alerts": replica_down},
            {"eval_time": "25m", "alertname": "ReplicasMissing", "exp_alerts": missing}]


@pytest.mark.parametrize("stack", STACKS)
def test_a_replica_missing_from_the_targets_fires_from_the_plans_own_rules(planned, stack, tmp_path):
    """promtool over each cluster's planned rule file, with a target for every planned pod: all there, nothing
    fires; one Prometheus missing (its pod left the Service) fires PrometheusReplicaDown; one store gateway missing
    fires ReplicasMissing for its Service, and nothing else."""
    plan = planned[stack]
    files = []
    for cluster in plan.clusters():
        groups = planned_rule_file(plan, cluster)
        recorded = recorded_replicas(groups)
        targets = {(*key, f"{key[2]}-{i}") for key, count in recorded.items() for i in range(count)}
        prometheus = next(k for k in recorded if k[0] == jobs.PROMETHEUS)
        store = min(k for k in recorded if k[0] == jobs.STORE)
        assert recorded[prometheus] == load(stack).thanos.prometheus.replicas
        tests = [{"interval": "1m", "input_series": up_series(targets), "alert_rule_test": replica_alerts([], [])},
                 {"interval": "1m", "input_series": up_series(targets - {(*prometheus, f"{prometheus[2]}-0")}),
                  "alert_rule_test": replica_alerts([expected_alert(groups, "PrometheusReplicaDown", prometheus)], [])},
                 {"interval": "1m", "input_series": up_series(targets - {(*store, f"{store[2]}-0")}),
                  "alert_rule_test": replica_alerts([], [expected_alert(groups, "ReplicasMissing", store)])}]
        (tmp_path / f"{cluster}.rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
        (tmp_path / f"{cluster}.test.yaml").write_text(yaml.safe_dump(
            {"rule_files": [f"{cluster}.rules.yaml"], "evaluation_interval": "1m", "tests": tests}, sort_keys=False))
        files.append(f"{cluster}.test.yaml")
    proc = subprocess.run([tool("promtool"), "test", "rules", *files], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.stdout.count("SUCCESS") == len(files) == len(plan.clusters()) >= 1


def test_rulers_send_to_the_alertmanager_of_their_cluster_with_api_v2(planned):
    for obj in planned["prod"].objects("StatefulSet", cluster="chicago"):
        if obj["metadata"]["name"] != "thanos-ruler":
            continue
        args = obj["spec"]["template"]["spec"]["containers"][0]["args"]
        config = json.loads(next(a for a in args if a.startswith("--alertmanagers.config=")).split("=", 1)[1])
        namespace = "thanos"  # the global ruler too: chicago's Alertmanager is in thanos
        assert config == {"alertmanagers": [{"static_configs": [
            f"dnssrv+_web._tcp.thanos-alertmanager.{namespace}.svc.cluster.local"], "scheme": "http", "api_version": "v2",
            "timeout": "10s"}]}
        assert f"--alert.label-drop={'rule_replica'}" in args


def fake_credentials(spec) -> dict[str, str]:
    return {key: f"https://hooks.example.com/{key}" for r in spec.receivers for key in r.secret_keys}


@pytest.mark.parametrize("stack", STACKS)
def test_alertmanager_configs_pass_amtool(stack, tmp_path):
    spec = load(stack).observability.alertmanager
    path = tmp_path / "alertmanager.yml"
    path.write_text(render_config(spec, fake_credentials(spec)))
    proc = subprocess.run([tool("amtool"), "check-config", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr
    assert "2 inhibit rules" in proc.stdout and f"{len(spec.receivers) + 1} receivers" in proc.stdout


def test_amtool_proves_where_each_clusters_alerts_go(tmp_path):
    """prod: a critical alert pages the on-call of its cluster's region and goes to chat; warnings go to chat; info
    is discarded; anything else goes to the default receiver."""
    spec = load("prod").observability.alertmanager
    path = tmp_path / "alertmanager.yml"
    path.write_text(render_config(spec, fake_credentials(spec)))

    def routes(labels: list[str], expected: str) -> subprocess.CompletedProcess:
        return subprocess.run([tool("amtool"), "config", "routes", "test", f"--config.file={path}",
                               f"--verify.receivers={expected}", *labels], capture_output=True, text=True)

    cases = [(["severity=critical", "cluster=chicago", "alertname=ThanosQueryIsDown"], "oncall-us-east,team-chat"),
             (["severity=critical", "cluster=seattle", "alertname=ThanosStoreIsDown"], "oncall-us-west,team-chat"),
             (["severity=warning", "cluster=chicago", "alertname=TargetDown"], "team-chat"),
             (["severity=info", "cluster=seattle", "alertname=Something"], "discard"),
             (["alertname=Unlabelled"], "team-chat")]
    for labels, expected in cases:
        proc = routes(labels, expected)
        assert proc.returncode == 0, (labels, proc.stdout + proc.stderr)
    wrong = routes(["severity=critical", "cluster=seattle"], "oncall-us-east,team-chat")
    assert wrong.returncode == 1 and "Expected receivers did not match" in wrong.stdout + wrong.stderr


def test_receiver_credentials_live_only_in_the_alertmanager_secret(planned):
    for stack in STACKS:
        for obj in planned[stack].objects("ConfigMap"):
            assert not any("receivers:" in value for value in obj.get("data", {}).values()), obj["metadata"]["name"]
        secrets = [o for o in planned[stack].objects("Secret") if o["metadata"]["name"] == "thanos-alertmanager-config"]
        assert len(secrets) == len(planned[stack].clusters())
        assert all(set(s["stringData"]) == {"alertmanager.yml"} for s in secrets)
    spec = load("prod").observability.alertmanager
    config = alertmanager_config(spec, {"pagerdutyUsEastKey": "k1", "pagerdutyUsWestKey": "k2", "slackWebhookUrl": "s"})
    assert [r["name"] for r in config["receivers"]] == ["discard", "oncall-us-east", "oncall-us-west", "team-chat"]
    assert config["receivers"][1]["pagerduty_configs"][0]["routing_key"] == "k1"


class _Webhook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def do_POST(self):  # noqa: N802 (the standard library's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((self.path.strip("/"), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, payload) -> int:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


def test_a_real_alertmanager_routes_groups_and_inhibits_as_configured(tmp_path):
    """prod's routing tree with every receiver turned into a webhook on a local stub, served by the Debian
    Alertmanager binary on loopback: alerts posted through its v2 API land where the routes say, the two warnings of
    one alert arrive as one notification, and a warning under a critical of the same cluster and job never leaves."""
    binary = tool("prometheus-alertmanager")
    _Webhook.received = []
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    prod = load("prod").observability.alertmanager
    receivers = [ReceiverSpec(name=r.name, webhook=WebhookReceiver(url_secret=f"url{i}")) for i, r in enumerate(prod.receivers)]
    spec = prod.model_copy(update={"receivers": receivers, "group_wait": "1s", "group_interval": "1s"})
    credentials = {f"url{i}": f"http://127.0.0.1:{hook.server_port}/{r.name}" for i, r in enumerate(receivers)}
    (tmp_path / "alertmanager.yml").write_text(render_config(spec, credentials))
    port = _free_port()
    ctx = ClusterContext("chicago", "us-east-1", "thanos", "quay.io/thanos/thanos:v0.42.4")
    args = [a for a in alertmanager_args(ctx, spec.model_copy(update={"replicas": 1}))
            if not a.startswith(("--config.file", "--storage.path", "--web.listen-address"))]
    process = subprocess.Popen([binary, f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if urllib.request.urlopen(f"{base}/-/ready", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("alertmanager did not become ready")

        def alert(name, severity, cluster, job, **extra):
            return {"labels": {"alertname": name, "severity": severity, "cluster": cluster, "job": job, **extra},
                    "annotations": {"summary": name}}

        assert _post(f"{base}/api/v2/alerts", [alert("ThanosQueryIsDown", "critical", "chicago", "thanos-query"),
                                                alert("ThanosStoreIsDown", "critical", "seattle", "thanos-store")]) == 200
        time.sleep(0.5)  # the criticals are in before the warnings they inhibit
        assert _post(f"{base}/api/v2/alerts", [
            alert("TargetDown", "warning", "chicago", "thanos-query"),
            alert("ThanosStoreGrpcErrorRate", "warning", "chicago", "thanos-store", instance="a"),
            alert("ThanosStoreGrpcErrorRate", "warning", "chicago", "thanos-store", instance="b"),
            alert("SomethingInformative", "info", "chicago", "thanos-store")]) == 200
        deadline = time.time() + 20
        while time.time() < deadline and len(_Webhook.received) < 5:
            time.sleep(0.2)
        time.sleep(2)  # anything that should not arrive has had its chance
    finally:
        process.terminate()
        process.wait(timeout=10)
        hook.shutdown()
    delivered = sorted((receiver, body["groupLabels"]["alertname"], len(body["alerts"]))
                       for receiver, body in _Webhook.received if body["status"] == "firing")
    assert delivered == [("oncall-us-east", "ThanosQueryIsDown", 1), ("oncall-us-west", "ThanosStoreIsDown", 1),
                         ("team-chat", "ThanosQueryIsDown", 1), ("team-chat", "ThanosStoreGrpcErrorRate", 2),
                         ("team-chat", "ThanosStoreIsDown", 1)]
    assert process.returncode is not None
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base}/-/ready", timeout=1)


def _validator(name: str) -> jsonschema.Draft7Validator:
    schema = json.loads((GRAFANA_SCHEMAS / f"{name}.jsonschema.json").read_text())
    if name == "dashboard":
        # Where the SDK's JSON Schema export is narrower than its own model and Grafana's: a matcher's options and
        # an override's value are `any` (typing.Optional[object]; a series name, a unit, a number), a threshold's
        # value is a number or null (-Infinity, the base step, serialised).
        definitions = schema["definitions"]
        definitions["MatcherConfig"]["properties"]["options"] = {}
        definitions["DynamicConfigValue"]["properties"]["value"] = {}
        definitions["Threshold"]["properties"]["value"] = {"type": ["number", "null"]}
    return jsonschema.Draft7Validator(schema)


def dashboard_problems(board: dict) -> list[str]:
    """The dashboard against Grafana's schema, then each panel's (a collapsed row's too) options and field config
    against its kind's, and each target against the Prometheus query schema."""
    problems = [e.message for e in _validator("dashboard").iter_errors(board)]
    kinds = {name: json.loads((GRAFANA_SCHEMAS / f"{name}.jsonschema.json").read_text())
             for name in ("timeseries", "stat", "table")}
    query = json.loads((GRAFANA_SCHEMAS / "prometheus.jsonschema.json").read_text())
    for panel in (p for top in board["panels"] for p in (top.get("panels", []) if top["type"] == "row" else [top])):
        schema = kinds[panel["type"]]
        for part, definition in ((panel.get("options"), "Options"),
                                 ((panel.get("fieldConfig") or {}).get("defaults", {}).get("custom"), "FieldConfig")):
            if part is not None:
                problems += [f"{panel['title']}: {e.message}" for e in jsonschema.Draft7Validator(
                    {**schema, "$ref": f"#/definitions/{definition}"}).iter_errors(part)]
        for target in panel["targets"]:
            problems += [f"{panel['title']}: {e.message}" for e in jsonschema.Draft7Validator(
                {**query, "$ref": "#/definitions/dataquery"}).iter_errors(target)]
    return problems


def test_dashboards_validate_against_the_grafana_schema():
    boards = all_dashboards()
    assert len(boards) >= 10 and list(boards)[0] == "thanos-overview"
    for uid, board in boards.items():
        assert dashboard_problems(board) == [], uid
        assert board["schemaVersion"] == 41 and board["uid"] == uid
        assert [v["name"] for v in board["templating"]["list"]] == ["cluster", "namespace"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            for target in panel.get("targets", []):
                assert 'cluster=~"$cluster"' in target["expr"], (uid, panel["title"])


def test_the_dashboard_check_catches_a_bad_panel():
    board = all_dashboards()["thanos-query"]
    panel = next(p for p in board["panels"] if p["type"] == "timeseries")
    panel["targets"][0]["exprr"] = panel["targets"][0].pop("expr")
    panel["gridPos"]["w"] = 30
    problems = dashboard_problems(board)
    assert any("exprr" in p for p in problems) and any("30" in p for p in problems)


def metric_names(expr: str) -> set[str]:
    """Metric names of a PromQL expression (Grafana's label_values() and $variables resolved first)."""
    match = re.fullmatch(r"label_values\((.*),\s*\w+\)", expr)
    expr = match.group(1) if match else expr
    expr = expr.replace("$__rate_interval", "5m").replace("$cluster", "x").replace("$namespace", "y")
    found: set[str] = set()

    def walk(node):
        if isinstance(node, promql_parser.VectorSelector):
            found.add(node.name)
        for attr in ("expr", "lhs", "rhs", "param", "args", "vector_selector"):
            value = getattr(node, attr, None)
            for child in value if isinstance(value, list) else [value] if value is not None else []:
                walk(child)

    walk(promql_parser.parse(expr))
    return found


def known_metrics(recorded: set[str]) -> set[str]:
    names = set(recorded)
    for exporter in METRICS.values():
        for name, kind in exporter["metrics"].items():
            names |= {name} | {"histogram": {f"{name}_bucket", f"{name}_count", f"{name}_sum"},
                                "summary": {f"{name}_count", f"{name}_sum"}}.get(kind, set())
    return names


def test_every_expression_parses_and_uses_only_exported_or_recorded_metrics():
    groups = every_rule_group()
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    known = known_metrics(recorded)
    expressions = [r["expr"] for g in groups for r in g["rules"]]
    expressions += [q for board in all_dashboards().values() for q in panel_queries(board)]
    used: set[str] = set()
    for expr in expressions:
        names = metric_names(expr)
        assert names or re.fullmatch(r"vector\(\d+\)", expr), expr  # or one of the plan's replica counts
        assert names <= known, (expr, names - known)
        used |= names
    assert len(expressions) > 200
    assert recorded <= used, "every recording rule is read by a dashboard or alert"
    assert metric_names('sum(rate(thanos_compact_halted_typo[5m]))') - known == {"thanos_compact_halted_typo"}


def test_grafana_reads_the_global_view_and_is_behind_the_entry_point(planned):
    """Without tenants (prod) Grafana reads the global query-frontend; with tenants (dev) only operators reach it,
    through the tenant gate, and it reads the global query (every tenant: the frontend's query enforces one)."""
    dev, prod = planned["dev"], planned["prod"]
    assert yaml.safe_load(prod.files("chicago", "thanos-global", "thanos-grafana-datasources")["thanos.yaml"])[
        "datasources"][0]["url"] == "http://thanos-query-frontend.thanos-global.svc.cluster.local:10902"
    datasource = yaml.safe_load(dev.files("chicago", "thanos-global", "thanos-grafana-datasources")["thanos.yaml"])
    source = datasource["datasources"][0]
    assert source["url"] == "http://thanos-query.thanos-global.svc.cluster.local:10902"
    assert source["jsonData"]["prometheusType"] == "Thanos"
    assert source["jsonData"]["customQueryParameters"] == "dedup=true&partial_response=true"
    boards = dev.files("chicago", "thanos-global", "thanos-grafana-dashboards")
    assert set(boards) == {f"{uid}.json" for uid in all_dashboards()}
    ingress = next(o for o in dev.objects("Ingress") if o["metadata"]["name"] == "thanos")
    assert "annotations" not in ingress["metadata"]  # the tenant gate checks the passwords
    paths = {p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert paths == {"/": "thanos-tenant-gate"}
    grafana = next(o for o in dev.objects("Deployment") if o["metadata"]["name"] == "thanos-grafana")
    env = {e["name"]: e for e in grafana["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GF_AUTH_BASIC_ENABLED"]["value"] == "false" and env["GF_AUTH_ANONYMOUS_ENABLED"]["value"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "thanos-grafana-admin"
    proxy = next(o for o in prod.objects("Deployment", cluster="chicago") if o["metadata"]["name"] == "thanos-oauth2-proxy")
    args = proxy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--upstream=http://thanos-grafana.thanos-global.svc.cluster.local:3000/grafana/" in args
    grafana = next(o for o in prod.objects("Deployment", cluster="chicago") if o["metadata"]["name"] == "thanos-grafana")
    env = {e["name"]: e.get("value") for e in grafana["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GF_AUTH_PROXY_ENABLED"] == "true" and env["GF_SERVER_ROOT_URL"] == "https://thanos.obs.acme.internal/grafana/"
    services = [o for o in prod.objects("Service") if o["metadata"]["name"] == "thanos-grafana"]
    assert services and all(s["spec"].get("type", "ClusterIP") == "ClusterIP" for s in services)
    assert len(prod.resources("random:index/randomPassword:RandomPassword")) >= 2  # one admin password per Grafana


def test_operator_mode_emits_resources_the_crds_accept(planned):
    """azure runs in operator mode: no Prometheus StatefulSet of ours, a Prometheus with spec.thanos on our objstore
    Secret and labels, a ServiceMonitor per job, the PrometheusRule; every one valid under the v0.93.0 CRD schemas."""
    plan = planned["azure"]
    node_monitors = 0
    for cluster in plan.clusters():
        objects = plan.objects(cluster=cluster)
        assert not [o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "thanos-prometheus"]
        prometheus = next(o for o in objects if o["kind"] == "Prometheus")
        spec = prometheus["spec"]
        assert spec["thanos"]["objectStorageConfig"] == {"name": "thanos-objstore", "key": "objstore.yml"}
        assert spec["replicaExternalLabelName"] == "prometheus_replica" and spec["externalLabels"]["cluster"] == cluster
        assert spec["alerting"]["alertmanagers"][0]["name"] == "thanos-alertmanager"
        monitors = [o for o in objects if o["kind"] == "ServiceMonitor"]
        selected = spec["serviceMonitorSelector"]["matchLabels"]
        assert monitors and all(selected.items() <= m["metadata"]["labels"].items() for m in monitors)
        rule = next(o for o in objects if o["kind"] == "PrometheusRule")
        assert spec["ruleSelector"]["matchLabels"].items() <= rule["metadata"]["labels"].items()
        sidecar = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "thanos-sidecar")
        assert sidecar["spec"]["selector"] == {"operator.prometheus.io/name": "thanos-prometheus"}
        node = [m for m in monitors if m["metadata"]["name"] == "node-exporter"]
        if node:  # the cluster that runs node-exporter scrapes it as its scrape user, from a Secret beside the monitor
            node_monitors += 1
            auth = node[0]["spec"]["endpoints"][0]["basicAuth"]
            assert auth == {"username": {"name": "thanos-node-exporter-scrape", "key": "username"},
                            "password": {"name": "thanos-node-exporter-scrape", "key": "password"}}
            assert any(o["kind"] == "Secret" and o["metadata"]["name"] == "thanos-node-exporter-scrape"
                       and o["metadata"]["namespace"] == node[0]["metadata"]["namespace"] for o in objects)
        for obj in [prometheus, rule, *monitors]:
            schema = json.loads((ROOT / "reference" / "schemas" / f"{obj['kind'].lower()}-v1.json").read_text())
            assert list(jsonschema.Draft7Validator(schema).iter_errors(obj)) == [], obj["metadata"]["name"]
    assert node_monitors == 0  # the azure stack turns node-exporter off; the builder's monitor is checked below
    ctx = ClusterContext(cluster="amsterdam", region="westeurope", namespace="thanos", image="quay.io/thanos/thanos:v0.42.4")
    monitor = service_monitor(ctx, ScrapeJob("node-exporter", ("node-exporter",), "metrics"), "30s",
                              "thanos-node-exporter", "thanos-node-exporter-scrape")
    assert monitor["spec"]["endpoints"][0]["basicAuth"]["password"] == {"name": "thanos-node-exporter-scrape",
                                                                         "key": "password"}
    schema = json.loads((ROOT / "reference" / "schemas" / "servicemonitor-v1.json").read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(monitor)) == []
    bad = next(o for o in plan.objects("ServiceMonitor"))
    bad["spec"]["endpoints"][0]["intervall"] = "30s"
    schema = json.loads((ROOT / "reference" / "schemas" / "servicemonitor-v1.json").read_text())
    assert any("intervall" in e.message for e in jsonschema.Draft7Validator(schema).iter_errors(bad))


def test_node_exporter_is_the_one_workload_with_host_access_alone_in_its_namespace(planned):
    dev = planned["dev"]
    daemonsets = dev.objects("DaemonSet")
    assert len(daemonsets) == 1, "one per Kubernetes cluster: dev's two simulated clusters share it"
    node_exporter = daemonsets[0]
    namespace = node_exporter["metadata"]["namespace"]
    ns = next(o for o in dev.objects("Namespace") if o["metadata"]["name"] == namespace)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert sorted(o["kind"] for o in dev.objects() if o["metadata"].get("namespace") == namespace) == [
        "DaemonSet", "Secret", "Service"]  # the Secret: its web config (the scrape user's bcrypt hash)
    pod = node_exporter["spec"]["template"]["spec"]
    assert pod["hostNetwork"] and pod["hostPID"] and pod["automountServiceAccountToken"] is False
    assert pod["volumes"] == [{"name": "root", "hostPath": {"path": "/"}}, {"name": "web-config", "secret": {
        "secretName": "node-exporter-web-config", "defaultMode": 0o440}}]
    # On the host network no NetworkPolicy applies: it answers only the scrape user (tests/test_real_node_exporter.py),
    # and no scrape annotation lets the opt-in jobs scrape it without the password.
    assert "--web.config.file=/etc/node-exporter/web-config.yml" in pod["containers"][0]["args"]
    service = next(o for o in dev.objects("Service") if o["metadata"]["namespace"] == namespace)
    assert "annotations" not in service["metadata"]
    container = pod["containers"][0]
    assert container["volumeMounts"][0]["readOnly"] is True and container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    # Its own UID and GID: with host PID and the host's root, sharing the Thanos pods' would let it read their
    # environments and group-readable secret volumes.
    thanos_ids = {(p["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
                   p["spec"]["template"]["spec"]["securityContext"]["runAsGroup"],
                   p["spec"]["template"]["spec"]["securityContext"].get("fsGroup"))
                  for p in dev.objects("StatefulSet") + dev.objects("Deployment")}
    own = pod["securityContext"]
    assert own["runAsUser"] not in {u for u, _, _ in thanos_ids}
    assert own["runAsGroup"] not in {g for _, g, _ in thanos_ids} | {f for _, _, f in thanos_ids}
    assert "supplementalGroups" not in own and own["fsGroup"] == own["runAsGroup"]
    kube_state_metrics = [o for o in dev.objects("Deployment") if o["metadata"]["name"] == "kube-state-metrics"]
    assert len(kube_state_metrics) == 1
    role = next(o for o in dev.objects("ClusterRole") if o["metadata"]["name"].startswith("thanos-kube-state-metrics"))
    assert {verb for rule in role["rules"] for verb in rule["verbs"]} == {"list", "watch"}
    for role in dev.objects("ClusterRole"):
        assert {verb for rule in role["rules"] for verb in rule["verbs"]} <= {"get", "list", "watch"}
        assert not any("secrets" in rule.get("resources", []) for rule in role["rules"])


def test_cluster_wide_collectors_are_owned_once_per_kubernetes_cluster():
    dev, prod = load("dev"), load("prod")
    assert [dev.owns_cluster_wide(c) for c in ("chicago", "seattle")] == [True, False]
    assert [prod.owns_cluster_wide(c) for c in ("chicago", "seattle")] == [True, True]


def test_routes_must_name_receivers_and_clusters_of_the_stack():
    raw = raw_stack_config("prod")
    raw["observability"]["alertmanager"]["routes"].append({"receiver": "nobody"})
    with pytest.raises(Exception, match="routes\\[4\\].receiver 'nobody' is not a receiver"):
        stack_config.load(raw)
    raw = raw_stack_config("prod")
    raw["observability"]["alertmanager"]["routes"][0]["clusters"] = ["atlantis"]
    with pytest.raises(Exception, match="'atlantis' is not a cluster of this stack"):
        stack_config.load(raw)
    raw = raw_stack_config("prod")
    raw["observability"]["alertmanager"]["receivers"][0]["slack"] = {"channel": "#x", "api-url-secret": "k"}
    with pytest.raises(Exception, match="exactly one of slack, pagerduty, email, webhook"):
        stack_config.load(raw)
    raw = raw_stack_config("prod")
    raw["observability"]["alertmanager"] = {"enabled": False}
    with pytest.raises(Exception, match="without this program's Alertmanager, alerts go nowhere"):
        stack_config.load(raw)
    raw["thanos"]["ruler"] = {"alertmanagers": ["dnssrv+http://_web._tcp.alertmanager-operated.monitoring.svc"]}
    raw["global-view"]["ruler"] = {"alertmanagers": ["dnssrv+http://_web._tcp.alertmanager-operated.monitoring.svc"]}
    assert not stack_config.load(raw).observability.alertmanager.enabled


def test_manifests_expose_rule_files_and_dashboards(planned):
    files = planned["gcp"].manifests.rglob("files/*/*")
    names = {Path(p).name for p in files}
    assert {"platform.yaml", "prometheus.yml", "thanos-overview.json", "thanos.yaml"} <= names


def test_a_pod_outside_the_stacks_namespaces_cannot_stand_in_for_a_thanos_job(tmp_path):
    """The real Prometheus applies the planned relabelling of the pod job to targets carrying the labels Kubernetes
    discovery gives them (a file_sd target stands for the API server): a pod labelled `thanos-store` in another
    namespace gets the job `attacker/thanos-store`, so `absent(up{job="thanos-store"} == 1)` still fires when the
    real store is down; the stack's own pod keeps `thanos-store`."""
    from components.observability.collection import kubernetes_scrape_jobs

    job = next(j for j in kubernetes_scrape_jobs(("thanos", "thanos-global")) if j["job_name"] == "kubernetes-pods")
    del job["kubernetes_sd_configs"]
    job["file_sd_configs"] = [{"files": [str(tmp_path / "pods.json")]}]

    def discovered(namespace, pod):
        return {"__meta_kubernetes_namespace": namespace, "__meta_kubernetes_pod_name": pod,
                "__meta_kubernetes_pod_phase": "Running",
                "__meta_kubernetes_pod_label_app_kubernetes_io_name": "thanos-store",
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
                "__meta_kubernetes_pod_annotation_prometheus_io_port": "10902"}

    (tmp_path / "pods.json").write_text(json.dumps([
        {"targets": ["127.0.0.2:1"], "labels": discovered("attacker", "evil")},
        {"targets": ["127.0.0.3:1"], "labels": discovered("thanos", "thanos-store-0")}]))
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({"global": {"scrape_interval": "1m"},
                                                             "scrape_configs": [job]}))
    port = _free_port()
    process = subprocess.Popen([tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
                                f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        targets: list = []
        deadline = time.time() + 60
        while time.time() < deadline and len(targets) < 2:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2) as response:
                    targets = json.load(response)["data"]["activeTargets"]
            except OSError:
                pass
            time.sleep(0.5)
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    jobs = sorted((t["labels"]["namespace"], t["labels"]["job"], t["labels"]["instance"]) for t in targets)
    assert jobs == [("attacker", "attacker/thanos-store", "127.0.0.2:10902"),
                    ("thanos", "thanos-store", "127.0.0.3:10902")], output[-3000:]


def test_the_api_server_scrape_verifies_the_servers_name_and_only_kubelets_cannot():
    from components.observability.collection import kubernetes_scrape_jobs

    jobs = {j["job_name"]: j for j in kubernetes_scrape_jobs(("thanos",))}
    assert jobs["apiserver"]["tls_config"] == {"ca_file": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
                                               "server_name": "kubernetes.default.svc"}
    assert [name for name, job in jobs.items() if job.get("tls_config", {}).get("insecure_skip_verify")] == [
        "kubelet", "cadvisor"]


def test_with_tenants_every_scraped_series_carries_its_tenant_and_workloads_the_tenant_of_their_namespace(planned):
    """dev has tenants: every job of the cluster's Prometheus ends with the default tenant, and the workload jobs
    then with the tenant owning the target's namespace (after every other rule: nothing the target sets wins).
    tests/test_real_tenancy.py runs the planned job in the real Prometheus."""
    config = yaml.safe_load(planned["dev"].files("chicago", "thanos-chicago", "thanos-prometheus")["prometheus.yml"])
    default = {"target_label": "tenant_id", "replacement": "default-tenant"}
    for job in config["scrape_configs"]:
        rules = job["relabel_configs"]
        tenant_rules = [i for i, r in enumerate(rules) if r.get("target_label") == "tenant_id"]
        assert tenant_rules and tenant_rules[-1] == len(rules) - 1 and rules[tenant_rules[0]] == default, job["job_name"]
        assert not job.get("honor_labels"), job["job_name"]
        if job["job_name"] in ("kubernetes-pods", "kubernetes-services"):
            assert rules[-2:] == [{"source_labels": ["__meta_kubernetes_namespace"], "regex": team, "target_label":
                                   "tenant_id", "replacement": team} for team in ("team-a", "team-b")], rules
        else:
            assert len(tenant_rules) == 1, job["job_name"]


def test_operator_mode_labels_tenants_as_the_managed_pair_does():
    """prometheus-operator mode with tenants: every ServiceMonitor (the platform's jobs) sets the default tenant, and
    the Kubernetes jobs in the additional scrape configs the tenant of the target's namespace."""
    from components.observability.operator import build_operator_prometheus
    from components.thanos.prometheus import Observed
    from config.thanos import PrometheusSpec

    ctx = ClusterContext(cluster="amsterdam", region="westeurope", namespace="thanos", image="quay.io/thanos/thanos:v0.42.4")
    observed = Observed([ScrapeJob("thanos-store", ("thanos-store",))], kubernetes=True, tenants={"team-a": "team-a"})
    objects = build_operator_prometheus(ctx, PrometheusSpec(), observed, None, node_exporter_namespace=None,
                                        kube_state_metrics=True)
    monitors = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert monitors and all(m["spec"]["endpoints"][0]["relabelings"][-1] == {
        "action": "replace", "targetLabel": "tenant_id", "replacement": "default-tenant"} for m in monitors)
    secret = next(o for o in objects if o["kind"] == "Secret")
    pods = next(j for j in yaml.safe_load(secret["stringData"]["kubernetes.yaml"]) if j["job_name"] == "kubernetes-pods")
    assert pods["relabel_configs"][-1] == {"source_labels": ["__meta_kubernetes_namespace"], "regex": "team-a",
                                           "target_label": "tenant_id", "replacement": "team-a"}
    untenanted = build_operator_prometheus(ctx, PrometheusSpec(), dataclasses.replace(observed, tenants=None), None,
                                           node_exporter_namespace=None, kube_state_metrics=True)
    assert "tenant_id" not in json.dumps(untenanted)


def test_the_enforcing_query_is_scraped_and_counted_beside_the_global_query():
    """With tenants, the host cluster's Prometheus scrapes the global tier's enforcing query under the query's job
    (the query alerts watch it) in the tier's namespace only, and plans its own replicas behind its Service."""
    dev = load("dev")
    tier = dev.global_view.namespace
    scraped = plan_cluster(dev, "thanos-chicago", compactor_here=True, cluster="chicago").scraped
    query = next(s for s in scraped if s.job == "thanos-query")
    replicas = planned_replicas(dev, "thanos-chicago", scraped)
    assert replicas[("thanos-query", tier, "thanos-query-tenants-pods")] == dev.tenancy.query.replicas
    assert ("thanos-query", "thanos-chicago", "thanos-query-tenants-pods") not in replicas
    ctx = ClusterContext("chicago", "us-central", "thanos-chicago", dev.thanos.image)
    names = prometheus_config(ctx, dev.thanos.prometheus, [query])["scrape_configs"][1]["dns_sd_configs"][0]["names"]
    assert f"_http._tcp.thanos-query-tenants-pods.{tier}.svc.cluster.local" in names
    assert not any("thanos-query-tenants-pods.thanos-chicago." in name for name in names)
    keep = service_monitor(ctx, query, "30s")["spec"]["endpoints"][0]["relabelings"][0]  # operator mode
    assert "thanos-query-tenants-pods" in keep["regex"].split("|"), keep
    single = dev.model_copy(update={"tenancy": dev.tenancy.model_copy(update={"tenants": []})})
    untenanted = plan_cluster(single, "thanos-chicago", compactor_here=True, cluster="chicago").scraped
    assert not any(s.tier_services for s in untenanted)
