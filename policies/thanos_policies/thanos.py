"""Thanos semantics: retention, the singleton compactor, block producers, store limits, flags."""

import json

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy, StackValidationPolicy

import yaml

from .workloads import (FLAG_TABLE, POD_NAME, PROMETHEUS_CR, THANOS_RULER_CR, WORKLOAD_TYPES, Stack, Unknown,
                        bucket_name, parsed, cluster_of, container_flags, containers, deduplicated, fix, flag,
                        has_switch, image_version, known, objstore_document, plain, pod_spec, provider_of, replicas,
                        secret_text, seconds, switch_on, thanos_containers)

_FLAGS = FLAG_TABLE["commands"]
PINNED = tuple(int(n) for n in FLAG_TABLE["version"].lstrip("v").split("."))
"""The release whose full flag table the pack carries."""
REMOVED = {command: {name: tuple(int(n) for n in version.split(".")) for name, version in flags.items()}
           for command, flags in FLAG_TABLE["removed"].items()}
"""Flags a release removed, by command: true of every later release."""


_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3,
          "Ti": 1024**4}


def _bytes(quantity: str) -> float:
    """Bytes in a Kubernetes quantity (`100Gi`); NaN when it is not one."""
    number = quantity.rstrip("kMGTi")
    try:
        return float(number) * _UNITS[quantity[len(number):]]
    except (KeyError, ValueError):
        return float("nan")


def _thanos_bytes(size: str) -> float:
    """Bytes in a Thanos size flag (`2GB`, `512MB`: base 2, as Thanos reads them); NaN when it is not one."""
    units = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4,
             "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}
    number = size.rstrip("KMGTiBb")
    try:
        return float(number) * units[size[len(number):].upper() or "B"]
    except (KeyError, ValueError):
        return float("nan")


def validate_retention(args, report):
    if args.resource_type not in WORKLOAD_TYPES:
        return
    floor = seconds(args.get_config().get("rawFloor", "30d"))
    for _, command, flags in thanos_containers(args.props):
        if command != "compact":
            continue
        raw, five, hour = (seconds((flag(flags, f"retention.resolution-{r}") or ["0d"])[0]) for r in ("raw", "5m", "1h"))
        downsampling = not has_switch(flags, "downsampling.disable")
        if downsampling and raw and raw < 40 * 3600:
            report(f"compactor raw retention is below 40h with downsampling on: Thanos refuses to start"
                   f"{fix('thanos.compactor.retention.raw')}.")
        if downsampling and five and five < 10 * 86400:
            report(f"compactor 5m retention is below 10d with downsampling on: Thanos refuses to start"
                   f"{fix('thanos.compactor.retention.5m')}.")
        if raw and raw < floor:
            report(f"compactor raw retention is below the floor of {args.get_config().get('rawFloor', '30d')}"
                   f"{fix('thanos.compactor.retention.raw')}.")
        inf = float("inf")  # without downsampling no 5m or 1h block is made: their retention only purges old ones
        if downsampling and ((five or inf) < (raw or inf) or (hour or inf) < (five or inf)):
            report(f"compactor retention must satisfy 1h >= 5m >= raw (0d = forever){fix('thanos.compactor.retention')}.")


def validate_compactor(args, report):
    if args.resource_type == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler":
        target = ((args.props.get("spec") or {}).get("scaleTargetRef") or {}).get("name") or ""
        if "compact" in target:
            report(f"the compactor {target} is autoscaled: it must be a singleton.")
        return
    if args.resource_type not in WORKLOAD_TYPES:
        return
    for _, command, flags in thanos_containers(args.props):
        if command != "compact":
            continue
        if replicas(args.props) > 1:
            report(f"the compactor runs {replicas(args.props)} replicas: more than one compactor per bucket "
                   "produces overlapping blocks and halts compaction.")
        if args.resource_type.endswith(":Deployment") and \
                ((args.props.get("spec") or {}).get("strategy") or {}).get("type") != "Recreate":
            report("a compactor Deployment must use strategy Recreate so two never run at once.")
        delay = (flag(flags, "delete-delay") or ["48h"])[0]
        if seconds(delay) == 0:
            report(f"the compactor's --delete-delay is 0: blocks vanish while store gateways still serve them"
                   f"{fix('thanos.compactor.delete-delay')}.")
        claims = (args.props.get("spec") or {}).get("volumeClaimTemplates") or []
        volumes = pod_spec(args.props).get("volumes") or []
        if not claims and not any(v.get("persistentVolumeClaim") for v in volumes):
            report("the compactor's data directory is not on a persistent volume.")
        floor = args.get_config().get("minDataVolume", "100Gi")
        for claim in claims:
            size = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
            if size and _bytes(size) < _bytes(floor):
                report(f"the compactor's volume is {size}, below {floor}: compaction halts when it runs out of disk"
                       f"{fix('thanos.compactor.storage-size')}.")


def validate_block_producers(args, report):
    if args.resource_type not in WORKLOAD_TYPES:
        return
    sidecars = [flags for _, command, flags in thanos_containers(args.props) if command == "sidecar"]
    uploading = [f for f in sidecars if flag(f, "objstore.config-file") or flag(f, "objstore.config")]
    if uploading:
        for c in containers(args.props):
            if "prometheus" in (c.get("image") or "") and "thanos" not in (c.get("image") or ""):
                a = c.get("args") or []
                low, high = flag(a, "storage.tsdb.min-block-duration"), flag(a, "storage.tsdb.max-block-duration")
                if low != ["2h"] or high != ["2h"]:
                    report("Prometheus with an uploading sidecar needs --storage.tsdb.min-block-duration = "
                           "--storage.tsdb.max-block-duration = 2h (local compaction would lose or overlap blocks).")
                retention = flag(a, "storage.tsdb.retention.time")
                if retention and seconds(retention[0]) < 6 * 3600:
                    report(f"Prometheus keeps {retention[0]} locally: below 6h (three blocks) an object storage "
                           f"outage loses data{fix('thanos.prometheus.retention')}.")
    for _, command, flags in thanos_containers(args.props):
        if command == "rule" and replicas(args.props) > 1:
            labels = [v.split("=", 1)[0] for v in flag(flags, "label") if POD_NAME in v]
            if not labels:
                report("ruler replicas have no per-pod replica label (--label=<name>=\"$(POD_NAME)\"): their blocks overlap.")
            for label in labels:
                if label not in flag(flags, "alert.label-drop"):
                    report(f"ruler HA must drop its replica label from alerts: add --alert.label-drop={label}.")
        if command == "receive" and flag(flags, "receive.replication-factor"):
            factor = int(flag(flags, "receive.replication-factor")[0])
            if factor % 2 == 0:
                report(f"receive replication factor {factor} is even: use an odd factor"
                       f"{fix('thanos.receive.replication-factor')}.")


def remediate_label_drop(args):
    """Add the missing --alert.label-drop for the ruler's per-pod replica label."""
    if args.resource_type not in WORKLOAD_TYPES:
        return None
    props = plain(args.props)
    changed = False
    for c in pod_spec(props).get("containers") or []:
        found = container_flags(c)
        if not found or found[0] != "rule":
            continue
        flags = found[1]
        for label in [v.split("=", 1)[0] for v in flag(flags, "label") if POD_NAME in v]:
            if label not in flag(flags, "alert.label-drop"):
                c["args"] = [*(c.get("args") or []), f"--alert.label-drop={label}"]
                changed = True
    return props if changed else None


def validate_store_limits(args, report):
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


BATCH_TYPES = ("kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob")


def validate_batch_finishes(args, report):
    """A Job's pod must exit: `tools bucket replicate` and `compact` run forever unless told to stop (--single-run,
    no --wait), so the Job never completes and a CronJob piles up runs behind it (or, with concurrencyPolicy Forbid,
    never runs again)."""
    if args.resource_type not in BATCH_TYPES:
        return
    kind = args.resource_type.rsplit(":", 1)[-1]
    for c, command, flags in thanos_containers(args.props):
        if command == "tools bucket replicate" and not switch_on(flags, "single-run"):
            report(f"{kind} container {c.get('name')} runs thanos tools bucket replicate without --single-run: it "
                   "replicates forever, so the run never completes and the next ones pile up behind it.")
        if command == "compact" and switch_on(flags, "wait"):
            report(f"{kind} container {c.get('name')} runs thanos compact --wait: it never exits, so the run never "
                   "completes; run the compactor as a StatefulSet, or drop --wait.")


def _version_text(version: tuple[int, ...]) -> str:
    return "v" + ".".join(str(n) for n in version)


def validate_flags(args, report):
    if args.resource_type not in WORKLOAD_TYPES:
        return
    for c, command, flags in thanos_containers(args.props):
        known = _FLAGS.get(command)
        version = image_version(c.get("image") or "")
        if not known or version is None:
            continue  # an unpinned image is the hardening rule's finding; its flags cannot be judged
        for f in flags:
            name = f[2:].split("=", 1)[0] if f.startswith("--") else f
            base = name[3:] if name.startswith("no-") and name[3:] in known["negatable"] else name
            removed = REMOVED.get(command, {}).get(base)
            if version != PINNED:
                # Another release: only what holds across releases (a removed flag stays removed), never its table.
                if removed and version >= removed:
                    report(f"thanos {command} has no flag --{name} since {_version_text(removed)} "
                           f"(the image is {_version_text(version)}).")
            elif base not in known["flags"]:
                report(f"thanos {command} has no flag --{name} in v0.42.4.")
            elif base in known["deprecated"]:
                report(f"thanos {command} --{name} is deprecated in v0.42.4.")


def compactors_by_bucket(stack: Stack) -> dict[str, list[tuple[object, str | None]]]:
    """bucket -> [(compactor workload, its shard selector or None)] for every compactor whose objstore config the
    stack shows. A sharded compactor owns only the streams its relabel config (inline or a file) selects."""
    owners: dict[str, list[tuple[object, str | None]]] = {}
    for r in stack.resources:
        if r.resource_type not in WORKLOAD_TYPES:
            continue
        for c, command, flags in thanos_containers(r.props):
            if command != "compact":
                continue
            bucket = bucket_name(stack.objstore(r, c, flags)[0])
            if bucket:  # an inline selector is compared by value; a file's content is each workload's own here
                selector = flag(flags, "selector.relabel-config") + \
                    [f"{r.urn} {path}" for path in flag(flags, "selector.relabel-config-file")]
                owners.setdefault(bucket, []).append((r, "\n".join(selector) if selector else None))
    return owners


AZURE_PAUSED_PREFIX = "thanos-replication-paused/"
"""The prefix a paused Azure object replication rule of this program matches (no Thanos object has it)."""


def _short(bucket: str) -> str:
    """`TYPE:name/prefix` -> `name` (`account/container` on Azure)."""
    return bucket.split(":", 1)[-1].rsplit("/", 1)[0]


def replication_targets(stack: Stack, compacted: set[str]) -> set[str]:
    """Buckets (`bucket`, or `account/container` on Azure) a copy of a compacted stream flows into: enabled S3
    replication rules, Azure object replication policies, and `thanos tools bucket replicate` from a bucket that has
    a compactor (replicating an old bucket into a new one, a migration, is not a DR copy)."""
    targets = set()
    # The rules each destination account's policies show (the destination's own policy holds them as plain inputs;
    # its source repeats them with ids generated at apply).
    known_rules: dict[str, list] = {}
    for r in stack.resources:
        if r.resource_type == "azure-native:storage:ObjectReplicationPolicy":
            rules = known(lambda r=r: r.props.get("rules"))
            if not isinstance(rules, Unknown) and rules:
                known_rules.setdefault(str(r.props.get("destinationAccount") or ""), list(rules))
    for r in stack.resources:
        if r.resource_type == "aws:s3/bucketReplicationConfig:BucketReplicationConfig":
            targets |= {((rule.get("destination") or {}).get("bucket") or "").rsplit(":", 1)[-1]
                        for rule in r.props.get("rules") or [] if rule.get("status") != "Disabled"}
        elif r.resource_type == "azure-native:storage:ObjectReplicationPolicy":
            account = str(r.props.get("destinationAccount") or "").rsplit("/", 1)[-1]
            rules = known(lambda r=r: r.props.get("rules"))
            if isinstance(rules, Unknown):  # a source policy repeats the destination's generated rule ids
                rules = known_rules.get(str(r.props.get("destinationAccount") or ""))
                if rules is None:
                    targets.add(f"{account}/*")  # every container of the account, until the rules are known
                    continue
            targets |= {f"{account}/{rule.get('destinationContainer')}" for rule in rules or []
                        if AZURE_PAUSED_PREFIX not in list((rule.get("filters") or {}).get("prefixMatch") or [])}
        elif r.resource_type in WORKLOAD_TYPES:
            for c, command, flags in thanos_containers(r.props):
                if command == "tools bucket replicate":
                    source = _short(bucket_name(stack.objstore(r, c, flags)[0]))
                    target = _short(bucket_name(stack.objstore(r, c, flags, "objstore-to")[0]))
                    if target and source != target and source in compacted:
                        targets.add(target)
    return targets


def validate_one_compactor_per_bucket(args, report):
    stack = Stack(args.resources)
    owners = compactors_by_bucket(stack)
    for bucket, found in sorted(owners.items()):
        unsharded = [r.urn for r, selector in found if selector is None]
        by_selector: dict[str, list] = {}
        for r, selector in found:
            if selector is not None:
                by_selector.setdefault(selector, []).append(r.urn)
        # Compactors with one selector own the same streams: as many owners of them as of an unsharded bucket.
        for same in ([unsharded] if len(unsharded) > 1 else []) + [u for u in by_selector.values() if len(u) > 1]:
            report(f"{len(same)} compactors write to bucket {bucket}: exactly one compactor may own a bucket"
                   f"{fix('regions[].compactor-cluster')}.", same[1])
        if len(unsharded) == 1 and len(found) > 1:
            report(f"an unsharded compactor writes to bucket {bucket} beside {len(found) - 1} sharded one(s): it "
                   "compacts the streams they own as well (overlapping blocks, halted compaction).", unsharded[0])
    replicas_of = replication_targets(stack, {_short(bucket) for bucket in owners})
    for bucket, found in sorted(owners.items()):
        name = _short(bucket)
        if name in replicas_of or f"{name.split('/', 1)[0]}/*" in replicas_of:
            report(f"a compactor writes to {name}, a replication destination: it would compact the replicated "
                   "streams a second time (overlaps); DR copies are read-only.", found[0][0].urn)


def _uploads(flags: list[str]) -> bool:
    return bool(flag(flags, "objstore.config-file") or flag(flags, "objstore.config"))


def _external_labels_of_config(text) -> dict | None:
    document = parsed(text) if isinstance(text, str) else None
    if not isinstance(document, dict) or not isinstance(document.get("global"), dict):
        return None
    return document["global"].get("external_labels") or {}


def _producer_replica_labels(resource) -> set[str]:
    """Replica labels a producer stamps on its blocks (per-pod values), from any of the shapes producers take."""
    labels = set()
    props = resource.props
    if resource.resource_type == "kubernetes:core/v1:ConfigMap":
        for text in (props.get("data") or {}).values():
            labels |= {k for k, v in (_external_labels_of_config(text) or {}).items() if "$" in str(v)}
    elif resource.resource_type in WORKLOAD_TYPES:
        for _, command, flags in thanos_containers(props):
            if command in ("rule", "receive"):
                labels |= {v.split("=", 1)[0] for v in flag(flags, "label") if "$(" in v}
    elif resource.resource_type == PROMETHEUS_CR and (props.get("spec") or {}).get("thanos") is not None:
        # prometheus-operator stamps each pod's name under replicaExternalLabelName (default prometheus_replica).
        name = (props.get("spec") or {}).get("replicaExternalLabelName", "prometheus_replica")
        labels |= {name} if name else set()
    elif resource.resource_type == THANOS_RULER_CR:
        labels.add("thanos_ruler_replica")  # the operator's per-pod label of every ThanosRuler
    return labels


def validate_replica_labels(args, report):
    # Scoped by cluster, not namespace: producers (kube-prometheus in monitoring) and query often live apart.
    producers: dict[str, set[str]] = {}
    queries = []
    for r in args.resources:
        producers.setdefault(provider_of(r), set()).update(_producer_replica_labels(r))
        if r.resource_type in WORKLOAD_TYPES:
            for _, command, flags in thanos_containers(r.props):
                if command == "query":
                    queries.append((r, set(flag(flags, "query.replica-label"))))
    for query, labels in queries:
        missing = sorted(producers.get(provider_of(query), set()) - labels)
        if missing:
            report(f"query does not deduplicate on {', '.join(missing)}: add --query.replica-label for each, "
                   "or every replica's series shows up twice.", query.urn)
    validate_offline_deduplication(args, report)


def _replica_label_sources(resources) -> dict[str, set[str]]:
    """replica label -> the kinds of producer that stamp it anywhere in the stack ("receive" or "other")."""
    sources: dict[str, set[str]] = {}
    for r in resources:
        kind = "receive" if r.resource_type in WORKLOAD_TYPES and any(
            command == "receive" for _, command, _ in thanos_containers(r.props)) else "other"
        for label in _producer_replica_labels(r):
            sources.setdefault(label, set()).add(kind)
    return sources


def validate_offline_deduplication(args, report):
    """The compactor's one-to-one merger (the default --deduplication.func) drops a replica's block only when it is
    identical sample for sample: true of receive replicas (one write, replicated), never of Prometheus HA pairs or
    rulers, which scrape and evaluate on their own clocks. For those, only penalty deduplicates."""
    sources = _replica_label_sources(args.resources)
    for r in args.resources:
        if r.resource_type not in WORKLOAD_TYPES:
            continue
        name = (r.props.get("metadata") or {}).get("name")
        for _, command, flags in thanos_containers(r.props):
            if command != "compact" or (flag(flags, "deduplication.func") or [""])[-1] == "penalty":
                continue
            labels = sorted({x.strip() for v in flag(flags, "deduplication.replica-label") for x in v.split(",")} - {""})
            # A label only receive stamps is deduplicated right; one the stack does not show stamped (Prometheus
            # deployed elsewhere) is most likely a Prometheus replica label.
            unsafe = [label for label in labels if sources.get(label, {"other"}) != {"receive"}]
            if unsafe:
                report(f"{name}: the compactor deduplicates on {', '.join(unsafe)} with the one-to-one function: "
                       "Prometheus HA replicas (and rulers) scrape on their own clocks, so their blocks never match "
                       "sample for sample and both copies stay, merged into one block that doubles every series; set "
                       "--deduplication.func=penalty (one-to-one is right only for receive replicas).", r.urn)


def _prometheus_external_labels(stack: Stack, workload) -> dict | None:
    """external_labels of the prometheus.yml a Prometheus workload mounts, or None when it mounts none we can see."""
    for volume in pod_spec(workload.props).get("volumes") or []:
        config_map = stack.get(workload, "ConfigMap", (volume.get("configMap") or {}).get("name") or "")
        if config_map is not None:
            labels = _external_labels_of_config((config_map.props.get("data") or {}).get("prometheus.yml"))
            if labels is not None:
                return labels
    return None


def producers(stack: Stack) -> list[tuple[object, str, dict[str, str]]]:
    """(resource, bucket, external labels) of every block producer whose bucket the stack shows."""
    found = []
    for r in stack.resources:
        if r.resource_type in WORKLOAD_TYPES:
            for c, command, flags in thanos_containers(r.props):
                if command not in ("sidecar", "rule", "receive") or not _uploads(flags):
                    continue
                bucket = bucket_name(stack.objstore(r, c, flags)[0])
                if command == "sidecar":
                    labels = _prometheus_external_labels(stack, r) or {}
                else:
                    labels = dict(v.split("=", 1) for v in flag(flags, "label") if "=" in v)
                if bucket:
                    found.append((r, bucket, labels))
        elif r.resource_type == PROMETHEUS_CR and ((r.props.get("spec") or {}).get("thanos") or {}).get(
                "objectStorageConfig"):
            spec = r.props.get("spec") or {}
            ref = spec["thanos"]["objectStorageConfig"]
            secret = stack.get(r, "Secret", ref.get("name") or "")
            bucket = bucket_name(objstore_document(secret_text(secret.props, ref.get("key") or ""))) if secret else ""
            if bucket:
                labels = dict(spec.get("externalLabels") or {})
                replica = spec.get("replicaExternalLabelName", "prometheus_replica")
                if replica:
                    labels[replica] = POD_NAME
                found.append((r, bucket, labels))
    return found


def validate_external_labels(args, report):
    stack = Stack(args.resources)
    for r in args.resources:
        if r.resource_type not in WORKLOAD_TYPES:
            continue
        name = (r.props.get("metadata") or {}).get("name")
        for _, command, flags in thanos_containers(r.props):
            per_pod = [v for v in flag(flags, "label") if POD_NAME in v]
            if command in ("rule", "receive") and _uploads(flags) and not flag(flags, "label"):
                report(f"{name}: thanos {command} uploads blocks without --label external labels.", r.urn)
            elif command in ("rule", "receive") and _uploads(flags) and replicas(r.props) > 1 and not per_pod:
                report(f"{name}: {replicas(r.props)} {command} replicas upload blocks with identical labels "
                       "(add a per-pod replica label).", r.urn)
            if command == "sidecar" and _uploads(flags):
                labels = _prometheus_external_labels(stack, r)
                if labels is not None and not labels:
                    report(f"{name}: Prometheus uploads blocks without external labels.", r.urn)
                elif labels and replicas(r.props) > 1 and not any("$" in str(v) for v in labels.values()):
                    report(f"{name}: {replicas(r.props)} Prometheus replicas share one external label set "
                           "(add a per-pod replica label such as prometheus_replica: ${POD_NAME}).", r.urn)
    # Two producers writing one bucket under the same labels write one stream from two sources: overlapping blocks.
    # A per-pod label keeps pods apart only while pod names differ: same-named workloads (in two clusters) collide.
    seen: dict[tuple, object] = {}
    for r, bucket, labels in producers(stack):
        per_pod = any(POD_NAME in str(v) for v in labels.values())
        key = (bucket, frozenset(labels.items()), (r.props.get("metadata") or {}).get("name") if per_pod else None)
        if key in seen and seen[key] is not r:
            other = (seen[key].props.get("metadata") or {}).get("name")
            report(f"{(r.props.get('metadata') or {}).get('name')} and {other} upload to {bucket} with the same "
                   f"external labels {dict(sorted(labels.items()))}: their blocks overlap and compaction halts.",
                   r.urn)
        seen.setdefault(key, r)


def _relative(value: str | None) -> float | None:
    """`-2w` -> seconds back from now; None for unbounded; NaN for absolute times (not judged)."""
    if not value:
        return None
    return seconds(value[1:]) if value.startswith("-") else float("nan")


def validate_store_coverage(args, report):
    groups: dict[str, dict[tuple, list[tuple[int, int]]]] = {}
    for r in args.resources:
        if r.resource_type not in WORKLOAD_TYPES:
            continue
        for _, command, flags in thanos_containers(r.props):
            if command != "store":
                continue
            window = (_relative((flag(flags, "min-time") or [None])[0]), _relative((flag(flags, "max-time") or [None])[0]))
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


def validate_receive_ring(args, report):
    spare = int(args.get_config().get("minSpareIngestors", 1))
    rings: dict[str, int] = {}
    for r in args.resources:
        if r.resource_type == "kubernetes:core/v1:ConfigMap" and "hashrings.json" in (r.props.get("data") or {}):
            try:
                ring = json.loads(r.props["data"]["hashrings.json"])
            except (TypeError, ValueError):
                continue
            rings[cluster_of(r)] = min((len(h.get("endpoints") or []) for h in ring), default=0)
    for r in args.resources:
        if r.resource_type not in WORKLOAD_TYPES:
            continue
        for _, command, flags in thanos_containers(r.props):
            factor = flag(flags, "receive.replication-factor")
            endpoints = rings.get(cluster_of(r))
            if command != "receive" or not factor or endpoints is None:
                continue
            if int(factor[0]) > endpoints:
                report(f"receive replication factor {factor[0]} exceeds the {endpoints} hashring endpoints: "
                       f"every write fails{fix('thanos.receive.replication-factor')}.", r.urn)
            elif endpoints < int(factor[0]) + spare:
                report(f"receive runs {endpoints} ingestor(s) for replication factor {factor[0]}: below "
                       f"{int(factor[0]) + spare} every ingestor holds every series, so a rollout leaves no room for "
                       f"one more failure before writes lose their quorum{fix('thanos.receive.ingestors')}.",
                       r.urn)


POLICIES = [
    StackValidationPolicy(
        name="thanos-compactor-one-per-bucket", enforcement_level=EnforcementLevel.MANDATORY,
        description="Exactly one unsharded compactor per bucket across the stack.",
        validate=deduplicated(validate_one_compactor_per_bucket)),
    StackValidationPolicy(
        name="thanos-producers-replica-labels", enforcement_level=EnforcementLevel.MANDATORY,
        description="Every replica label a block producer uses is a --query.replica-label of every query; the "
                    "compactor deduplicates Prometheus and ruler replicas only with the penalty function.",
        validate=deduplicated(validate_replica_labels)),
    StackValidationPolicy(
        name="thanos-producers-external-labels", enforcement_level=EnforcementLevel.MANDATORY,
        description="Every block producer has external labels, with a per-pod replica label when it has replicas.",
        validate=deduplicated(validate_external_labels)),
    StackValidationPolicy(
        name="thanos-store-shards-cover", enforcement_level=EnforcementLevel.MANDATORY,
        description="Store gateway hash and time shards together serve every block, with no gap.",
        validate=deduplicated(validate_store_coverage)),
    StackValidationPolicy(
        name="thanos-producers-receive-ring", enforcement_level=EnforcementLevel.MANDATORY,
        description="The receive replication factor never exceeds the hashring's endpoints, with spare ingestors.",
        validate=deduplicated(validate_receive_ring),
        config_schema=PolicyConfigSchema(properties={"minSpareIngestors": {"type": "integer", "default": 1}})),
    ResourceValidationPolicy(
        name="thanos-retention-minimums", enforcement_level=EnforcementLevel.MANDATORY,
        description="Compactor retention meets Thanos' downsampling minimums, the raw floor, and 1h >= 5m >= raw.",
        validate=deduplicated(validate_retention),
        config_schema=PolicyConfigSchema(properties={"rawFloor": {"type": "string", "default": "30d"}})),
    ResourceValidationPolicy(
        name="thanos-compactor-singleton", enforcement_level=EnforcementLevel.MANDATORY,
        description="The compactor never runs more than one replica, is never autoscaled and keeps its data on a PVC.",
        validate=deduplicated(validate_compactor),
        config_schema=PolicyConfigSchema(properties={"minDataVolume": {"type": "string", "default": "100Gi"}})),
    ResourceValidationPolicy(
        name="thanos-producers-blocks-and-labels", enforcement_level=EnforcementLevel.MANDATORY,
        description="Uploading Prometheus uses 2h blocks; ruler HA labels and drops its replica label; receive RF is odd.",
        validate=deduplicated(validate_block_producers), remediate=remediate_label_drop),
    ResourceValidationPolicy(
        name="thanos-store-limits", enforcement_level=EnforcementLevel.MANDATORY,
        description="The store gateway has a memory limit and per-request series and sample limits.",
        validate=deduplicated(validate_store_limits)),
    ResourceValidationPolicy(
        name="thanos-batch-finishes", enforcement_level=EnforcementLevel.MANDATORY,
        description="A Job or CronJob running Thanos exits: bucket replicate with --single-run, compact without --wait.",
        validate=deduplicated(validate_batch_finishes)),
    ResourceValidationPolicy(
        name="thanos-flags-known", enforcement_level=EnforcementLevel.MANDATORY,
        description="Every Thanos flag exists in the pinned v0.42.4 release and is not deprecated.",
        validate=deduplicated(validate_flags)),
]
