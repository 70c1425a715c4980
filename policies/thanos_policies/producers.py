"""Block producers (Prometheus with a sidecar, rulers, receive): 2h blocks, external labels that keep their blocks
apart, replica labels every query deduplicates on, and a receive hashring with room for one more failure."""

import json

from pulumi_policy import PolicyResource

from ._labels import _external_labels_of_config, _producer_replica_labels, _replica_label_sources
from ._register import resource_policy, stack_policy
from ._workloads import (POD_NAME, PROMETHEUS_CR, WORKLOAD_TYPES, Stack, bucket_name, cluster_of, container_flags,
                         containers, fix, flag, objstore_document, plain, pod_spec, provider_of, replicas, secret_text,
                         seconds, thanos_containers)


def validate_block_producers(args, report):
    """Refuses producers whose blocks overlap or vanish: non-2h Prometheus blocks, unlabelled ruler HA, even receive RF."""
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


def _uploads(flags: list[str]) -> bool:
    return bool(flag(flags, "objstore.config-file") or flag(flags, "objstore.config"))


def validate_replica_labels(args, report):
    """Refuses a query missing a replica label its cluster's producers stamp: every replica's series shows up twice."""
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


def producers(stack: Stack) -> list[tuple[PolicyResource, str, dict[str, str]]]:
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
    """Refuses producers without external labels or sharing a label set on a bucket: overlapping blocks halt compaction."""
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
    seen: dict[tuple, PolicyResource] = {}
    for r, bucket, labels in producers(stack):
        pod_named = any(POD_NAME in str(v) for v in labels.values())
        key = (bucket, frozenset(labels.items()), (r.props.get("metadata") or {}).get("name") if pod_named else None)
        if key in seen and seen[key] is not r:
            other = (seen[key].props.get("metadata") or {}).get("name")
            report(f"{(r.props.get('metadata') or {}).get('name')} and {other} upload to {bucket} with the same "
                   f"external labels {dict(sorted(labels.items()))}: their blocks overlap and compaction halts.",
                   r.urn)
        seen.setdefault(key, r)


def validate_receive_ring(args, report):
    """Refuses a receive replication factor above the hashring's endpoints or with no spare ingestor: writes fail."""
    spare = int(args.get_config().get("minSpareIngestors", 1))
    rings: dict[str, tuple[int, str]] = {}  # per cluster its smallest ring: endpoints, and its name if a tenant's own
    for r in args.resources:
        if r.resource_type == "kubernetes:core/v1:ConfigMap" and "hashrings.json" in (r.props.get("data") or {}):
            try:
                ring = json.loads(r.props["data"]["hashrings.json"])
            except (TypeError, ValueError):
                continue
            rings[cluster_of(r)] = min(((len(h.get("endpoints") or []),
                                         f" of hashring {h.get('hashring')}" if h.get("tenants") else "")
                                        for h in ring if isinstance(h, dict)), default=(0, ""))
    for r in args.resources:
        if r.resource_type not in WORKLOAD_TYPES:
            continue
        for _, command, flags in thanos_containers(r.props):
            factor = flag(flags, "receive.replication-factor")
            if command != "receive" or not factor or cluster_of(r) not in rings:
                continue
            endpoints, which = rings[cluster_of(r)]
            # A tenant's own ring (this program's tenancy.tenants[].dedicated-ingestors) is sized by its own key.
            count_key = "tenancy.tenants[].dedicated-ingestors" if which else "thanos.receive.ingestors"
            if int(factor[0]) > endpoints:
                report(f"receive replication factor {factor[0]} exceeds the {endpoints} hashring endpoints{which}: "
                       f"every write fails{fix(count_key if which else 'thanos.receive.replication-factor')}.", r.urn)
            elif endpoints < int(factor[0]) + spare:
                report(f"receive runs {endpoints} ingestor(s){which} for replication factor {factor[0]}: below "
                       f"{int(factor[0]) + spare} every ingestor holds every series, so a rollout leaves no room for "
                       f"one more failure before writes lose their quorum{fix(count_key)}.",
                       r.urn)


POLICIES = [
    stack_policy("thanos-producers-replica-labels", "Every replica label a block producer uses is a --query.replica-label "
                 "of every query; the compactor deduplicates Prometheus and ruler replicas only with the penalty function.",
                 validate_replica_labels),
    stack_policy("thanos-producers-external-labels", "Every block producer has external labels, with a per-pod replica "
                 "label when it has replicas.", validate_external_labels),
    stack_policy("thanos-producers-receive-ring", "The receive replication factor never exceeds the hashring's endpoints, "
                 "with spare ingestors.", validate_receive_ring,
                 config={"minSpareIngestors": {"type": "integer", "default": 1}}),
    resource_policy("thanos-producers-blocks-and-labels", "Uploading Prometheus uses 2h blocks; ruler HA labels and drops "
                    "its replica label; receive RF is odd.", validate_block_producers, remediate=remediate_label_drop),
]
