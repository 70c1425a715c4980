"""Fault runs: the dev data path under the real binaries (tests/realtools), with a component killed, frozen or stopped
the way a node failure, an OOM kill or a rollout does it, judged by what the real query answers and what the real
storage holds. Each run prints its numbers; docs/failure-modes.md is written from them (test_failure_modes_doc).

The data path is the one tests/test_real_dev.py starts (the `dev` fixture, shared: one start for both modules)."""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.realtools.devstack import CLUSTERS, GLOBAL_NAMESPACE, DevStack, eventually
from tests.realtools.sandbox import Process

pytestmark = pytest.mark.xdist_group("real-dev")

HISTORY = "harness_history"
ENDPOINT_REFRESH_SECONDS = 20
"""Longer than the global query's endpoint info timeout (15s) and the leaves' health checks (5s)."""


@dataclass
class Answer:
    """What a query said: its status, the series and points it returned, its warnings, and how long it took."""

    status: str
    series: dict[str, int] = field(default_factory=dict)
    """Series (labels as text) -> number of points."""
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def points(self) -> int:
        return sum(self.series.values())

    def text(self) -> str:
        warned = f", warnings: {'; '.join(self.warnings)[:400]}" if self.warnings else ", no warning"
        return f"{self.status}, {len(self.series)} series, {self.points} points{warned} ({self.seconds:.2f} s)"


def ask(process: Process, expr: str, start: float, end: float, step: int = 300) -> Answer:
    """A range query as Grafana sends it (partial responses allowed, deduplicated): the whole answer, warnings kept."""
    args = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step, "dedup": "true",
                                   "partial_response": "true"})
    began = time.monotonic()
    try:
        with urllib.request.urlopen(process.url(f"/api/v1/query_range?{args}"), timeout=60) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = json.loads(error.read() or b"{}") or {"status": f"http {error.code}"}
    seconds = time.monotonic() - began
    series = {json.dumps(r["metric"], sort_keys=True): len(r.get("values") or []) for r in
              (body.get("data") or {}).get("result") or []}
    return Answer(body.get("status", "?"), series, list(body.get("warnings") or []), seconds)


def history_range(dev: DevStack) -> tuple[float, float]:
    """The middle of the prepared history (seconds): only the store gateways hold it (Prometheus' head is newer)."""
    start, end = dev.window
    return start / 1000 + 3600, end / 1000 - 3600


def complete_or_warned(answer: Answer, complete: Answer) -> bool:
    """The platform's promise under a fault: an answer is the complete one, or it says it is not (a warning or a
    failure). A "success" with less data and no warning is a silent wrong answer."""
    return answer.status != "success" or bool(answer.warnings) or answer.series == complete.series


def restart(dev: DevStack, process: Process) -> Process:
    """Start a killed or stopped container again on its claims, and track the new process."""
    new = dev.harness.restart(process)
    dev.processes[process.container.id] = new
    return new


def report(run: str, lines: list[str]) -> None:
    """Print a fault run's numbers."""
    print(f"\n[fault run] {run}", *(f"  {line}" for line in lines), sep="\n")


@dataclass(frozen=True)
class Row:
    """One line of docs/failure-modes.md, made from what a fault run measured (only what repeats run after run)."""

    fault: str
    platform: str
    """What the platform does about it."""
    user: str
    """What a user sees."""
    lost: str
    """What is lost."""


ROWS: dict[str, Row] = {}
"""The rows the fault runs of this process measured, by run (docs/failure-modes.md is made of them)."""
RUNS = ("store", "leaf", "caches")
"""Every fault run that writes a row, in the table's order."""
DOC = Path(__file__).resolve().parent.parent / "docs" / "failure-modes.md"
BEGIN, END = "<!-- fault runs: begin -->", "<!-- fault runs: end -->"


def test_a_dead_store_gateway_is_a_warning_and_no_incomplete_answer_is_cached(dev, capsys):
    """SIGKILL chicago's store gateway (it holds all of the history): the leaf query and the query-frontend answer
    every history query either completely or with a warning, before and after the endpoint refresh; once it is
    back, the query-frontend answers completely (it cached nothing incomplete)."""
    namespace = CLUSTERS["chicago"]
    store = dev.process("chicago", namespace, "thanos-store")
    leaf = dev.process("chicago", namespace, "thanos-query-pods")
    frontend = dev.process("chicago", namespace, "thanos-query-frontend-pods")
    start, end = history_range(dev)
    complete = eventually(lambda: (a := ask(leaf, HISTORY, start, end)).series and not a.warnings and a, 120)
    assert len(complete.series) == 2, complete.text()

    store.kill()
    at_once = ask(leaf, HISTORY, start, end)
    time.sleep(ENDPOINT_REFRESH_SECONDS)
    after_refresh = ask(leaf, HISTORY, start, end)
    through_frontend = ask(frontend, HISTORY, start, end)
    store = restart(dev, store)
    recovered_leaf = eventually(lambda: (a := ask(leaf, HISTORY, start, end)).series == complete.series and a, 120)
    recovered_frontend = ask(frontend, HISTORY, start, end)
    with capsys.disabled():
        report("store gateway killed (chicago, all of its history)", [
            f"before: {complete.text()}", f"killed, at once: {at_once.text()}",
            f"killed, after {ENDPOINT_REFRESH_SECONDS} s: {after_refresh.text()}",
            f"killed, through the query-frontend: {through_frontend.text()}",
            f"back, leaf query: {recovered_leaf.text()}", f"back, through the query-frontend: {recovered_frontend.text()}"])
    for name, answer in (("at once", at_once), ("after the refresh", after_refresh),
                         ("through the query-frontend", through_frontend)):
        assert complete_or_warned(answer, complete), f"{name}: a silent wrong answer: {answer.text()}"
    assert after_refresh.warnings and "thanos-store-0" in " ".join(after_refresh.warnings), after_refresh.text()
    assert recovered_frontend.series == complete.series and not recovered_frontend.warnings, \
        f"the query-frontend kept an incomplete answer: {recovered_frontend.text()}"
    ROWS["store"] = Row(
        "A store gateway dies (SIGKILL; here the only one of a cluster)",
        "Query keeps the dead store in its endpoint set (strict) and asks it every time; the query-frontend does not "
        "cache an answer that carries a warning",
        f"History queries answer {len(after_refresh.series)} of {len(complete.series)} series with a warning naming "
        f"`thanos-store-0`, at once and after the endpoint refresh, directly and through the query-frontend; once it "
        f"is back, {recovered_frontend.points} of {complete.points} points through the query-frontend",
        "Nothing: the blocks stay in the bucket; answers during the outage are incomplete and say so")


def test_a_dead_leaf_is_a_warning_in_the_global_view(dev, capsys):
    """SIGKILL chicago's leaf query: the global query-frontend answers with both clusters or with a warning naming
    the missing leaf, and with both clusters once it is back."""
    leaf = dev.process("chicago", CLUSTERS["chicago"], "thanos-query-pods")
    for cluster, namespace in CLUSTERS.items():  # a run before this one may have left a leaf stopped
        other = dev.process(cluster, namespace, "thanos-query-pods")
        if not other.alive():
            assert restart(dev, other).wait_ready(60) == "ready"
    frontend = dev.process("chicago", GLOBAL_NAMESPACE, "thanos-query-frontend-pods")
    start, end = history_range(dev)
    expr = f"count by (cluster) ({HISTORY})"
    complete = eventually(lambda: len((a := ask(frontend, expr, start, end)).series) == 2 and not a.warnings and a, 120)

    leaf.kill()
    # Each question with its own step: the results cache keys on it, so none is answered from an earlier one.
    at_once = ask(frontend, expr, start, end, step=310)
    time.sleep(ENDPOINT_REFRESH_SECONDS)
    after_refresh = ask(frontend, expr, start, end, step=320)
    leaf = restart(dev, leaf)
    assert leaf.wait_ready(60) == "ready", leaf.output()
    recovered = eventually(lambda: len((a := ask(frontend, expr, start, end, step=330)).series) == 2 and
                           not a.warnings and a, 120)
    with capsys.disabled():
        report("leaf query killed (chicago) under the global view", [
            f"before: {complete.text()}", f"killed, at once: {at_once.text()}",
            f"killed, after {ENDPOINT_REFRESH_SECONDS} s: {after_refresh.text()}", f"back: {recovered.text()}"])
    two_clusters = Answer("success", {k: 1 for k in complete.series})
    for name, answer in (("at once", at_once), ("after the refresh", after_refresh)):
        assert answer.status != "success" or answer.warnings or len(answer.series) == len(two_clusters.series), \
            f"{name}: a cluster silently missing: {answer.text()}"
    warned = " ".join(after_refresh.warnings)
    assert "query.chicago" in warned or "thanos-query-grpc.thanos-chicago" in warned, after_refresh.text()
    assert not recovered.warnings, recovered.text()
    ROWS["leaf"] = Row(
        "A cluster's query (a leaf of the global view) dies",
        "The global query lists every leaf by name, strict: the dead one stays asked",
        f"Global answers hold {len(after_refresh.series)} of {len(complete.series)} clusters with a warning naming "
        "the leaf's address, at once and after the endpoint refresh; both clusters once it is back",
        "Nothing: the leaf's data stays in its cluster; global answers during the outage are incomplete and say so")


def test_store_gateways_and_query_frontends_start_and_answer_with_every_cache_stopped(dev, capsys):
    """Stop every memcached pod of chicago (index, bucket, results), then restart its store gateway and its
    query-frontend, as a node failure or a rollout would: both start and answer (slower), and the caches come back."""
    namespace = CLUSTERS["chicago"]
    caches = [p for p in dev.processes.values() if p.container.namespace == namespace and p.alive()
              and p.container.workload.startswith("thanos-memcached-")]
    assert {p.container.workload for p in caches} >= {"thanos-memcached-index", "thanos-memcached-bucket",
                                                       "thanos-memcached-query-results"}
    store = dev.process("chicago", namespace, "thanos-store")
    frontend = dev.process("chicago", namespace, "thanos-query-frontend-pods")
    leaf = dev.process("chicago", namespace, "thanos-query-pods")
    start, end = history_range(dev)
    cached = eventually(lambda: (a := ask(leaf, HISTORY, start, end)).series and not a.warnings and a, 120)
    for cache in caches:
        cache.kill()
    for cache in caches:
        assert dev.harness.wait_unpublished(cache, 10), cache.container.id
    store.stop()
    frontend.stop()
    store, frontend = restart(dev, store), restart(dev, frontend)
    states = {p.container.workload: p.wait_ready(120) for p in (store, frontend)}
    uncached = eventually(lambda: (a := ask(leaf, HISTORY, start, end)).series == cached.series and a, 120) \
        if states["thanos-store"] == "ready" else None
    # Another range than any asked before, so the query-frontend cannot answer it from its own memory.
    expected = ask(leaf, HISTORY, start - 300, end)
    through_frontend = ask(frontend, HISTORY, start - 300, end) if states["thanos-query-frontend-pods"] == "ready" else None
    for cache in caches:
        restart(dev, cache)
    with capsys.disabled():
        report("every cache stopped (chicago), store gateway and query-frontend restarted", [
            f"store gateway: {states['thanos-store']}, query-frontend: {states['thanos-query-frontend-pods']}",
            f"with caches: {cached.text()}",
            f"without caches, leaf query: {uncached.text() if uncached else 'no answer'}",
            f"without caches, through the query-frontend: {through_frontend.text() if through_frontend else 'no answer'}"])
    assert states == {"thanos-store": "ready", "thanos-query-frontend-pods": "ready"}, \
        f"{states}\n{store.output()}\n{frontend.output()}"
    assert uncached is not None and through_frontend is not None, (uncached, through_frontend)
    assert through_frontend.series == expected.series and not through_frontend.warnings, through_frontend.text()
    ROWS["caches"] = Row(
        "Every cache pod of a cluster is gone (index, bucket, results), and the store gateway and query-frontend restart",
        "Clients name one ClusterIP Service per cache pod, which resolves with no pod behind it: they start, and "
        "cache calls fail fast (connection refused) and count as misses",
        f"Store gateway and query-frontend ready; history answers complete ({len(uncached.series)} series, "
        f"{uncached.points} points), slower on a busy cluster",
        "Nothing (a cache holds no data of record)")


def failure_modes_table(rows: list[Row]) -> str:
    """The generated part of docs/failure-modes.md."""
    lines = ["| What fails | What the platform does | What a user sees | What is lost |", "|---|---|---|---|"]
    lines += [f"| {r.fault} | {r.platform} | {r.user} | {r.lost} |" for r in rows]
    return "\n".join(lines)


def test_failure_modes_doc_is_the_fault_runs_own_output():
    """docs/failure-modes.md holds exactly the rows the fault runs above measured (run last in this module). After a
    change that moves a number: FAULT_RUNS_WRITE=1 ./run tests tests/test_real_faults.py rewrites it."""
    missing = [name for name in RUNS if name not in ROWS]
    assert not missing, f"fault runs without a row (did they fail?): {missing}"
    table = failure_modes_table([ROWS[name] for name in RUNS])
    text = DOC.read_text()
    assert BEGIN in text and END in text, f"{DOC} has no {BEGIN} ... {END} section"
    before, rest = text.split(BEGIN, 1)
    current, after = rest.split(END, 1)
    if os.environ.get("FAULT_RUNS_WRITE") == "1":
        DOC.write_text(f"{before}{BEGIN}\n{table}\n{END}{after}")
        current = f"\n{table}\n"
    assert current.strip() == table, \
        f"docs/failure-modes.md differs from what the fault runs measured; run FAULT_RUNS_WRITE=1 ./run tests " \
        f"tests/test_real_faults.py:\n{table}"
