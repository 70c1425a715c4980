"""A writer damages a block: the platform sees it, and the runbook's restore brings the block back. Judged by the real
tools: chicago's planned MinIO, whose planned make-bucket Job (the real mc) makes the bucket versioned; the planned
`thanos-blocks` user every Thanos component of the namespace writes as; chicago's planned compactor, whose metrics
say what it reads; chicago's planned Prometheus, which scrapes it through the cluster DNS and evaluates the plan's
own rules; and `./run restore-block` (recovery/restore_block.py) against the real S3 API.

Any writer can overwrite or delete any object of the bucket (one user per namespace in dev; one identity per
component in the clouds, each with write on the whole bucket): these runs show what is detected and what is
recoverable, not that the write is refused."""

import json
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.config import Config

from components.observability.rules import SOURCES_PER_COMPACTION
from recovery.restore_block import RestoreError, main, restore_block
from tests.realtools.blocks import HOUR_MS, ulid as new_ulid, write_blocks
from tests.realtools.devstack import eventually, http_json, metric, planned_external_labels, s3_client
from tests.realtools.plan import kubernetes_objects
from tests.realtools.sandbox import Process
from tests.test_real_faults import BUCKET, CHICAGO, STORAGE_SERIES, chicago_storage, live_metas, raw_samples, upload

READY_SECONDS = 120
SCRAPE_SECONDS = 150
"""Scrape and rule evaluation every 30 s (dev's Prometheus): an alert is pending within a few rounds."""


def synced(reader: Process, state: str) -> float:
    """`thanos_blocks_meta_synced{state=...}` of a compactor's or store gateway's block fetcher (its last sync)."""
    with urllib.request.urlopen(reader.url("/metrics"), timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("thanos_blocks_meta_synced{") and f'state="{state}"' in line:
                return float(line.rsplit(" ", 1)[1])
    raise ValueError(f"{reader.container.id} has no synced state {state}")


def sees(harness, reader: Process, state: str) -> Process:
    """Restart a reader of the bucket (the compactor syncs at start, then every --wait-interval) and wait until its
    sync counts one block in `state`."""
    reader = harness.restart(reader)
    assert reader.wait_ready(READY_SECONDS) == "ready", reader.output()
    eventually(lambda: synced(reader, state) == 1, 60, every=1)
    return reader


def alert_state(prometheus: Process, name: str) -> str | None:
    """The state of the alert in Prometheus (pending, firing), None when inactive."""
    alerts = http_json(prometheus.url("/api/v1/alerts"))["data"]["alerts"]
    return next((a["state"] for a in alerts if a["labels"]["alertname"] == name), None)


def writer_client(minio: Process, objects):
    """An S3 client with the credentials the plan gives the Thanos components (the `thanos-blocks` user)."""
    [config] = [c for _, obj in objects if obj["kind"] == "Secret" and obj["metadata"].get("namespace") == CHICAGO
                for text in (obj.get("stringData") or {}).values() if "type: S3" in text
                for c in [yaml.safe_load(text)["config"]] if c["access_key"] == "thanos-blocks"]
    return boto3.client("s3", endpoint_url=f"http://{minio.ip}:{minio.ports['--address']}",
                        aws_access_key_id=config["access_key"], aws_secret_access_key=config["secret_key"],
                        region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))


def admin_objstore(minio: Process, folder: Path, bucket: str = BUCKET) -> Path:
    """A Thanos objstore file with MinIO's root credentials: listing versions needs more than the Thanos user has."""
    path = folder / f"admin-{bucket}.yml"
    path.write_text(yaml.safe_dump({"type": "S3", "config": {
        "bucket": bucket, "endpoint": f"{minio.ip}:{minio.ports['--address']}", "insecure": True,
        "access_key": minio.container.env["MINIO_ROOT_USER"], "secret_key": minio.container.env["MINIO_ROOT_PASSWORD"]}}))
    return path


def moment() -> datetime:
    """A time at least a second clear of the writes before and after it: S3 versions carry whole-second times, and
    the restore refuses a time in the second of a change."""
    time.sleep(1.5)
    now = datetime.now(timezone.utc)
    time.sleep(1.5)
    return now


def restore(config: Path, block: str, as_of: datetime, capsys, apply: bool) -> str:
    argv = ["--objstore-config", str(config), "--block", block, "--as-of", as_of.isoformat()]
    assert main(argv + (["--apply"] if apply else [])) == 0
    return capsys.readouterr().out


def test_a_damaged_block_is_detected_and_the_runbook_restores_it(tmp_path, capsys):
    objects = kubernetes_objects("dev")
    start = (int(time.time() * 1000) - 3 * 24 * HOUR_MS) // (2 * HOUR_MS) * (2 * HOUR_MS)
    labels = {**planned_external_labels(objects, "chicago", CHICAGO), "prometheus_replica": "thanos-prometheus-0"}
    [block] = write_blocks(tmp_path / "history", STORAGE_SERIES, start, start + 2 * HOUR_MS, 30, labels)
    ulid, original = block.name, (block / "meta.json").read_bytes()
    meta_key = f"{ulid}/meta.json"
    lines = []
    with chicago_storage(tmp_path) as (harness, minio, planned):
        admin = s3_client(minio)
        assert admin.get_bucket_versioning(Bucket=BUCKET).get("Status") == "Enabled"  # the planned Job did it
        rules = admin.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
        assert [r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in rules] == [30], rules
        upload(admin, [block])
        compactor = harness.start(planned[("thanos-compactor", "thanos-compactor")])
        prometheus = harness.start(planned[("thanos-prometheus", "prometheus")])
        for process in (compactor, prometheus):
            assert process.wait_ready(READY_SECONDS) == "ready", process.output()
        eventually(lambda: synced(compactor, "loaded") == 1, 60, every=1)
        writer = writer_client(minio, objects)
        config = admin_objstore(minio, tmp_path)

        # 1. A writer overwrites meta.json. The running compactor keeps the copy it cached; a store gateway that
        # starts now (a new replica, or one that lost its disk) cannot read it and does not serve the block.
        before_damage = moment()
        writer.put_object(Bucket=BUCKET, Key=meta_key, Body=b"{not json")
        compactor = sees(harness, compactor, "loaded")
        store = harness.start(planned[("thanos-store", "thanos-store")])
        assert store.wait_ready(READY_SECONDS) == "ready", store.output()
        eventually(lambda: synced(store, "corrupted-meta-json") == 1, 60, every=1)
        seen = time.monotonic()
        assert eventually(lambda: alert_state(prometheus, "ThanosBlocksCorrupted"), SCRAPE_SECONDS, every=3)
        lines.append(f"meta.json overwritten: the restarted compactor still loads its cached copy; a new store gateway "
                     f"skips the block, ThanosBlocksCorrupted {alert_state(prometheus, 'ThanosBlocksCorrupted')} "
                     f"{time.monotonic() - seen:.0f}s after its sync")
        planned_steps = restore(config, ulid, before_damage, capsys, apply=False)
        assert f"restore {meta_key}" in planned_steps, planned_steps
        assert admin.get_object(Bucket=BUCKET, Key=meta_key)["Body"].read() == b"{not json"  # a dry run changes nothing
        done = restore(config, ulid, before_damage, capsys, apply=True)
        assert admin.get_object(Bucket=BUCKET, Key=meta_key)["Body"].read() == original, done
        store = sees(harness, store, "loaded")
        assert synced(store, "corrupted-meta-json") == 0
        lines.append(f"restored ({done.splitlines()[0]}): the store gateway serves the block again")

        # 2. A writer deletes meta.json and marks the block for deletion: partial, and due to be deleted.
        before_damage = moment()
        writer.delete_object(Bucket=BUCKET, Key=meta_key)
        writer.put_object(Bucket=BUCKET, Key=f"{ulid}/deletion-mark.json", Body=json.dumps(
            {"id": ulid, "version": 1, "deletion_time": int(time.time())}).encode())
        compactor = sees(harness, compactor, "no-meta-json")
        seen = time.monotonic()
        assert eventually(lambda: alert_state(prometheus, "ThanosBlocksPartial"), SCRAPE_SECONDS, every=3)
        lines.append(f"meta.json deleted, deletion mark planted: ThanosBlocksPartial "
                     f"{alert_state(prometheus, 'ThanosBlocksPartial')} {time.monotonic() - seen:.0f}s after the sync")
        done = restore(config, ulid, before_damage, capsys, apply=True)
        assert f"remove {ulid}/deletion-mark.json" in done and f"restore {meta_key}" in done, done
        keys = {o["Key"] for o in admin.list_objects_v2(Bucket=BUCKET, Prefix=f"{ulid}/")["Contents"]}
        assert f"{ulid}/deletion-mark.json" not in keys
        assert admin.get_object(Bucket=BUCKET, Key=meta_key)["Body"].read() == original
        compactor = sees(harness, compactor, "loaded")
        assert synced(compactor, "no-meta-json") == 0
        assert synced(compactor, "marked-for-deletion") == 0
        lines.append(f"restored ({' / '.join(done.splitlines())}): the compactor loads it, unmarked")

        # The tool refuses what it cannot do, saying why.
        admin.create_bucket(Bucket="unversioned")
        with pytest.raises(RestoreError, match="not versioned"):
            restore_block(admin, "unversioned", "", ulid, before_damage, apply=False)
        with pytest.raises(RestoreError, match="had no meta.json"):
            restore_block(admin, BUCKET, "", ulid, datetime(2000, 1, 1, tzinfo=timezone.utc), apply=False)
        with pytest.raises(RestoreError, match="list it with --block, not --remove-new"):
            restore_block(admin, BUCKET, "", ulid, before_damage, apply=False, remove_new=True)
        written = max(e["LastModified"] for e in admin.list_object_versions(Bucket=BUCKET, Prefix=f"{ulid}/")["Versions"])
        with pytest.raises(RestoreError, match="in the second of --as-of"):
            restore_block(admin, BUCKET, "", ulid, written.replace(microsecond=500000), apply=False)
    with capsys.disabled():
        print("\n" + "\n".join(f"  {line}" for line in lines))


def test_a_forged_block_claiming_every_source_is_detected_and_undone(tmp_path, capsys):
    """A writer uploads one meta.json whose compaction.sources list every block of a stream: the store gateways hide
    them at once and the compactor's garbage collection marks them all for deletion. The alert fires in the planned
    Prometheus; the runbook's restore removes the forged block and the marks, and the compactor then compacts the
    real blocks with every sample kept."""
    objects = kubernetes_objects("dev")
    start = (int(time.time() * 1000) - 5 * 24 * HOUR_MS) // (8 * HOUR_MS) * (8 * HOUR_MS)
    labels = {**planned_external_labels(objects, "chicago", CHICAGO), "prometheus_replica": "thanos-prometheus-0"}
    victims = write_blocks(tmp_path / "history", STORAGE_SERIES[:5], start, start + 60 * HOUR_MS, 60, labels)
    metas = [json.loads((b / "meta.json").read_text()) for b in victims]
    last = metas[-1]
    # An old ULID: a block younger than --consistency-delay would be left alone for now.
    forged = {**last, "ulid": new_ulid(last["maxTime"] + 2 * HOUR_MS),
              "compaction": {"level": 2, "sources": sorted(m["ulid"] for m in metas)}}
    with chicago_storage(tmp_path) as (harness, minio, planned):
        admin = s3_client(minio)
        compactor = harness.start(planned[("thanos-compactor", "thanos-compactor")])
        prometheus = harness.start(planned[("thanos-prometheus", "prometheus")])
        for process in (compactor, prometheus):
            assert process.wait_ready(READY_SECONDS) == "ready", process.output()

        def scraped_at_zero() -> bool:
            result = http_json(prometheus.url("/api/v1/query?query=thanos_compact_garbage_collected_blocks_total"))
            return [r["value"][1] for r in result["data"]["result"]] == ["0"]

        eventually(scraped_at_zero, SCRAPE_SECONDS, every=3)
        upload(admin, victims)  # as the sidecar did, hours ago
        history = raw_samples(live_metas(admin))
        before_damage = moment()
        writer_client(minio, objects).put_object(Bucket=BUCKET, Key=f"{forged['ulid']}/meta.json",
                                                 Body=json.dumps(forged).encode())
        compactor = harness.restart(compactor)  # its next iteration, now
        assert compactor.wait_ready(READY_SECONDS) == "ready", compactor.output()
        marked = eventually(lambda: metric(compactor, "thanos_compact_garbage_collected_blocks_total")
                            == len(victims) and metric(compactor, "thanos_compact_garbage_collected_blocks_total"),
                            60, every=1)
        keys = {o["Key"] for page in admin.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                for o in page.get("Contents") or []}
        assert all(f"{m['ulid']}/deletion-mark.json" in keys for m in metas), "every real block is marked"
        seen = time.monotonic()
        assert eventually(lambda: alert_state(prometheus, "ThanosCompactGarbageCollectedMany"), SCRAPE_SECONDS,
                          every=3) == "firing"
        took = time.monotonic() - seen

        argv = ["--objstore-config", str(admin_objstore(minio, tmp_path)), "--as-of", before_damage.isoformat(),
                "--apply", "--remove-new", forged["ulid"], *(a for m in metas for a in ("--block", m["ulid"]))]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert out.count("remove ") == len(victims) + 1, out  # every mark, and the forged meta.json
        compactor = harness.restart(compactor)
        assert compactor.wait_ready(READY_SECONDS) == "ready", compactor.output()
        eventually(lambda: metric(compactor, "thanos_compact_iterations_total") >= 1, 180, every=2)
        compacted = metric(compactor, "thanos_compact_group_compactions_total")
        assert compacted > 0
        superseded = metric(compactor, "thanos_compact_garbage_collected_blocks_total")
        # What the alert takes for normal: the real blocks' own compactions supersede them, within its bound.
        assert superseded <= SOURCES_PER_COMPACTION * (compacted + 1), (superseded, compacted)
        live = live_metas(admin)
        assert forged["ulid"] not in {m["ulid"] for m in live}
        assert raw_samples(live) == history, (raw_samples(live), history)
    with capsys.disabled():
        print(f"\n  forged meta.json covering {len(victims)} blocks: the compactor's garbage collection marked "
              f"{marked:.0f}; ThanosCompactGarbageCollectedMany firing {took:.0f}s after; restored "
              f"({len(victims)} marks and the forged block removed); then {compacted:.0f} compactions superseding "
              f"{superseded:.0f} blocks, "
              f"{raw_samples(live)} of {history} raw samples live")
