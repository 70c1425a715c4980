"""Put every object of one Thanos block back as it was at a time before it was damaged, from a versioned S3 (or
MinIO) bucket's noncurrent versions: `./run restore-block --objstore-config F --as-of TIME [--block ULID ...]
[--remove-new ULID ...] [--apply]`.

Per object key under `<prefix><ULID>/`, the version current at `--as-of` is the one wanted: it is copied over the
current version when they differ (a `meta.json` overwritten or deleted comes back); a key that did not exist then
(a `deletion-mark.json` nobody planned) is deleted, which in a versioned bucket only adds a delete marker. Without
`--apply` it prints what it would do. `meta.json` goes last, as an uploader writes it: a reader never sees a block
whose meta.json is back before its chunks."""

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml


class RestoreError(Exception):
    """What stops a restore, said so that a person can act on it."""


@dataclass(frozen=True)
class Step:
    """One change: `restore` copies `version` over the key, `remove` deletes the key (adds a delete marker)."""

    action: str
    key: str
    version: str | None = None

    def text(self) -> str:
        return f"{self.action} {self.key}" + (f" (version {self.version})" if self.version else "")


def objstore_settings(path: Path) -> tuple[dict[str, Any], str]:
    """The S3 section and the prefix of a Thanos objstore configuration file."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise RestoreError(f"{path}: cannot read the objstore configuration: {err}") from err
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise RestoreError(f"{path}: not a Thanos objstore configuration (needs `type` and `config`)")
    kind = str(document.get("type", "")).upper()
    if kind != "S3":
        raise RestoreError(f"{path}: type {document.get('type')!r}: this tool restores from S3 and MinIO; for GCS and "
                           "Azure follow docs/runbooks.md (gcloud storage restore, az storage blob undelete)")
    config = document["config"]
    if not config.get("bucket"):
        raise RestoreError(f"{path}: config.bucket is missing")
    prefix = str(document.get("prefix") or "").strip("/")
    return config, f"{prefix}/" if prefix else ""


def s3_client(config: dict[str, Any]):
    """An S3 client for the configuration's endpoint and credentials (the SDK's own chain when it names none)."""
    import boto3
    from botocore.config import Config

    endpoint = config.get("endpoint")
    scheme = "http" if config.get("insecure") else "https"
    return boto3.client("s3", endpoint_url=f"{scheme}://{endpoint}" if endpoint else None,
                        aws_access_key_id=config.get("access_key") or None,
                        aws_secret_access_key=config.get("secret_key") or None,
                        aws_session_token=config.get("session_token") or None,
                        region_name=config.get("region") or "us-east-1",
                        config=Config(s3={"addressing_style": "path" if endpoint else "auto"},
                                      retries={"max_attempts": 5}))


def versions(client, bucket: str, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """key -> its versions and delete markers (`VersionId`, `LastModified`, `IsLatest`, `deleted`), newest first
    (the current one first among those of one second)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for entry, deleted in [(v, False) for v in page.get("Versions") or []] + \
                              [(m, True) for m in page.get("DeleteMarkers") or []]:
            found.setdefault(entry["Key"], []).append({**entry, "deleted": deleted})
    for entries in found.values():
        entries.sort(key=lambda e: (e["LastModified"], e["IsLatest"]), reverse=True)
    return found


def at(entries: list[dict[str, Any]], as_of: datetime) -> dict[str, Any] | None:
    """The version or delete marker of a key that was current at `as_of` (None: the key did not exist yet)."""
    return next((e for e in entries if e["LastModified"] <= as_of), None)


def check_unambiguous(found: dict[str, list[dict[str, Any]]], as_of: datetime) -> None:
    """S3 gives LastModified in whole seconds: a version written in `as_of`'s own second may be from before or after
    it, so refuse rather than guess."""
    second = as_of.replace(microsecond=0)
    close = sorted(key for key, entries in found.items()
                   if any(e["LastModified"].replace(microsecond=0) == second for e in entries))
    if close:
        raise RestoreError(f"{', '.join(close)} changed in the second of --as-of {as_of.isoformat()} (S3 times are "
                           "whole seconds): choose a time at least a second before the damage")


def plan_restore(found: dict[str, list[dict[str, Any]]], as_of: datetime) -> list[Step]:
    """The steps that make each key what it was at `as_of`: removals first, meta.json first among them (a reader
    never sees a meta.json without its chunks), then restores, meta.json last (as an uploader writes it)."""
    removals, restores = [], []
    for key, entries in sorted(found.items()):
        current = next((e for e in entries if e["IsLatest"]), entries[0])
        wanted = at(entries, as_of)
        if wanted is None or wanted["deleted"]:
            if not current["deleted"]:
                removals.append(Step("remove", key))
        elif current["deleted"] or current["VersionId"] != wanted["VersionId"]:
            restores.append(Step("restore", key, wanted["VersionId"]))
    removals.sort(key=lambda s: not s.key.endswith("/meta.json"))
    restores.sort(key=lambda s: s.key.endswith("/meta.json"))
    return removals + restores


def restore_block(client, bucket: str, prefix: str, block: str, as_of: datetime, apply: bool,
                  remove_new: bool = False) -> list[Step]:
    """Plan the block's restore (and carry it out with `apply`); refuse an unversioned bucket, a time S3 cannot tell
    from the damage, and a block without a meta.json at `as_of` unless `remove_new` (then every object it has now is
    removed: a block that did not exist then, such as a forged one)."""
    status = client.get_bucket_versioning(Bucket=bucket).get("Status")
    if status != "Enabled":
        raise RestoreError(f"bucket {bucket} is not versioned (versioning {status or 'never enabled'}): it keeps no "
                           "previous versions to restore from")
    found = versions(client, bucket, f"{prefix}{block}/")
    check_unambiguous(found, as_of)
    meta = at(found.get(f"{prefix}{block}/meta.json", []), as_of)
    existed = meta is not None and not meta["deleted"]
    if existed == remove_new:
        raise RestoreError(
            f"block {block} had a meta.json at {as_of.isoformat()}: list it with --block, not --remove-new" if existed
            else f"block {block} had no meta.json at {as_of.isoformat()} in bucket {bucket} (or its versions have "
                 "expired): nothing to restore it to (--remove-new ULID removes a block that did not exist then)")
    steps = plan_restore(found, as_of)
    for step in steps if apply else ():
        if step.action == "remove":
            client.delete_object(Bucket=bucket, Key=step.key)
        else:  # the managed copy: a single copy_object stops at 5 GiB, and a compacted block's index can be larger
            client.copy({"Bucket": bucket, "Key": step.key, "VersionId": step.version}, bucket, step.key)
    return steps


def parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--as-of {value!r}: not an ISO 8601 time (2026-12-01T10:00:00Z)") from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run restore-block", description=__doc__.split("\n\n")[0])
    parser.add_argument("--objstore-config", type=Path, required=True, help="the Thanos objstore YAML (type S3)")
    parser.add_argument("--block", action="append", default=[], help="a block's ULID to restore (repeat for several)")
    parser.add_argument("--remove-new", action="append", default=[], metavar="ULID",
                        help="a block that did not exist at --as-of (a forged one) to remove (repeat for several)")
    parser.add_argument("--as-of", type=parse_time, required=True, help="a time before the damage (ISO 8601, UTC)")
    parser.add_argument("--apply", action="store_true", help="carry the steps out (default: print them)")
    args = parser.parse_args(argv)
    if not args.block and not args.remove_new:
        parser.error("name a block: --block ULID (to restore) or --remove-new ULID (to remove)")
    verb = "done" if args.apply else "would do (run again with --apply)"
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        config, prefix = objstore_settings(args.objstore_config)
        client = s3_client(config)
        for block, remove in [(b, True) for b in args.remove_new] + [(b, False) for b in args.block]:
            steps = restore_block(client, config["bucket"], prefix, block, args.as_of, args.apply, remove)
            print(f"{block}: {len(steps)} step(s) {verb}" + "".join(f"\n  {s.text()}" for s in steps))
    except RestoreError as err:
        print(f"restore-block: {err}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as err:  # listing versions needs s3:ListBucketVersions, s3:GetObjectVersion
        print(f"restore-block: the bucket refused: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
