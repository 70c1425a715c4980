"""Prepared history: real Prometheus blocks written by promtool from an OpenMetrics file, given the `thanos` section
a sidecar writes into meta.json, so Thanos reads them as uploaded blocks without waiting hours for real ones."""

import json
import os
import shutil
import subprocess
from pathlib import Path

from .build import tool

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
HOUR_MS = 3600 * 1000


def ulid(timestamp_ms: int) -> str:
    """A ULID whose time is `timestamp_ms` (Thanos reads a block's age from its ULID: the compactor leaves blocks
    younger than --consistency-delay alone)."""
    value = (timestamp_ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def write_blocks(folder: Path, series: list[str], start_ms: int, end_ms: int, step_s: int,
                 labels: dict[str, str], max_block_hours: int = 2) -> list[Path]:
    """2h blocks of `series` (OpenMetrics names with labels, e.g. `demo{instance="a"}`) sampled every `step_s`
    over [start_ms, end_ms), each a block dir under `folder` with Thanos' meta section carrying `labels`. A larger
    `max_block_hours` makes longer blocks (promtool aligns them to 2h times a power of 3: 6h, 18h, 54h)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "history.om"
    with source.open("w") as out:
        out.write("# TYPE harness_history gauge\n")
        for t in range(start_ms, end_ms, step_s * 1000):
            for index, name in enumerate(series):
                out.write(f"{name} {index + (t // 1000) % 600} {t / 1000:.3f}\n")
        out.write("# EOF\n")
    raw = folder / "raw"
    subprocess.run([str(tool("promtool")), "tsdb", "create-blocks-from", "openmetrics",
                    f"--max-block-duration={max_block_hours}h", str(source), str(raw)],
                   check=True, capture_output=True, text=True, timeout=300)
    blocks = []
    for block in sorted(p for p in raw.iterdir() if (p / "meta.json").exists()):
        meta = json.loads((block / "meta.json").read_text())
        meta["ulid"] = ulid(meta["maxTime"] + HOUR_MS)  # made an hour after its last sample, like a sidecar's
        meta["compaction"]["sources"] = [meta["ulid"]]  # a Prometheus block is its own source
        meta["thanos"] = {"version": 1, "labels": labels, "downsample": {"resolution": 0}, "source": "sidecar",
                          "segment_files": sorted(p.name for p in (block / "chunks").iterdir())}
        target = folder / meta["ulid"]
        shutil.move(str(block), target)
        (target / "meta.json").write_text(json.dumps(meta, indent=2))
        blocks.append(target)
    return blocks


def block_objects(block: Path) -> list[tuple[str, Path]]:
    """(object key, file) of a block, meta.json last, as the shipper uploads it."""
    files = sorted(p for p in block.rglob("*") if p.is_file() and p.name != "meta.json")
    return [(f"{block.name}/{p.relative_to(block).as_posix()}", p) for p in files] + \
        [(f"{block.name}/meta.json", block / "meta.json")]
