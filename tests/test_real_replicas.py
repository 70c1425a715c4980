"""The real Prometheus judges the replica alert: prod's planned Prometheus pair of chicago, started with its planned
config and rule files on the harness' cluster DNS, scrapes both replicas through the SRV records of their headless
Service. With both there, PrometheusReplicaDown stays inactive. Once one is killed and leaves the Service (Kubernetes
drops a dead pod's endpoint), it is gone from the survivor's targets and its series go stale rather than showing
`up == 0` (an `up == 0` rule is inactive by then), and the survivor's own rules hold the alert pending, the planned
10 minutes before it fires."""

import json
import re
import time
import urllib.parse
import urllib.request
from datetime import datetime

from tests.realtools import Harness
from tests.realtools.plan import kubernetes_objects
from tests.realtools.pods import planned_containers

STACK, CLUSTER, NAMESPACE = "prod", "chicago", "thanos"
PAIR = 'job="prometheus", namespace="thanos", service="thanos-prometheus"'


def api(process, path: str, **params: str):
    with urllib.request.urlopen(process.url(f"/api/v1/{path}?{urllib.parse.urlencode(params)}"), timeout=5) as response:
        return json.load(response)["data"]


def value(process, query: str) -> float | None:
    """The one sample of an instant query, None when it returns nothing."""
    result = api(process, "query", query=query)["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def replica_rule(process) -> dict:
    """PrometheusReplicaDown as the process evaluates it."""
    rules = [r for g in api(process, "rules", type="alert")["groups"] for r in g["rules"]
             if r["name"] == "PrometheusReplicaDown"]
    assert len(rules) == 1, rules
    return rules[0]


def pair_targets(process) -> list[dict]:
    """The `prometheus` job's active targets."""
    return [t for t in api(process, "targets", state="active")["activeTargets"] if t["labels"]["job"] == "prometheus"]


def evaluated_at(rule: dict) -> float:
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", rule["lastEvaluation"])).timestamp()


def wait_for(what: str, check, seconds: float, process):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"no {what} within {seconds} s:\n{process.output(3000)}")


def test_a_killed_prometheus_replica_fires_the_survivors_replica_alert(tmp_path):
    objects = kubernetes_objects(STACK)
    pair = sorted((c for c in planned_containers(STACK, objects, all_replicas=True)
                   if c.cluster == CLUSTER and c.workload == "thanos-prometheus" and c.name == "prometheus"),
                  key=lambda c: c.pod)
    assert [c.pod for c in pair] == ["thanos-prometheus-0", "thanos-prometheus-1"]
    with Harness(tmp_path, objects) as harness:
        survivor, victim = (harness.start(c) for c in pair)
        for process in (survivor, victim):
            assert process.wait_ready(60) == "ready", process.output()
        # Scrape and evaluation intervals are the planned 30 s, and SRV records are refreshed every 30 s.
        wait_for("scrape of both replicas", lambda: value(survivor, f"count(up{{{PAIR}}} == 1)") == 2, 120, survivor)
        both_up = time.time()
        rule = wait_for("evaluation with both up", lambda: (r := replica_rule(survivor)) and
                        evaluated_at(r) > both_up and r, 90, survivor)
        assert (rule["state"], rule["health"], rule["duration"]) == ("inactive", "ok", 600), rule
        assert value(survivor, f"job_namespace_service:replicas:planned{{{PAIR}}}") == 2

        victim.stop()
        harness.cluster_dns(CLUSTER).remove_pod(NAMESPACE, victim.container.pod)
        # A dead replica still listed shows `up == 0` for a moment; what matters is after it has left the targets
        # and its series have gone stale (Prometheus marks them a scrape interval or two after it leaves).
        wait_for("victim's series going stale", lambda: value(survivor, f"count(up{{{PAIR}}})") == 1, 150, survivor)
        gone = time.time()
        targets = pair_targets(survivor)
        assert [(t["labels"]["instance"].split(".")[0], t["health"]) for t in targets] == [("thanos-prometheus-0", "up")]
        rule = wait_for("evaluation without the victim", lambda: (r := replica_rule(survivor)) and
                        evaluated_at(r) > gone and r, 90, survivor)
    assert rule["state"] == "pending", rule
    [alert] = rule["alerts"]
    assert {k: alert["labels"][k] for k in ("alertname", "job", "namespace", "service", "severity")} == {
        "alertname": "PrometheusReplicaDown", "job": "prometheus", "namespace": NAMESPACE,
        "service": "thanos-prometheus", "severity": "critical"}
    assert float(alert["value"]) == 1  # the replicas left up
