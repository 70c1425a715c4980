"""Distributed mode with the real Thanos on dev's data path (the `dev` fixture): the global query planned with
`global-view.mode: distributed` and `query.promql-engine: thanos` answers what dev's own global query (local mode,
the Prometheus engine) answers over both clusters, and its fragments run on the leaves (their Query API counts
them); without `--query.distributed-with-overlapping-interval` a leaf holding an empty TSDB (an idle ruler) is
taken to hold nothing. With the global ruler on, its series come through the query planned in front of it (the
ruler listed directly as a store is not read in distributed mode, and without `tier` as a partition label a join
across the ruler and the leaves answers nothing). Started beside dev's global query, from the plan's args with
that override, and stopped by the test."""

import dataclasses
import json
import math
import shutil
import time
import urllib.request

import pytest

from tests.realtools.blocks import HOUR_MS, write_blocks
from tests.realtools.devstack import CLUSTERS, GLOBAL_NAMESPACE, eventually, http_json, query, ruler_replica
from tests.realtools.pods import Volume, planned_containers
from tests.realtools.plan import kubernetes_objects

pytestmark = pytest.mark.xdist_group("real-dev")

DISTRIBUTED = {"global-view": {"mode": "distributed", "query": {"promql-engine": "thanos"}, "ruler": {"enabled": False}}}
RULER_ON = {"global-view": {"mode": "distributed", "query": {"promql-engine": "thanos"}, "ruler": {"query": {"replicas": 1}}}}
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


RULER_RULES = [{"name": "harness-distributed", "interval": "5s", "rules": [
    {"record": "harness_global_recorded", "expr": "vector(1)"},
    {"record": "harness_global_up_by_cluster", "expr": "count by (cluster) (up)"}]}]
"""What the global ruler's replica records: a series of its own, and one per cluster (a `cluster` label inside the
series, not an external label: the ruler carries only `tier`)."""
JOIN = "harness_global_up_by_cluster * on (cluster) group by (cluster) (up)"
"""The ruler's per-cluster series joined with the leaves' `up`: each side lives on another remote engine."""


def _address(process) -> str:
    return f"{process.ip}:{process.ports['--grpc-address']}"


def _with_endpoints(args: list[str], endpoints: list[dict]) -> list[str]:
    """`args` with its sd-config's endpoints replaced."""
    i = next(i for i, a in enumerate(args) if a.startswith("--endpoint.sd-config="))
    sd = json.loads(args[i].split("=", 1)[1])
    return [*args[:i], f"--endpoint.sd-config={json.dumps({**sd, 'endpoints': endpoints})}", *args[i + 1:]]


def test_the_distributed_global_query_answers_the_global_rulers_series_through_its_query(dev, tmp_path, capsys):
    """The global ruler on in distributed mode: the plan puts a query in front of it (`thanos-query-rules`, its only
    endpoints the ruler replicas over mTLS) and lists that as the global query's Query API endpoint, with `tier` as a
    partition label beside `cluster`. A replica of the planned global ruler records two series (its TSDB holds two
    hours of history already, as a ruler that has run for a while: Thanos pushes an instant query to an engine only
    once its data reaches back a lookback delta, 5m). Against dev's global query in local mode with that ruler listed
    as a store, the planned distributed query answers every case alike, the ruler's series included; the wiring
    before (the ruler listed directly as a store) answers none of its series, and `cluster` alone as partition label
    answers the join across the ruler and the leaves with nothing."""
    begin = time.monotonic()
    planned = {c.workload: c for c in planned_containers("dev", kubernetes_objects("dev", RULER_ON))
               if c.namespace == GLOBAL_NAMESPACE and c.workload in ("thanos-query-pods", "thanos-query-rules-pods")}
    root, rules = planned["thanos-query-pods"], planned["thanos-query-rules-pods"]
    assert {"--query.mode=distributed", "--query.partition-label=cluster", "--query.partition-label=tier"} <= set(root.args)
    ruler = next(c for c in planned_containers("dev", dev.objects, all_replicas=True)
                 if c.namespace == GLOBAL_NAMESPACE and c.workload == "thanos-ruler" and c.name == "thanos-ruler")
    replica = "thanos-ruler-3"
    data = tmp_path / "ruler-data"
    data.mkdir()
    now_ms = int(time.time()) * 1000
    for block in write_blocks(tmp_path / "history", ["harness_global_recorded"], now_ms - 3 * HOUR_MS, now_ms - HOUR_MS,
                              60, {"tier": "global", "rule_replica": replica}):
        shutil.move(str(block), data / block.name)
    for path in [data, *data.rglob("*")]:
        path.chmod(0o777)
    recording = ruler_replica(ruler, replica, RULER_RULES)
    recording = dataclasses.replace(recording, mounts=[
        dataclasses.replace(m, volume=Volume("data", None, host_path=str(data))) if m.path == "/var/thanos/rule" else m
        for m in recording.mounts])
    local = dev.process(HOST, GLOBAL_NAMESPACE, "thanos-query-pods")
    both_clusters_live(dev, local)
    leaves = [e for e in json.loads(next(a for a in local.container.args if a.startswith("--endpoint.sd-config="))
                                    .split("=", 1)[1])["endpoints"] if "thanos-ruler" not in e["address"]]
    ruler_endpoint = {"address": f"{replica}.thanos-ruler.{GLOBAL_NAMESPACE}.svc.cluster.local:10901", "strict": True}
    distributed_flags = [a for a in root.args if a.startswith(("--query.mode", "--query.distributed", "--query.promql"))]
    processes = []

    def started(container):
        processes.append(dev.harness.start(container))
        assert processes[-1].wait_ready(60) == "ready", processes[-1].output()
        return processes[-1]

    def query_like(pod: str, args: list[str]):
        # dev's global query pod with other args: its mounts (the client certificate the leaves and the ruler trust)
        # come from the running plan, since a second plan issues other certificates. No Service selects it.
        return started(dataclasses.replace(local.container, pod=pod, labels={}, subdomain=None, args=args))

    try:
        started(recording)
        rules_query = query_like("thanos-query-rules-test", _with_endpoints(rules.args, [
            *json.loads(next(a for a in rules.args if a.startswith("--endpoint.sd-config=")).split("=", 1)[1])["endpoints"],
            ruler_endpoint]))
        # The plan's distributed query; the rules query's Service, which dev's running plan does not have, by address.
        fixed = query_like("thanos-query-distributed-rules", _with_endpoints(root.args, [
            *leaves, {"address": _address(rules_query), "client_config": {"tls_config": {"enabled": False}}, "strict": True}]))
        cluster_only = query_like("thanos-query-distributed-cluster-only", [
            a for a in fixed.container.args if a != "--query.partition-label=tier"])
        reference = query_like("thanos-query-local-ruler", _with_endpoints(local.container.args, [*leaves, ruler_endpoint]))
        store_only = query_like("thanos-query-distributed-store-only", [
            *_with_endpoints(local.container.args, [*leaves, ruler_endpoint]), *distributed_flags,
            "--query.partition-label=cluster"])
        started_in = time.monotonic() - begin
        # A moment both clusters' scrapes and the replica's first evaluations are in, answered by the reference.
        at = eventually(lambda: (lambda t: t if len(query(reference, JOIN, time=str(t))) == len(CLUSTERS) else None)(
            int(time.time()) - 5), 90, every=3)
        eventually(lambda: {r["metric"].get("cluster") for r in query(fixed, CLUSTERS_UP, time=str(at))} >= set(CLUSTERS),
                   LIVE_SECONDS, every=3)
        history = {"start": str(now_ms // 1000 - 2 * 3600), "end": str(now_ms // 1000 - 3600 - 300), "step": "300"}
        cases = [(CLUSTERS_UP, {"time": str(at)}), ("harness_global_recorded", {"time": str(at)}),
                 ("harness_global_recorded", history), (JOIN, {"time": str(at)}),
                 ("sum by (cluster) (harness_global_up_by_cluster)", {"time": str(at)})]
        answers, fragments = {}, 0.0
        for name, process in (("local", reference), ("distributed", fixed), ("cluster only", cluster_only),
                              ("store only", store_only)):
            before = _leaf_query_api_calls(rules_query)
            answers[name] = [_answer(query(process, expr, **params)) for expr, params in cases]
            if name == "distributed":
                fragments = _leaf_query_api_calls(rules_query) - before
    finally:
        for process in processes:
            process.stop()
    for (expr, params), expected, answer in zip(cases, answers["local"], answers["distributed"], strict=True):
        assert expected, f"{expr} {params}: the reference answered nothing"
        assert _same(expected, answer), f"{expr}:\nlocal {expected}\ndistributed {answer}"
    assert [dict(k)["tier"] for k in answers["local"][1]] == ["global"], answers["local"][1]
    assert fragments >= 3, fragments  # the ruler's series came through the rules query's Query API
    # The wiring before: the ruler as a store of a distributed query is not read; its series are missing.
    assert answers["store only"][1] == answers["store only"][2] == {}, answers["store only"]
    # Without `tier` the ruler's engine is in no partition: the join is pushed whole to each engine, which holds one
    # side of it only.
    assert answers["cluster only"][3] == {}, answers["cluster only"][3]
    with capsys.disabled():
        counts = {name: [len(a) for a in found] for name, found in answers.items()}
        print(f"\nglobal ruler in distributed mode, {len(processes)} processes started in {started_in:.1f} s; series "
              f"answered per case {[expr for expr, _ in cases]}: {counts}; Query API calls on the rules query: "
              f"{fragments:.0f}")
