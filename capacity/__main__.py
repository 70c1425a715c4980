"""`python -m capacity STACK`: the capacity plan of a stack, per bucket and per cluster.

    python -m capacity prod                       a table per bucket (size by resolution, monthly cost) and cluster
    python -m capacity prod --series 2000000      plan for another active-series count
    python -m capacity prod --json plan.json      the same as JSON (`--json -` prints it)
    python -m capacity prod --plot bucket.png     bucket size by resolution over the retention horizon

Exit codes: 0 planned, 2 a bad stack file or option (the message names it).
"""

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def load_stack(args: argparse.Namespace):
    """The validated stack with its capacity section (or --series in place of it)."""
    import config

    path = args.config_file or ROOT / f"Pulumi.{args.stack}.yaml"
    if not path.is_file():
        raise ValueError(f"no stack file {path}")
    source = f"{path.name} thanos:config"
    with path.open() as stream:
        try:
            raw = config.fold_path_keys((yaml.safe_load(stream) or {}).get("config") or {})
        except config.ConfigError as err:
            raise config.ConfigError(err.problems, source) from None
    if isinstance(raw, dict) and args.series:
        raw = {**raw, "capacity": {**(raw.get("capacity") or {}), "active-series": args.series}}
    if not isinstance(raw, dict) or not isinstance(raw.get("capacity"), dict):
        raise ValueError(f"{path.name} has no capacity: section in thanos:config; add one (capacity: "
                         "{active-series: N}) or pass --series N")
    # Here the plan is the answer: sizes set below it are listed, not refused.
    raw = {**raw, "capacity": {**raw["capacity"], "enforce": "warn"}}
    warnings: list[str] = []
    stack = config.load(raw, source=source, warnings=warnings)
    return stack, warnings


def human(value: float) -> str:
    """Bytes as GB/TB with three significant figures (GB = 10^9, as clouds bill)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f} B"


def gibs(value: float) -> str:
    return f"{value / 1024**3:.1f} GiB"


def table(stack, plans) -> str:
    """What a person reads: per bucket, then the sizes of each cluster's components."""
    lines = []
    for region_name, p in plans.items():
        region = next(r for r in stack.regions if r.name == region_name)
        i, b, c = p.inputs, p.bucket, p.cost
        lines.append(f"bucket of {region_name} ({region.storage.provider}, {len(region.clusters)} cluster(s), "
                     f"{i.active_series:,} active series each, {i.scrape_interval_s:g}s scrape, churn {i.churn})")
        lines.append(f"  {'resolution':<12}{'retention':>10}{'per series/day':>16}{'size':>12}{'peak':>12}")
        for r in b.resolutions:
            lines.append(f"  {r.name:<12}{r.retention_days:>9g}d{r.bytes_per_series_day:>14.0f} B{human(r.bytes):>12}"
                         f"{human(r.peak_bytes):>12}")
        lines.append(f"  {'transient (delete-delay, pre-dedup)':<50}{human(b.transient_bytes):>12}")
        lines.append(f"  {'total':<50}{human(b.total_bytes):>12}{human(b.peak_bytes):>12}")
        dr = " with its DR copy" if i.replicated else ""
        lines.append(f"  monthly cost on {c.cloud} {c.storage_class}{dr}: ${c.total_usd:,.2f} (storage ${c.storage_usd:,.2f}, "
                     f"{c.writes_per_month:,.0f} writes and {c.reads_per_month:,.0f} reads ${c.requests_usd:,.2f}; "
                     f"prices of {c.prices_dated})")
        s = p.sizes
        lines.append(f"  per cluster: Prometheus {gibs(s.prometheus_memory)} memory, {gibs(s.prometheus_disk)} disk per "
                     f"replica; receive {gibs(s.receive_memory)} / {gibs(s.receive_disk)} per ingestor; ruler "
                     f"{gibs(s.ruler_memory)} / {gibs(s.ruler_disk)}")
        lines.append(f"               store {gibs(s.store_memory)} memory, {gibs(s.store_disk)} disk; query "
                     f"{gibs(s.query_memory)}; compactor disk {gibs(s.compactor_disk)}")
        lines.append(f"               memcached index {gibs(s.cache_index)}, bucket {gibs(s.cache_bucket)}, results "
                     f"{gibs(s.cache_query_results)} (pool totals)")
        lines.append("")
    return "\n".join(lines).rstrip()


def as_json(plans) -> dict:
    """The plans as plain data (bytes and dollars), constants included."""
    out = {}
    for region, p in plans.items():
        out[region] = {"inputs": asdict(p.inputs),
                       "bucket": {"resolutions": [asdict(r) for r in p.bucket.resolutions],
                                  "transientBytes": p.bucket.transient_bytes, "totalBytes": p.bucket.total_bytes,
                                  "peakBytes": p.bucket.peak_bytes, "blocksPerStream": p.bucket.blocks_per_stream},
                       "monthlyCost": {**asdict(p.cost), "totalUsd": p.cost.total_usd},
                       "sizes": asdict(p.sizes)}
    return out


def plot(plans, path: Path) -> None:
    """Bucket size by resolution over the retention horizon, one panel per bucket (stacked areas)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .planner import bucket_bytes_over_time

    figure, axes = plt.subplots(1, len(plans), figsize=(6.5 * len(plans), 4.2), squeeze=False)
    for axis, (region, p) in zip(axes[0], plans.items(), strict=True):
        horizon = max(r.retention_days for r in p.bucket.resolutions) + p.inputs.constants.max_block_days
        days = [horizon * k / 400 for k in range(401)]
        series = bucket_bytes_over_time(p.inputs, days)
        axis.stackplot(days, *[[v / 1e9 for v in values] for values in series.values()], labels=list(series),
                       alpha=0.85)
        axis.set_title(f"{region}: {human(p.bucket.total_bytes)} at steady state, ${p.cost.total_usd:,.2f}/month")
        axis.set_xlabel("days since the first upload")
        axis.set_ylabel("GB in the bucket")
        axis.legend(loc="upper left", title="resolution")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m capacity", description="Plan a stack's capacity.")
    parser.add_argument("stack", nargs="?", help="stack name: reads Pulumi.STACK.yaml")
    parser.add_argument("--config-file", type=Path, help="a stack file to read instead")
    parser.add_argument("--series", type=int, help="active series per cluster (replaces capacity.active-series)")
    parser.add_argument("--json", dest="json_path", help="write the plan as JSON to this file, or - for stdout")
    parser.add_argument("--plot", type=Path, help="draw bucket size by resolution over time into this PNG")
    args = parser.parse_args(argv)
    if not args.stack and not args.config_file:
        parser.error("give a STACK (a stack with a capacity: section, e.g. prod) or --config-file")
    import config

    for option, path in (("--json", Path(args.json_path) if args.json_path not in (None, "-") else None),
                         ("--plot", args.plot)):
        if path is not None and not path.parent.is_dir():
            print(f"capacity: {option} {path}: directory {path.parent} does not exist", file=sys.stderr)
            return 2
    if args.series is not None and args.series < 1:
        print("capacity: --series must be at least 1", file=sys.stderr)
        return 2
    try:
        stack, below = load_stack(args)
    except config.ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"capacity: {err}", file=sys.stderr)
        return 2
    from config.capacity import plans as stack_plans

    plans = stack_plans(stack)
    if args.json_path == "-":
        print(json.dumps(as_json(plans), indent=2, sort_keys=True))
    else:
        print(table(stack, plans))
        for warning in below:
            if warning.startswith("capacity: "):  # the stack's other warnings are the preflight's to print
                print(f"set below the plan: {warning.removeprefix('capacity: ')}")
    if args.json_path not in (None, "-"):
        Path(args.json_path).write_text(json.dumps(as_json(plans), indent=2, sort_keys=True) + "\n")
    if args.plot:
        plot(plans, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
