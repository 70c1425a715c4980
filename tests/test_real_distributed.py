"""Distributed mode with the real Thanos on dev's data path (the `dev` fixture): the global query planned with
`global-view.mode: distributed` and `query.promql-engine: thanos` answers what dev's own global query (local mode,
the Prometheus engine) answers over both clusters, and its fragments run on the leaves (their Query API counts
them); without `--query.distributed-with-overlapping-interval` a leaf holding an empty TSDB (an idle ruler) is
taken to hold nothing. Started beside dev's global query, from the plan's args with that override, and stopped by
the test."""

import dataclasses
import json
import math
import time
import urllib.request

import pytest

from tests.realtools.devstack import CLUSTERS, GLOBAL_NAMESPACE, eventually, http_json, query, ruler_replica
from tests.realtools.pods import planned_containers
from tests.realtools.plan import kubernetes_objects

pytestmark = pytest.mark.xdist_group("real-dev")

DISTRIBUTED = {"global-view": {"mode": "distributed", "query": {"promql-engine": "thanos"}, "ruler": {"enabled": False}}}
HOST = "chicago"
"""The cluster running dev's global tier."""
OVERLAPPING = "--query.distributed-with-overlapping-interval"
EMPTY_MIN_TIME = 2**63 - 1
CLUSTERS_UP = "count by (cluster) (up)"


def _leaf_query_api_calls(process) -> float:
    """The Query API calls a leaf query answered (a distributed root's fragments; nothing else here uses the API)."""
    with urllib.request.urlopen(process.url("/metrics"), timeout=10) as response:
        lines = response.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines
               if line.startswith("grpc_server_handled_total{") and 'grpc_service="thanos.Query"' in line)


def _answer(result: list[dict]) -> dict[tuple, list[tuple[float, float]]]:
    """Series labels -> their (time, value) points, from an instant or range result."""
    return {tuple(sorted(r["metric"].items())): [(float(t), float(v)) for t, v in r.get("values") or [r["value"]]]
            for r in result}


def _same(local: dict, distributed: dict) -> bool:
    return local.keys() == distributed.keys() and all(
        len(local[k]) == len(distributed[k]) and all(
            t1 == t2 and math.isclose(v1, v2, rel_tol=1e-9) for (t1, v1), (t2, v2) in zip(local[k], distributed[k], strict=True))
        for k in local)


def _empty_tsdbs(leaf) -> list[str]:
    """The leaf's StoreAPIs whose TSDB holds nothing yet (MinTime MaxInt64: an idle ruler, an unwritten ingestor)."""
    stores = http_json(leaf.url("/api/v1/stores"))["data"]
    return [e["name"] for entries in stores.values() for e in entries if e.get("minTime") == EMPTY_MIN_TIME]


LIVE_SECONDS = 180
"""Until both clusters' live series reach the global query: on a fresh dev fixture, each Prometheus' first scrapes,
its sidecar and the leaves' endpoint refresh come first (under a loaded CI more than a minute)."""


def both_clusters_live(dev, global_query) -> None:
    """Both leaf queries running (a fault run before may have left one stopped) and both clusters' `up` answered by
    `global_query`."""
    for cluster, namespace in CLUSTERS.items():
        leaf = dev.process(cluster, namespace, "thanos-query-pods")
        if not leaf.alive():
            assert (restarted := dev.restart(leaf)).wait_ready(60) == "ready", restarted.output()
    eventually(lambda: {r["metric"].get("cluster") for r in query(global_query, CLUSTERS_UP)} >= set(CLUSTERS),
               LIVE_SECONDS, every=3)


def test_the_distributed_global_query_answers_as_the_local_one_with_the_leaves_evaluating(dev, capsys):
    planned = next(c for c in planned_containers("dev", kubernetes_objects("dev", DISTRIBUTED))
                   if c.namespace == GLOBAL_NAMESPACE and c.workload == "thanos-query-pods")
    assert {"--query.mode=distributed", "--query.promql-engine=thanos", "--query.partition-label=cluster",
            OVERLAPPING} <= set(planned.args)
    local = dev.process(HOST, GLOBAL_NAMESPACE, "thanos-query-pods")
    assert not [a for a in local.container.args if a.startswith(("--query.mode", "--query.promql-engine"))]
    leaves = [dev.process(cluster, namespace, "thanos-query-pods") for cluster, namespace in CLUSTERS.items()]
    both_clusters_live(dev, local)

    def started(pod: str, args: list[str]):
        # dev's pod with other args: its mounts (the client certificate the leaves trust) come from the running
        # plan, since a second plan issues other certificates. No Service selects it.
        process = dev.harness.start(dataclasses.replace(local.container, pod=pod, labels={}, subdomain=None, args=args))
        assert process.wait_ready(60) == "ready", process.output()
        eventually(lambda: "adding new query" in process.output(100_000) and process.output(100_000).count(
            "adding new query") >= len(CLUSTERS), 30, every=0.5)
        return process

    # Without the overlapping interval, a leaf holding an empty TSDB counts as holding nothing: an empty success.
    empty = {cluster: _empty_tsdbs(leaf) for cluster, leaf in zip(CLUSTERS, leaves, strict=True)}
    default = started("thanos-query-distributed-default", [a for a in planned.args if a != OVERLAPPING])
    try:
        answered = {r["metric"]["cluster"] for r in query(default, CLUSTERS_UP)}
    finally:
        default.stop()
    assert not answered & {cluster for cluster, names in empty.items() if names}, (empty, answered)

    begin = time.monotonic()
    process = started("thanos-query-distributed", planned.args)
    try:
        ready = time.monotonic() - begin
        assert "Distributed query mode enabled, using Thanos as the default query engine" in process.output(100_000)
        start, end = dev.window
        # A moment every scrape before it is in (the interval is 30 s), answered by both clusters.
        settled = eventually(lambda: (lambda at: at if {r["metric"].get("cluster") for r in query(
            local, CLUSTERS_UP, time=str(at))} >= set(CLUSTERS) else None)(int(time.time()) - 45), 90, every=5)
        now = settled
        cases = [(CLUSTERS_UP, {"time": str(now)}),
                 ("sum by (cluster, job) (up)", {"time": str(now)}),
                 ("sum by (cluster) (harness_history)",
                  {"start": str(start // 1000 + 3600), "end": str(end // 1000 - 3600), "step": "300"}),
                 ("max by (cluster, instance) (max_over_time(harness_history[1h]))",
                  {"start": str(start // 1000 + 7200), "end": str(end // 1000 - 3600), "step": "3600"})]
        before = [_leaf_query_api_calls(leaf) for leaf in leaves]
        timings, points = [], 0
        for expr, params in cases:
            t0 = time.monotonic()
            expected = _answer(query(local, expr, **params))
            t1 = time.monotonic()
            answer = _answer(query(process, expr, **params))
            timings.append((t1 - t0, time.monotonic() - t1))
            assert {dict(k).get("cluster") for k in expected} >= set(CLUSTERS), f"{expr}: {expected}"
            assert _same(expected, answer), f"{expr}:\nlocal {expected}\ndistributed {answer}"
            points += sum(len(v) for v in answer.values())
        fragments = [_leaf_query_api_calls(leaf) - b for leaf, b in zip(leaves, before, strict=True)]
        assert all(f >= len(cases) for f in fragments), fragments
    finally:
        process.stop()
    with capsys.disabled():
        print(f"\ndistributed global query: without {OVERLAPPING} it answered {sorted(answered) or 'nothing'} for "
              f"{CLUSTERS_UP} (empty TSDBs on the leaves: {empty}); with it, ready in {ready:.1f} s and {len(cases)} "
              f"queries ({points} points) answered as the local one (local/distributed s: "
              f"{', '.join(f'{a:.2f}/{b:.2f}' for a, b in timings)}); Query API calls on the leaves: "
              f"{dict(zip(CLUSTERS, fragments, strict=True))}")


def test_a_distributed_query_leaves_out_the_global_rulers_series(dev, capsys):
    """Why the config refuses distributed mode with the global ruler on: the global query lists the ruler's StoreAPI
    directly, and a distributed query reads only endpoints serving the Query API. A replica of the planned global
    ruler recording one series, and two queries with dev's global query's endpoints plus that replica: the local one
    answers the series, the distributed one (the plan's distributed flags) answers both clusters but not it."""
    ruler = next(c for c in planned_containers("dev", dev.objects, all_replicas=True)
                 if c.namespace == GLOBAL_NAMESPACE and c.workload == "thanos-ruler" and c.name == "thanos-ruler")
    replica = "thanos-ruler-3"
    recording = ruler_replica(ruler, replica, [{"name": "harness-distributed", "interval": "5s", "rules": [
        {"record": "harness_global_recorded", "expr": "vector(1)"}]}])
    local = dev.process(HOST, GLOBAL_NAMESPACE, "thanos-query-pods")
    both_clusters_live(dev, local)
    i = next(i for i, a in enumerate(local.container.args) if a.startswith("--endpoint.sd-config="))
    sd = json.loads(local.container.args[i].split("=", 1)[1])
    ruler_address = next(e["address"] for e in sd["endpoints"] if "thanos-ruler-0" in e["address"])
    sd["endpoints"].append({"address": ruler_address.replace("thanos-ruler-0", replica), "strict": True})
    args = [*local.container.args[:i], f"--endpoint.sd-config={json.dumps(sd)}", *local.container.args[i + 1:]]
    distributed_flags = ["--query.mode=distributed", OVERLAPPING, "--query.partition-label=cluster",
                         "--query.promql-engine=thanos"]
    processes = [dev.harness.start(recording)]
    try:
        assert processes[0].wait_ready(60) == "ready", processes[0].output()
        for pod, extra in (("thanos-query-ruler-local", []), ("thanos-query-ruler-distributed", distributed_flags)):
            processes.append(dev.harness.start(dataclasses.replace(local.container, pod=pod, labels={}, subdomain=None,
                                                                   args=[*args, *extra])))
            assert processes[-1].wait_ready(60) == "ready", processes[-1].output()
        with_ruler, distributed = processes[1:]
        recorded = eventually(lambda: query(with_ruler, "harness_global_recorded"), 60)
        clusters = eventually(lambda: {r["metric"].get("cluster") for r in query(distributed, CLUSTERS_UP)} >= set(CLUSTERS),
                              LIVE_SECONDS)
        missing = query(distributed, "harness_global_recorded")
    finally:
        for process in processes:
            process.stop()
    assert [r["metric"].get("tier") for r in recorded] == ["global"], recorded
    assert clusters and missing == [], missing
    with capsys.disabled():
        print(f"\nthe global ruler's recorded series: local mode {len(recorded)} series, distributed mode {len(missing)} "
              "(both clusters answered)")
