"""Fault runs: the dev data path under the real binaries (tests/realtools), with a component killed, frozen or stopped
the way a node failure, an OOM kill or a rollout does it, judged by what the real query answers and what the real
storage holds. Each run prints its numbers; docs/failure-modes.md is written from them (test_failure_modes_doc).

The data path is the one tests/test_real_dev.py starts (the `dev` fixture, shared: one start for both modules)."""

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.realtools import Harness
from tests.realtools.blocks import HOUR_MS, block_objects, write_blocks
from tests.realtools.build import tool
from tests.realtools.devstack import (CLUSTERS, GLOBAL_NAMESPACE, READY_SECONDS, REPLICA_LABEL, REPLICAS, DevStack,
                                      eventually, metric, planned_external_labels, s3_client)
from tests.realtools.devstack import query as query_range
from tests.realtools.plan import kubernetes_clusters, kubernetes_objects
from tests.realtools.pods import PlannedContainer, planned_containers
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
RUNS = ("store", "leaf", "caches", "compactor", "sidecar", "verify")
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


# Object storage faults: a compactor and a sidecar killed mid-upload, and what `tools bucket verify` reports. Each
# run starts its own harness with chicago's planned containers (dev plan): the runs freeze MinIO, which the shared dev
# stack's store gateways, sidecars and rulers use, and they need a bucket whose compaction has not happened yet (dev's
# compactor compacts the prepared history as soon as the stack starts).

CHICAGO = CLUSTERS["chicago"]
STORAGE_SERIES = [f'harness_history{{instance="{i}"}}' for i in range(60)]
BUCKET = "thanos-chicago"


def chicago_containers() -> tuple[list, dict[tuple[str, str], PlannedContainer]]:
    """The dev plan's objects and chicago's planned containers by (workload, container)."""
    objects = kubernetes_objects("dev")
    return objects, {(c.workload, c.name): c for c in planned_containers("dev", objects)
                     if (c.cluster, c.namespace) == ("chicago", CHICAGO)}


@contextmanager
def chicago_storage(workdir: Path):
    """A harness of its own with chicago's planned MinIO, its bucket and the `thanos-blocks` user (the planned Jobs,
    with the real mc); yields (harness, MinIO, the planned containers). Everything stops on exit."""
    objects, planned = chicago_containers()
    with Harness(workdir, objects, filesystem_buckets=False, kubernetes=kubernetes_clusters("dev")) as harness:
        minio = harness.start(planned[("thanos-minio", "minio")])
        assert minio.wait_ready(60) == "ready", minio.output()
        assert harness.wait_published(minio, 10)
        for job in (("thanos-minio-make-bucket", "make-bucket"), ("thanos-minio-user-thanos-blocks", "create-user")):
            process = harness.start(planned[job])
            assert process.wait_exit(120) == 0, process.output()
        yield harness, minio, planned
    assert not harness.leftovers(), harness.leftovers()


def upload(client, blocks: list[Path]) -> None:
    """Upload blocks as a sidecar does (meta.json last)."""
    for block in blocks:
        for key, path in block_objects(block):
            client.upload_file(str(path), BUCKET, key)


def bucket_objects(client) -> dict[str, int]:
    """Every object of the bucket: key -> size."""
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        found.update({o["Key"]: o["Size"] for o in page.get("Contents") or []})
    return found


def live_metas(client) -> list[dict]:
    """The meta.json of every block in the bucket with one and without a deletion mark."""
    keys = bucket_objects(client)
    return [json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read()) for key in sorted(keys)
            if key.endswith("/meta.json") and f"{key.split('/')[0]}/deletion-mark.json" not in keys]


def uncovered_overlaps(metas: list[dict]) -> list[tuple[str, str]]:
    """Pairs of live blocks of one stream (external labels and resolution) that overlap in time while neither's
    compaction sources cover the other's."""
    found = []
    for index, a in enumerate(metas):
        for b in metas[index + 1:]:
            same = (a["thanos"]["labels"], a["thanos"]["downsample"]) == (b["thanos"]["labels"], b["thanos"]["downsample"])
            sources_a, sources_b = set(a["compaction"]["sources"]), set(b["compaction"]["sources"])
            if same and a["minTime"] < b["maxTime"] and b["minTime"] < a["maxTime"] and \
                    not (sources_a >= sources_b or sources_b >= sources_a):
                found.append((a["ulid"], b["ulid"]))
    return found


def raw_samples(metas: list[dict]) -> int:
    return sum(m["stats"]["numSamples"] for m in metas if m["thanos"]["downsample"]["resolution"] == 0)


def values(query: Process, expr: str, start: float, end: float) -> dict[str, list]:
    """The deduplicated range answer (partial responses allowed): series (labels as text) -> its points."""
    result = query_range(query, expr, start=start, end=end, step="300", dedup="true", partial_response="true")
    return {json.dumps(r["metric"], sort_keys=True): r["values"] for r in result}


def new_block_dir(folder: Path, known: set[str], seconds: float) -> str | None:
    """Watch a working folder (a compactor's `compact/<group>/` or `downsample/`, a sidecar's `thanos/upload/`) for a
    block being written or uploaded (a name none of `known` has; `.tmp-for-creation` while the compactor writes it);
    its ULID, or None after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path in [*folder.glob("*"), *folder.glob("*/*")]:
            name = path.name.split(".")[0]
            if len(name) == 26 and name not in known:
                return name
        time.sleep(0.0005)
    return None


def kill_mid_upload(harness: Harness, process: Process, minio: Process, folder: Path, known: set[str],
                    seconds: float) -> str | None:
    """Once the process (a compactor, a sidecar) has a new block in `folder`: hold it (SIGSTOP), freeze MinIO, let it
    go on into its upload, which then hangs on its open connection, and SIGKILL it there; MinIO carries on (back in
    its Service: frozen, it failed its readiness). The new block's ULID (None: none came)."""
    block = new_block_dir(folder, known, seconds)
    if block is not None:
        process.freeze()
        minio.freeze()
        process.thaw()
        time.sleep(2)
        process.kill()
        minio.thaw()
        assert harness.wait_published(minio, 30), minio.output()
    return block


def logged(process: Process, text: str, seconds: float) -> bool:
    """Whether the process prints `text` within `seconds`."""
    deadline = time.monotonic() + seconds
    while text not in process.output(100000) and time.monotonic() < deadline:
        time.sleep(0.2)
    return text in process.output(100000)


def mc(minio: Process, workdir: Path, *args: str) -> None:
    """The real mc as MinIO's root user."""
    env = {"MC_CONFIG_DIR": str(workdir / "mc"), "PATH": os.environ["PATH"], "MC_HOST_root":
           f"http://{minio.container.env['MINIO_ROOT_USER']}:{minio.container.env['MINIO_ROOT_PASSWORD']}"
           f"@{minio.ip}:{minio.ports['--address']}"}
    proc = subprocess.run([str(tool("mc")), *args], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_compactor_killed_mid_upload_before_marking_and_mid_downsampling_leaves_the_bucket_whole(tmp_path, capsys):
    """chicago's planned compactor on a bucket of prepared history (two HA replicas: per replica a 54h block to
    downsample and nine 2h blocks, two 8h ranges to compact), SIGKILLed mid-upload of a compacted block, after
    uploading one but before marking its sources, and mid-upload of a downsampled block, restarted each time on
    its claim: no halt, no overlapping live blocks, the raw samples conserved, the deduplicated answer unchanged."""
    now = int(time.time() * 1000)
    long_start = (now - 6 * 24 * HOUR_MS) // (54 * HOUR_MS) * (54 * HOUR_MS)
    short_start = (long_start + 54 * HOUR_MS) // (48 * HOUR_MS) * (48 * HOUR_MS) + 48 * HOUR_MS
    with chicago_storage(tmp_path) as (harness, minio, planned):
        client = s3_client(minio)
        external = planned_external_labels(kubernetes_objects("dev"), "chicago", CHICAGO)
        uploaded = []
        for replica in REPLICAS:
            labels = {**external, REPLICA_LABEL: replica}
            folder = tmp_path / "history" / replica
            uploaded += write_blocks(folder / "long", STORAGE_SERIES, long_start, long_start + 54 * HOUR_MS, 30,
                                     labels, max_block_hours=54)
            uploaded += write_blocks(folder / "short", STORAGE_SERIES, short_start, short_start + 18 * HOUR_MS, 30,
                                     labels)
        upload(client, uploaded)
        history = raw_samples(live_metas(client))
        store = harness.start(planned[("thanos-store", "thanos-store")])
        query = harness.start(planned[("thanos-query-pods", "thanos-query")])
        for process in (store, query):
            assert process.wait_ready(READY_SECONDS) == "ready", process.output()
        window = (long_start / 1000, (short_start + 18 * HOUR_MS) / 1000)
        before = eventually(lambda: len(v := values(query, "harness_history", *window)) == len(STORAGE_SERIES)
                            and v, 60)

        compactor = harness.start(planned[("thanos-compactor", "thanos-compactor")])
        work = harness.sandbox.volume_file(compactor.container, "/var/thanos/compact")
        known = {block.name for block in uploaded}
        began = time.monotonic()
        # 1. Mid-upload of a compacted block: MinIO frozen under its upload.
        compacted = kill_mid_upload(harness, compactor, minio, work / "compact", known, 60)
        partial = sorted(k for k in bucket_objects(client) if k.startswith(f"{compacted}/"))
        # 2. Uploaded, sources not yet marked: a policy refuses the compactor's user the deletion marks (so it stops
        # there and waits), then SIGKILL.
        deny = tmp_path / "deny-marks.json"
        deny.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{BUCKET}/*/deletion-mark.json"]}]}))
        mc(minio, tmp_path, "admin", "policy", "create", "root", "deny-marks", str(deny))
        mc(minio, tmp_path, "admin", "policy", "attach", "root", "deny-marks", "--user", "thanos-blocks")
        compactor = harness.restart(compactor)
        assert logged(compactor, "retriable error", 60), compactor.output()
        compactor.kill()
        mc(minio, tmp_path, "admin", "policy", "detach", "root", "deny-marks", "--user", "thanos-blocks")
        objects = bucket_objects(client)
        unmarked = [m for m in live_metas(client) if m["thanos"]["source"] == "compactor"]
        sources_unmarked = sum(1 for m in unmarked for s in m["compaction"]["sources"]
                               if f"{s}/meta.json" in objects and f"{s}/deletion-mark.json" not in objects)
        # 3. Mid-upload of a downsampled block.
        known |= {key.split("/")[0] for key in objects}
        compactor = harness.restart(compactor)
        downsampled = kill_mid_upload(harness, compactor, minio, work / "downsample", known, 90)
        left = sorted(k for k in bucket_objects(client) if k.startswith(f"{downsampled}/"))
        killed_seconds = time.monotonic() - began
        # Back on its claim: one whole iteration.
        compactor = harness.restart(compactor)
        eventually(lambda: metric(compactor, "thanos_compact_iterations_total") >= 1, 90)
        halted = metric(compactor, "thanos_compact_halted")
        metas = live_metas(client)
        overlaps = uncovered_overlaps(metas)
        store = harness.restart(store)
        assert store.wait_ready(READY_SECONDS) == "ready", store.output()
        after = eventually(lambda: len(v := values(query, "harness_history", *window)) == len(STORAGE_SERIES)
                           and v, 60)
        resolutions = sorted({m["thanos"]["downsample"]["resolution"] for m in metas})
        with capsys.disabled():
            report("compactor killed mid-upload, after upload before marking, mid-downsampling (chicago)", [
                f"history: {len(uploaded)} blocks, {history} samples",
                f"1. killed uploading compacted block {compacted}: in the bucket then {partial} (no meta.json)",
                f"2. killed with {len(unmarked)} compacted block(s) uploaded and {sources_unmarked} of their sources "
                "unmarked",
                f"3. killed uploading downsampled block {downsampled}: in the bucket then {left}",
                f"kills done in {killed_seconds:.1f} s",
                f"restarted: halted {halted:.0f}, {len(metas)} live blocks (resolutions {resolutions}), "
                f"{len(overlaps)} uncovered overlaps, {raw_samples(metas)} raw samples live of {history}",
                f"deduplicated answer: {len(after)} series, {sum(len(v) for v in after.values())} points, "
                f"{'unchanged' if after == before else 'CHANGED'}"])
        assert compacted and downsampled, compactor.output()
        assert f"{compacted}/meta.json" not in partial and f"{downsampled}/meta.json" not in left
        assert unmarked and sources_unmarked == sum(len(m["compaction"]["sources"]) for m in unmarked)
        assert halted == 0, compactor.output()
        assert not overlaps, overlaps
        assert raw_samples(metas) == history
        assert 300000 in resolutions, resolutions
        assert after == before
    ROWS["compactor"] = Row(
        "The compactor dies mid-upload of a compacted or downsampled block, or after the upload before marking its "
        "sources (SIGKILL), and restarts on its claim",
        "Meta.json is uploaded last: a block without it is a partial upload nobody reads, redone on restart; a "
        "compacted block whose sources are not marked hides them (its compaction sources cover them) until the "
        "compactor marks them",
        f"Nothing: the same deduplicated answer ({len(after)} series, {sum(len(v) for v in after.values())} points) "
        "before and after; no halt, no overlapping live blocks",
        "Nothing: the raw samples of the live blocks equal the uploaded history's; the partial uploads stay in the "
        "bucket until the compactor deletes them two days on")


def test_a_sidecar_killed_mid_upload_ships_every_block_once(tmp_path, capsys):
    """chicago's planned Prometheus and sidecar (prometheus-0) with 2h blocks seeded into their claim: the first
    shipped, then the sidecar SIGKILLed while its upload of the second hangs on MinIO frozen under it, and restarted: every
    block in the bucket once, its files the sizes of the local ones, none uploaded twice."""
    start = (int(time.time() * 1000) - 11 * HOUR_MS) // (2 * HOUR_MS) * (2 * HOUR_MS)
    series = [f'harness_history{{instance="{i}"}}' for i in range(300)]  # blocks of 1 MB: uploads take a while
    blocks = write_blocks(tmp_path / "seed", series, start, start + 8 * HOUR_MS, 15, {})
    with chicago_storage(tmp_path) as (harness, minio, planned):
        client = s3_client(minio)
        prometheus = harness.start(planned[("thanos-prometheus", "prometheus")])
        tsdb = harness.sandbox.volume_file(prometheus.container, "/prometheus")

        def seed(block: Path) -> None:
            shutil.copytree(block, tsdb / block.name)
            for path in [tsdb / block.name, *(tsdb / block.name).rglob("*")]:
                os.chown(path, prometheus.container.run_as_user, prometheus.container.run_as_group)

        def shipped() -> list[str]:
            return json.loads((tsdb / "thanos.shipper.json").read_text())["uploaded"]

        seed(blocks[0])
        assert prometheus.wait_ready(READY_SECONDS) == "ready", prometheus.output()
        sidecar = harness.start(planned[("thanos-prometheus", "thanos-sidecar")])
        eventually(lambda: shipped() == [blocks[0].name], 60, every=0.5)
        uploads = metric(sidecar, "thanos_shipper_uploads_total")
        sidecar.stop()  # idle: it ships on start and then every 30 s
        for block in blocks[1:]:
            seed(block)
        sidecar = harness.restart(sidecar)
        held = kill_mid_upload(harness, sidecar, minio, tsdb / "thanos" / "upload", {blocks[0].name}, 60)
        partial = sorted(k for k in bucket_objects(client) if k.startswith(f"{blocks[1].name}/"))
        sidecar = harness.restart(sidecar)
        eventually(lambda: sorted(shipped()) == [b.name for b in blocks], 90, every=0.5)
        uploads += metric(sidecar, "thanos_shipper_uploads_total")
        objects = bucket_objects(client)
        local = {f"{b.name}/{p.relative_to(b).as_posix()}": p.stat().st_size for b in blocks
                 for p in [b / "index", *(b / "chunks").iterdir()]}  # what a block is made of (tombstones stay)
        differing = sorted(k for k, size in local.items() if objects.get(k) != size)
        in_bucket = sorted({k.split("/")[0] for k in objects})
        with capsys.disabled():
            report("sidecar killed mid-upload (chicago prometheus-0)", [
                f"{len(blocks)} blocks seeded; shipped before the kill: 1; in the bucket after the kill of the "
                f"second's upload: {partial}",
                f"restarted: {len(in_bucket)} blocks in the bucket, shipper file {len(shipped())} entries, "
                f"{uploads:.0f} uploads in all, {len(differing)} files differing from the local ones"])
        assert in_bucket == [b.name for b in blocks], in_bucket
        assert len(shipped()) == len(set(shipped())) == len(blocks)
        assert uploads == len(blocks), uploads
        assert not differing, differing
        assert all(f"{b.name}/meta.json" in objects for b in blocks)
        assert held == blocks[1].name and f"{held}/meta.json" not in partial, (held, partial)
    ROWS["sidecar"] = Row(
        "A sidecar dies mid-upload of a block (SIGKILL), and restarts",
        "The shipper records a block in `thanos.shipper.json` only once uploaded, meta.json last: the block "
        "in flight is uploaded again on restart, the ones before are not",
        f"Nothing: {len(blocks)} of {len(blocks)} blocks in the bucket once, with the local files' sizes, "
        f"{len(blocks)} uploads in all",
        "Nothing: the blocks stay in Prometheus' volume until shipped (its retention is longer than the outage)")


def test_bucket_verify_fails_its_job_when_it_finds_overlapping_blocks(tmp_path, capsys):
    """The planned verify Job's container (chicago) over a FILESYSTEM bucket: clean history, then the same with an
    overlapping pair of blocks of one stream. `tools bucket verify` itself logs the overlap and exits 0; the Job has to
    fail, or neither it nor ThanosBucketVerifyFailed says anything."""
    objects, planned = chicago_containers()
    job = planned[("thanos-bucket-verify", "thanos-bucket-verify")]
    labels = {**planned_external_labels(objects, "chicago", CHICAGO), REPLICA_LABEL: REPLICAS[0]}
    start = (int(time.time() * 1000) - 24 * HOUR_MS) // (2 * HOUR_MS) * (2 * HOUR_MS)
    runs = {}
    with Harness(tmp_path, objects) as harness:
        bucket = harness.sandbox.buckets / BUCKET
        clean = write_blocks(tmp_path / "clean", STORAGE_SERIES[:2], start, start + 4 * HOUR_MS, 60, labels)
        overlapping = write_blocks(tmp_path / "overlap", STORAGE_SERIES[:2], start + HOUR_MS, start + 3 * HOUR_MS, 60,
                                   labels)
        for name, blocks in (("clean", clean), ("overlapping", overlapping)):
            for block in blocks:
                shutil.copytree(block, bucket / block.name)
            process = harness.start(job)
            runs[name] = (process.wait_exit(120), process.output(20000))
    assert not harness.leftovers(), harness.leftovers()
    with capsys.disabled():
        report("bucket verify over a bucket with an overlapping pair of blocks (chicago's planned Job)", [
            f"{name}: exit {code}, {output.count('found overlapped blocks')} overlap finding(s) logged"
            for name, (code, output) in runs.items()])
    assert runs["clean"][0] == 0 and "found overlapped blocks" not in runs["clean"][1], runs["clean"][1]
    assert "found overlapped blocks" in runs["overlapping"][1], runs["overlapping"][1]
    assert runs["overlapping"][0] not in (0, None), runs["overlapping"][1]
    ROWS["verify"] = Row(
        "Object storage holds overlapping blocks of one stream (or a block with a known index issue)",
        "The daily verify Job runs `thanos tools bucket verify` (no repair) and fails when it logs a finding: "
        "verify itself exits 0 on findings",
        f"The Job fails (exit {runs['overlapping'][0]}) and `ThanosBucketVerifyFailed` fires; its log names the "
        "overlapping blocks; on a clean bucket it succeeds",
        "Nothing by the check itself (it only reads); the finding needs a person: overlaps halt the compactor")


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
