"""Store gateways: a memory limit above the chunk pool and per-request limits, so one wide query cannot kill them, and
hash and time shards that together serve every block."""

import yaml

from ._quantities import _bytes, _thanos_bytes
from ._register import resource_policy, stack_policy
from ._workloads import WORKLOAD_TYPES, cluster_of, fix, flag, seconds, thanos_containers


def validate_store_limits(args, report):
    """Refuses a store gateway without a memory limit above its chunk pool and request limits: one query kills it."""
    if args.resource_type not in WORKLOAD_TYPES:
        return
    for c, command, flags in thanos_containers(args.props):
        if command != "store":
            continue
        limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if not limit:
            report(f"the store gateway has no memory limit{fix('thanos.store.resources')}.")
        pool = (flag(flags, "chunk-pool-size") or ["2GB"])[0]  # Thanos' default
        if limit and _thanos_bytes(pool) >= _bytes(limit):
            report(f"the store gateway's chunk pool ({pool}) is not below its memory limit ({limit}): one busy "
                   "query fills the pool and the kernel kills the store.")
        for name in ("store.limits.request-series", "store.limits.request-samples"):
            if not [v for v in flag(flags, name) if v != "0"]:
                key = "series-limit" if name.endswith("series") else "samples-limit"
                report(f"the store gateway sets no --{name}: one wide query can OOM every replica"
                       f"{fix('thanos.store.' + key)}.")


def _relative(value: str | None) -> float | None:
    """`-2w` -> seconds back from now; None for unbounded; NaN for absolute times (not judged)."""
    if not value:
        return None
    return seconds(value[1:]) if value.startswith("-") else float("nan")


def validate_store_coverage(args, report):
    """Refuses store gateway hash or time shards that leave blocks unserved: queries silently miss that data."""
    groups: dict[str, dict[tuple, list[tuple[int, int]]]] = {}
    for r in args.resources:
        if r.resource_type not in WORKLOAD_TYPES:
            continue
        for _, command, flags in thanos_containers(r.props):
            if command != "store":
                continue
            window = (_relative(next(iter(flag(flags, "min-time")), None)), _relative(next(iter(flag(flags, "max-time")), None)))
            shard = (1, 0)
            for text in flag(flags, "selector.relabel-config"):
                rules = yaml.safe_load(text) or []
                hashmod = next((x for x in rules if x.get("action") == "hashmod"), None)
                keep = next((x for x in rules if x.get("action") == "keep"), None)
                if hashmod and keep and str(keep.get("regex", "")).isdigit():
                    shard = (int(hashmod.get("modulus", 1)), int(keep["regex"]))
            groups.setdefault(cluster_of(r), {}).setdefault(window, []).append(shard)
    for windows in groups.values():
        for shard_list in windows.values():
            if (1, 0) in shard_list:
                continue  # an unsharded store serves every block of the range: the shards beside it only overlap
            moduli = {m for m, _ in shard_list}
            if len(moduli) > 1:
                report(f"store shards of one time range use different hashmod moduli {sorted(moduli)}.")
            elif set(range(next(iter(moduli)))) - {s for _, s in shard_list}:
                missing = sorted(set(range(next(iter(moduli)))) - {s for _, s in shard_list})
                report(f"no store serves hash shard(s) {missing} of {next(iter(moduli))}: those blocks are invisible"
                       f"{fix('thanos.store.shards')}.")
        ranges = sorted(windows, key=lambda w: -(w[0] if w[0] is not None else float("inf")))
        if any(v != v for w in ranges for v in w if v is not None):
            continue  # absolute times: not judged statically
        if ranges[0][0] is not None:
            report(f"no store serves blocks older than the oldest --min-time{fix('thanos.store.time-partitions')}.")
        if ranges[-1][1] is not None:
            report(f"no store serves the newest blocks (every store has a --max-time){fix('thanos.store.time-partitions')}.")
        for older, newer in zip(ranges, ranges[1:], strict=False):
            if older[1] is None or newer[0] is None or newer[0] <= older[1]:
                report(f"store time partitions leave a gap between them: blocks in it are served by no store"
                       f"{fix('thanos.store.time-partitions')}.")


POLICIES = [
    stack_policy("thanos-store-shards-cover", "Store gateway hash and time shards together serve every block, with no gap.",
                 validate_store_coverage),
    resource_policy("thanos-store-limits", "The store gateway has a memory limit and per-request series and sample limits.",
                    validate_store_limits),
]
