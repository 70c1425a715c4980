"""The external and replica labels block producers stamp on their blocks, in any of the shapes producers take."""

from ._workloads import PROMETHEUS_CR, THANOS_RULER_CR, WORKLOAD_TYPES, flag, parsed, thanos_containers


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


def _replica_label_sources(resources) -> dict[str, set[str]]:
    """replica label -> the kinds of producer that stamp it anywhere in the stack ("receive" or "other")."""
    sources: dict[str, set[str]] = {}
    for r in resources:
        kind = "receive" if r.resource_type in WORKLOAD_TYPES and any(
            command == "receive" for _, command, _ in thanos_containers(r.props)) else "other"
        for label in _producer_replica_labels(r):
            sources.setdefault(label, set()).add(kind)
    return sources
