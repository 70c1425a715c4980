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

from recovery.restore_block import RestoreError, main, restore_block
from tests.realtools.blocks import HOUR_MS, write_blocks
from tests.realtools.devstack import eventually, http_json, planned_external_labels, s3_client
from tests.realtools.plan import kubernetes_objects
from tests.realtools.sandbox import Process
from tests.test_real_faults import BUCKET, CHICAGO, STORAGE_SERIES, chicago_storage, upload

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
        before_damage = datetime.now(timezone.utc)
        time.sleep(1.5)  # S3 versions carry whole-second times
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
        before_damage = datetime.now(timezone.utc)
        time.sleep(1.5)
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
    with capsys.disabled():
        print("\n" + "\n".join(f"  {line}" for line in lines))
