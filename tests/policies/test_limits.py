"""Limit rules (policies/thanos_policies/limits.py): receive routers with write limits, Prometheus holding each
scraped workload to a sample limit."""

import copy

import yaml

from ..support.policies import check, check_stack, chicago, container, named, thanos_workload

ROUTER = "thanos-receive-router"


def _limits(resources) -> dict:
    return named(resources, "ConfigMap", "thanos-receive-limits", "thanos")["inputs"]["data"]


def test_receive_router_needs_write_limits(prod):
    resources = chicago(prod, "thanos")
    assert check_stack("thanos-limits-receive", resources) == []
    router = named(resources, "Deployment", ROUTER, "thanos")
    args = container(router["inputs"], ROUTER)["args"]
    args[:] = [a for a in args if not a.startswith("--receive.limits-config-file=")]
    assert check_stack("thanos-limits-receive", resources) == [
        "thanos-receive-router: the receive router sets no --receive.limits-config-file: a writer's burst of series or "
        "an oversized request reaches every ingestor (config: thanos.receive.limits)."]


def test_receive_limits_must_limit_something_and_head_series_needs_meta_monitoring(prod):
    resources = chicago(prod, "thanos")
    data = _limits(resources)
    planned = yaml.safe_load(data["limits.yaml"])
    assert planned["write"]["default"]["head_series_limit"] > 0
    unlimited = copy.deepcopy(planned)
    unlimited["write"] = {"default": {"head_series_limit": 0, "request": {"series_limit": 0}}}
    data["limits.yaml"] = yaml.safe_dump(unlimited)
    assert check_stack("thanos-limits-receive", resources) == [
        "thanos-receive-router: the receive router's limits config sets no limit (0 or absent means none) "
        "(config: thanos.receive.limits)."]
    blind = copy.deepcopy(planned)
    del blind["write"]["global"]["meta_monitoring_url"]
    data["limits.yaml"] = yaml.safe_dump(blind)
    assert check_stack("thanos-limits-receive", resources) == [
        "thanos-receive-router: the receive router's head-series limits need write.global.meta_monitoring_url (a "
        "Prometheus that scrapes the ingestors): without it they never apply."]


def test_anyones_receive_router_and_ingestor():
    """kube-thanos style: a RouterIngestor with an inline limits config passes, without one it is refused; an
    IngestorOnly receive (no hashring) is not a router."""
    ring = "--receive.hashrings-file=/etc/ring/hashrings.json"
    limited = thanos_workload("StatefulSet", "receive", ["receive", ring, "--receive.local-endpoint=$(NAME):10901",
                                                         "--receive.limits-config=write: {default: {head_series_limit: "
                                                         "100000}, global: {meta_monitoring_url: http://prom:9090}}"])
    bare = thanos_workload("StatefulSet", "receive-bare", ["receive", ring, "--receive.local-endpoint=$(NAME):10901"])
    ingestor = thanos_workload("StatefulSet", "ingestor", ["receive", "--receive.local-endpoint=$(NAME):10901"])
    assert check_stack("thanos-limits-receive", [limited, bare, ingestor]) == [
        "receive-bare: the receive router sets no --receive.limits-config-file: a writer's burst of series or an "
        "oversized request reaches every ingestor (config: thanos.receive.limits)."]


def test_workload_scrapes_need_a_sample_limit(prod):
    config_map = named(chicago(prod, "thanos"), "ConfigMap", "thanos-prometheus", "thanos")
    props = config_map["inputs"]
    assert check("thanos-limits-scrape", config_map["type"], props) == []
    config = yaml.safe_load(props["data"]["prometheus.yml"])
    pods = next(j for j in config["scrape_configs"] if j["job_name"] == "kubernetes-pods")
    assert pods["sample_limit"] > 0
    del pods["sample_limit"]
    props["data"]["prometheus.yml"] = yaml.safe_dump(config)
    assert check("thanos-limits-scrape", config_map["type"], props) == [
        "thanos-prometheus (prometheus.yml): scrape job 'kubernetes-pods' scrapes pods of every namespace without "
        "sample_limit: one target with millions of series exhausts Prometheus "
        "(config: observability.collection.scrape-limits.sample-limit)."]
    config["global"]["sample_limit"] = 1000  # Prometheus' global limit covers every job
    props["data"]["prometheus.yml"] = yaml.safe_dump(config)
    assert check("thanos-limits-scrape", config_map["type"], props) == []


def test_operator_mode_scrapes_and_prometheus_resources(planned):
    """azure's operator mode: the Kubernetes jobs as additional scrape configs (a Secret: the plan redacts it, so it
    is built here as the operator module builds it), and the Prometheus resource."""
    from components.observability.collection import kubernetes_scrape_jobs

    jobs = kubernetes_scrape_jobs(("thanos",))
    secret = {"metadata": {"name": "thanos-prometheus-kubernetes-jobs", "namespace": "thanos"},
              "stringData": {"kubernetes.yaml": yaml.safe_dump(jobs)}}
    assert check("thanos-limits-scrape", "kubernetes:core/v1:Secret", secret) == []
    for job in jobs:
        job.pop("sample_limit", None)
    secret["stringData"]["kubernetes.yaml"] = yaml.safe_dump(jobs)
    assert check("thanos-limits-scrape", "kubernetes:core/v1:Secret", secret) == [
        f"thanos-prometheus-kubernetes-jobs (kubernetes.yaml): scrape job {job!r} scrapes pods of every namespace "
        "without sample_limit: one target with millions of series exhausts Prometheus "
        "(config: observability.collection.scrape-limits.sample-limit)."
        for job in ("kubernetes-pods", "kubernetes-services")]
    azure = planned["azure"].plan["resources"]
    prometheus = next(r for r in azure if r["type"].endswith(":Prometheus"))
    spec = copy.deepcopy(prometheus["inputs"])
    assert check("thanos-limits-scrape", prometheus["type"], spec) == []
    spec["spec"]["podMonitorNamespaceSelector"] = {}
    spec["spec"]["podMonitorSelector"] = {}
    assert check("thanos-limits-scrape", prometheus["type"], spec) == [
        "thanos-prometheus: Prometheus takes podMonitors from other namespaces without spec.enforcedSampleLimit: one "
        "target with millions of series exhausts it."]
    spec["spec"]["enforcedSampleLimit"] = 50000
    assert check("thanos-limits-scrape", prometheus["type"], spec) == []
