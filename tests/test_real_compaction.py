"""Vertical compaction only where it is meant, under the real Thanos: prod's two planned compactor shards of chicago
(`thanos-compactor`, every stream but receive's, no deduplication label; `thanos-compactor-receive`, receive's
streams, `--deduplication.replica-label`) on one FILESYSTEM bucket holding receive's stream written three times (one
copy per zone, byte-identical samples) and two Prometheus streams, one of them with an accidental overlap. The
receive shard merges the three copies into one; the main shard halts on the overlap and leaves it as it was; neither
touches the other's blocks. The same bucket under one compactor with the plan's arguments before the split (the main
shard's, no selector, the deduplication label) merges the Prometheus overlap silently: why the split exists.

Its own module, not a fault run of tests/test_real_faults.py: no component fails here (the runs there write
docs/failure-modes.md and share the dev stack), and this judges the plan's compactor layout itself."""

import dataclasses
import json
import os
import re
import shutil
import time
import urllib.request
from pathlib import Path

import yaml

from components.thanos.compactor import NAME as MAIN_SHARD
from components.thanos.compactor import RECEIVE_SHARD, RECEIVE_TENANT_LABEL
from tests.realtools import Harness
from tests.realtools.blocks import HOUR_MS, write_blocks
from tests.realtools.devstack import eventually, planned_external_labels
from tests.realtools.loopback import bucket_name, objstore_files
from tests.realtools.plan import kubernetes_objects
from tests.realtools.pods import PlannedContainer, planned_containers
from tests.realtools.sandbox import Process

STACK, CLUSTER, NAMESPACE = "prod", "chicago", "thanos"
REPLICA_LABEL = "receive_replica"
RECEIVE_PODS = ("thanos-receive-us-east-1a-0", "thanos-receive-us-east-1b-0", "thanos-receive-us-east-1c-0")
"""One ingestor per zone: the three copies replication factor 3 writes of a series."""
PROMETHEUS_REPLICAS = ("thanos-prometheus-0", "thanos-prometheus-1")
SERIES = [f'harness_history{{instance="{i}"}}' for i in range(20)]
STEP_S = 30
RECEIVE_BLOCKS = 6
"""2h blocks per copy: after the copies are merged, four of them fill an 8h range (the newest is left out), so the
merged stream is compacted on as any other."""
TIMEOUT_S = 60


def arg_value(container: PlannedContainer, flag: str, default: str) -> str:
    return next((a.split("=", 1)[1] for a in container.args if a.startswith(f"{flag}=")), default)


def receive_labels(ingestor: PlannedContainer) -> dict[str, str]:
    """The external labels an ingestor writes into its blocks: its `--label`s and the tenant label (receive's default
    tenant: the writers send no tenant header)."""
    labels = dict(re.fullmatch(r'--label=([^=]+)="(.*)"', a).groups() for a in ingestor.args if a.startswith("--label="))
    tenant_label = arg_value(ingestor, "--receive.tenant-label-name", "tenant_id")
    assert tenant_label == RECEIVE_TENANT_LABEL, tenant_label
    return {**labels, tenant_label: arg_value(ingestor, "--receive.default-tenant-id", "default-tenant")}


def planned_bucket(container: PlannedContainer) -> str:
    """The bucket the container's planned objstore config names (the harness' FILESYSTEM folder of that name)."""
    [path] = objstore_files(container.args)
    folder, name = path.rsplit("/", 1)
    [mount] = [m for m in container.mounts if m.path == folder]
    return bucket_name(yaml.safe_load(mount.volume.files[name][0]))


def blocks(bucket: Path) -> dict[str, dict]:
    """Every block of the bucket with a meta.json: ULID -> its meta, plus `marked` (a deletion mark)."""
    return {d.name: {**json.loads((d / "meta.json").read_text()), "marked": (d / "deletion-mark.json").exists()}
            for d in sorted(bucket.iterdir()) if (d / "meta.json").exists()}


def live(metas: dict[str, dict]) -> dict[str, dict]:
    return {u: m for u, m in metas.items() if not m["marked"]}


def samples(metas) -> int:
    return sum(m["stats"]["numSamples"] for m in metas if m["thanos"]["downsample"]["resolution"] == 0)


def fingerprint(bucket: Path, ulid: str) -> dict[str, tuple[int, int]]:
    """A block's files as they are: relative path -> (size, mtime ns)."""
    folder = bucket / ulid
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def metric(process: Process, name: str, **labels: str) -> float:
    """The sum of a metric's samples carrying `labels` on the process' /metrics (0 when it has none)."""
    with urllib.request.urlopen(process.url("/metrics"), timeout=10) as response:
        text = response.read().decode()
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if re.match(rf"{re.escape(name)}[{{ ]", line) and all(w in line for w in wanted))


def seed(bucket: Path, history: list[Path], owner: PlannedContainer) -> None:
    """Put the prepared blocks into the bucket as uploaded, owned by the compactor's user (it writes marks into them)."""
    bucket.mkdir(parents=True, exist_ok=True)
    for block in history:
        shutil.copytree(block, bucket / block.name)
        for path in [bucket / block.name, *(bucket / block.name).rglob("*")]:
            os.chown(path, owner.run_as_user, owner.run_as_group)


def settle(process: Process) -> str:
    """Wait for a compactor's first iteration to end; how: `halted` (thanos_compact_halted 1), `done` (an iteration
    counted) or `exited`."""
    def state() -> str | None:
        if not process.alive():
            return "exited"
        if metric(process, "thanos_compact_halted") == 1:
            return "halted"
        return "done" if metric(process, "thanos_compact_iterations_total") >= 1 else None

    return eventually(state, TIMEOUT_S, every=0.5)


def test_receive_replicas_are_merged_by_their_shard_and_a_prometheus_overlap_halts_the_other(tmp_path, capsys):
    """Receive's three copies become one (one copy's samples, no replica label) under `thanos-compactor-receive`;
    `thanos-compactor` halts on the Prometheus overlap and leaves both blocks live and unmodified; each shard's blocks
    are only its own; one compactor with the old arguments merges the overlap."""
    began = time.monotonic()
    objects = kubernetes_objects(STACK)
    planned = [c for c in planned_containers(STACK, objects, all_replicas=True)
               if (c.cluster, c.namespace) == (CLUSTER, NAMESPACE)]
    main = next(c for c in planned if c.workload == MAIN_SHARD)
    receive = next(c for c in planned if c.workload == RECEIVE_SHARD)
    dedup_flag = f"--deduplication.replica-label={REPLICA_LABEL}"
    assert dedup_flag in receive.args and not any(a.startswith("--deduplication.") for a in main.args), \
        (main.args, receive.args)
    bucket_id = planned_bucket(main)
    assert planned_bucket(receive) == bucket_id

    # The history: receive's stream three times (identical samples), prometheus-0 with two overlapping blocks of
    # different samples, prometheus-1 clean (four 2h blocks: nothing to compact yet).
    now = int(time.time() * 1000)
    start = (now - 40 * HOUR_MS) // (8 * HOUR_MS) * (8 * HOUR_MS)
    history = tmp_path / "history"
    receive_blocks: dict[str, list[Path]] = {}
    for pod in RECEIVE_PODS:
        ingestor = next(c for c in planned if c.pod == pod and c.workload.startswith("thanos-receive-"))
        receive_blocks[pod] = write_blocks(history / pod, SERIES, start, start + RECEIVE_BLOCKS * 2 * HOUR_MS, STEP_S,
                                           receive_labels(ingestor))
        for block in receive_blocks[pod]:
            meta = json.loads((block / "meta.json").read_text())
            meta["thanos"]["source"] = "receive"
            (block / "meta.json").write_text(json.dumps(meta, indent=2))
    external = planned_external_labels(objects, CLUSTER, NAMESPACE)
    prometheus_labels = {r: {k: v.replace("${POD_NAME}", r) for k, v in external.items()} for r in PROMETHEUS_REPLICAS}
    [overlapped] = write_blocks(history / "p0-a", SERIES, start, start + 2 * HOUR_MS, STEP_S,
                                prometheus_labels[PROMETHEUS_REPLICAS[0]])
    # The same stream again over the block's second hour, 15 s off its samples: a second writer of one stream.
    [overlapping] = write_blocks(history / "p0-b", SERIES, start + HOUR_MS + 15000, start + 2 * HOUR_MS, STEP_S,
                                 prometheus_labels[PROMETHEUS_REPLICAS[0]])
    clean = write_blocks(history / "p1", SERIES, start, start + 8 * HOUR_MS, STEP_S,
                         prometheus_labels[PROMETHEUS_REPLICAS[1]])
    copies = [b for pod in RECEIVE_PODS for b in receive_blocks[pod]]
    prometheus = [overlapped, overlapping, *clean]
    seeded = {b.name: json.loads((b / "meta.json").read_text()) for b in copies + prometheus}
    pair = (overlapped.name, overlapping.name)
    one_copy = sum(seeded[b.name]["stats"]["numSamples"] for b in receive_blocks[RECEIVE_PODS[0]])
    assert all(sum(seeded[b.name]["stats"]["numSamples"] for b in receive_blocks[pod]) == one_copy
               for pod in RECEIVE_PODS)
    a, b = (seeded[u] for u in pair)
    assert a["minTime"] < b["maxTime"] and b["minTime"] < a["maxTime"], (a, b)

    # The split: both shards on one bucket.
    with Harness(tmp_path / "split", objects) as harness:
        bucket = harness.sandbox.buckets / bucket_id
        seed(bucket, copies + prometheus, main)
        before = {u: fingerprint(bucket, u) for u in (b.name for b in prometheus)}
        shards = {MAIN_SHARD: harness.start(main), RECEIVE_SHARD: harness.start(receive)}
        ended = {name: settle(process) for name, process in shards.items()}
        numbers = {name: {key: metric(process, name_) for key, name_ in (
            ("halted", "thanos_compact_halted"), ("iterations", "thanos_compact_iterations_total"),
            ("compactions", "thanos_compact_group_compactions_total"),
            ("vertical", "thanos_compact_group_vertical_compactions_total"))}
            | {"excluded": metric(process, "thanos_blocks_meta_synced", state="label-excluded")}
            for name, process in shards.items()}
        logs = {name: process.output(200000) for name, process in shards.items()}
        after = blocks(bucket)
        after_files = {u: fingerprint(bucket, u) for u in before}
        if ended[MAIN_SHARD] == "halted":  # a halted compactor blocks for good: SIGTERM would wait out the grace
            shards[MAIN_SHARD].kill()
    assert not harness.leftovers(), harness.leftovers()
    split_seconds = time.monotonic() - began

    made = {u: m for u, m in after.items() if u not in seeded}
    live_receive = [m for m in live(after).values() if RECEIVE_TENANT_LABEL in m["thanos"]["labels"]]
    live_prometheus = {u: m for u, m in live(after).items() if RECEIVE_TENANT_LABEL not in m["thanos"]["labels"]}
    marked = {u for u, m in after.items() if m["marked"]}
    halt_lines = [line for line in logs[MAIN_SHARD].splitlines() if "critical error detected; halting" in line]

    # The old arguments: one compactor of every stream, with the deduplication label.
    old_args = [a for a in main.args if not a.startswith("--selector.relabel-config=")] + [dedup_flag]
    single = dataclasses.replace(main, args=old_args)
    with Harness(tmp_path / "single", objects) as harness:
        bucket = harness.sandbox.buckets / bucket_id
        seed(bucket, copies + prometheus, main)
        process = harness.start(single)
        old_ended = settle(process)
        old_numbers = {"halted": metric(process, "thanos_compact_halted"),
                       "vertical": metric(process, "thanos_compact_group_vertical_compactions_total")}
        old_log = process.output(4000)
        old = blocks(bucket)
    assert not harness.leftovers(), harness.leftovers()
    old_merged = [m for u, m in live(old).items() if set(pair) <= set(m["compaction"]["sources"])]
    seconds = time.monotonic() - began

    with capsys.disabled():
        print(f"\n[compaction] prod {CLUSTER}: {MAIN_SHARD} and {RECEIVE_SHARD} on one bucket", *(f"  {line}" for line in [
            f"seeded: {len(copies)} receive blocks ({len(RECEIVE_PODS)} copies x {RECEIVE_BLOCKS}, {one_copy} samples "
            f"per copy), {len(prometheus)} Prometheus blocks (prometheus-0 overlap {pair[0]} "
            f"[{a['minTime'] - start}, {a['maxTime'] - start}) ms / {pair[1]} [{b['minTime'] - start}, "
            f"{b['maxTime'] - start}) ms, {a['stats']['numSamples']} + {b['stats']['numSamples']} samples)",
            *(f"{name}: {ended[name]}, " + ", ".join(f"{k} {v:.0f}" for k, v in numbers[name].items())
              for name in shards),
            f"{MAIN_SHARD} halt: {halt_lines[0][:700] if halt_lines else 'none'}",
            f"after: {len(made)} new blocks, {len(marked)} marked; live receive blocks {len(live_receive)} "
            f"(spans {sorted((m['maxTime'] - m['minTime']) // 60000 for m in live_receive)} min, labels "
            f"{sorted({json.dumps(m['thanos']['labels'], sort_keys=True) for m in live_receive})}), "
            f"{samples(live_receive)} raw samples (one copy {one_copy}, all copies {len(RECEIVE_PODS) * one_copy})",
            f"live Prometheus blocks {len(live_prometheus)} of {len(prometheus)}, {samples(live_prometheus.values())} "
            f"raw samples of {samples(seeded[b.name] for b in prometheus)}; files changed: "
            f"{sorted(u for u in before if before[u] != after_files[u]) or 'none'}",
            f"old arguments (one compactor, {dedup_flag}, no selector): {old_ended}, halted {old_numbers['halted']:.0f}, "
            f"vertical compactions {old_numbers['vertical']:.0f}; prometheus-0 overlap merged into "
            f"{[(m['ulid'], m['stats']['numSamples']) for m in old_merged] or 'nothing'}, both marked: "
            f"{all(old[u]['marked'] for u in pair)}",
            f"{split_seconds:.1f} s to the end of the split (planning included), {seconds:.1f} s in all"]), sep="\n")

    # The receive shard merged the copies and compacted on; every block it made is receive's, without the replica.
    assert ended[RECEIVE_SHARD] == "done" and numbers[RECEIVE_SHARD]["halted"] == 0, logs[RECEIVE_SHARD][-4000:]
    assert numbers[RECEIVE_SHARD]["vertical"] >= RECEIVE_BLOCKS, numbers
    assert all(set(m["compaction"]["sources"]) <= {c.name for c in copies} for m in made.values()), made
    assert all(m["thanos"]["labels"].get(RECEIVE_TENANT_LABEL) and REPLICA_LABEL not in m["thanos"]["labels"]
               for m in made.values()), made
    assert all(REPLICA_LABEL not in m["thanos"]["labels"] for m in live_receive), live_receive
    assert {c.name for c in copies} <= marked, sorted({c.name for c in copies} - marked)
    assert samples(live_receive) == one_copy, (samples(live_receive), one_copy)
    assert {s for m in live_receive for s in m["compaction"]["sources"]} == {c.name for c in copies}
    assert min(m["minTime"] for m in live_receive) == start and \
        max(m["maxTime"] for m in live_receive) == max(seeded[c.name]["maxTime"] for c in copies)
    assert any(m["maxTime"] - m["minTime"] > 2 * HOUR_MS for m in live_receive), live_receive
    # The main shard halted on the overlap, named both blocks, made nothing and left every Prometheus block as it was.
    assert ended[MAIN_SHARD] == "halted" and numbers[MAIN_SHARD]["halted"] == 1, logs[MAIN_SHARD][-4000:]
    assert halt_lines and "overlap" in halt_lines[0] and all(u in halt_lines[0] for u in pair), halt_lines
    assert numbers[MAIN_SHARD]["compactions"] == 0 and numbers[MAIN_SHARD]["vertical"] == 0, numbers
    assert set(live_prometheus) == {b.name for b in prometheus}, sorted(live_prometheus)
    assert before == after_files, "a Prometheus block's files changed"
    assert not marked & {b.name for b in prometheus}, marked
    assert samples(live_prometheus.values()) == samples(seeded[b.name] for b in prometheus)
    # Neither saw the other's blocks.
    assert numbers[MAIN_SHARD]["excluded"] >= len(copies), numbers
    assert numbers[RECEIVE_SHARD]["excluded"] == len(prometheus), numbers
    # Before the split: the same bucket under one compactor with the deduplication label merges the overlap silently.
    assert old_ended == "done" and old_numbers["halted"] == 0, old_log
    assert all(old[u]["marked"] for u in pair) and len(old_merged) == 1, (old_merged, {u: old[u] for u in pair})
    assert old_merged[0]["stats"]["numSamples"] == a["stats"]["numSamples"] + b["stats"]["numSamples"]
    assert old_merged[0]["thanos"]["labels"] == prometheus_labels[PROMETHEUS_REPLICAS[0]]
    assert seconds < 90, seconds
