"""HA: spread multi-replica Thanos workloads over nodes and zones, keep enough replicas, allow drains."""

from ._register import resource_policy, stack_policy
from ._workloads import (PROMETHEUS_CR, THANOS_RULER_CR, WORKLOAD_TYPES, Stack, _pod_labels, _selects, component, fix,
                         flag, pod_spec, replicas, thanos_containers)


HA_COMPONENTS = ("query", "query-frontend", "store", "rule", "receive", "prometheus", "memcached")
HOST, ZONE = "kubernetes.io/hostname", "topology.kubernetes.io/zone"
REPLICAS_KEY = {"query": "thanos.query.replicas", "query-frontend": "thanos.query-frontend.replicas",
                "store": "thanos.store.replicas", "rule": "thanos.ruler.replicas", "receive": "thanos.receive.ingestors",
                "prometheus": "thanos.prometheus.replicas", "memcached": "thanos.caches.<pool>.replicas"}


HA_TYPES = (*WORKLOAD_TYPES, PROMETHEUS_CR, THANOS_RULER_CR)
GLOBAL_INSTANCE = "global"
"""The `app.kubernetes.io/instance` label of this project's global tier (the objects in the global view's namespace):
its replica counts are keys under global-view, not thanos."""
GLOBAL_REPLICAS_KEY = {"thanos.query.replicas": "global-view.query.replicas",
                       "thanos.query-frontend.replicas": "global-view.query-frontend.replicas",
                       "thanos.ruler.replicas": "global-view.ruler.replicas",
                       "thanos.caches.query-results.replicas": "global-view.cache.replicas"}


def _is_ha_candidate(props, resource_type: str = "") -> str:
    if resource_type == PROMETHEUS_CR:
        return "prometheus" if (props.get("spec") or {}).get("thanos") is not None else ""
    if resource_type == THANOS_RULER_CR:
        return "rule"
    name = component(props)
    if name in HA_COMPONENTS:
        return name
    images = [c.get("image") or "" for c in (pod_spec(props).get("containers") or [])]
    return "memcached" if any("memcached" in i for i in images) else ""


def _spreads_hosts(pod) -> bool:
    affinity = ((pod.get("affinity") or {}).get("podAntiAffinity") or {})
    hard = [t for t in affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or [] if t.get("topologyKey") == HOST]
    spread = [t for t in pod.get("topologySpreadConstraints") or []
              if t.get("topologyKey") == HOST and t.get("whenUnsatisfiable") == "DoNotSchedule"]
    return bool(hard or spread)


def _spreads_zones(pod) -> bool:
    affinity = ((pod.get("affinity") or {}).get("podAntiAffinity") or {})
    terms = [t.get("topologyKey") for t in affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or []]
    terms += [(t.get("podAffinityTerm") or {}).get("topologyKey")
              for t in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
    terms += [t.get("topologyKey") for t in pod.get("topologySpreadConstraints") or []]
    return ZONE in terms


def _pod(resource_type: str, props) -> dict:
    """The pod spec, or for an operator CR the fields it copies into its pods (affinity, spread)."""
    return (props.get("spec") or {}) if resource_type in (PROMETHEUS_CR, THANOS_RULER_CR) else pod_spec(props)


def validate_anti_affinity(args, report):
    """Refuses multi-replica Thanos workloads without hard node anti-affinity and a zone spread: one failure takes all."""
    if args.resource_type not in HA_TYPES or replicas(args.props, args.resource_type) < 2:
        return
    name = _is_ha_candidate(args.props, args.resource_type)
    if not name:
        return
    pod = _pod(args.resource_type, args.props)
    if not _spreads_hosts(pod):
        report(f"{name} runs {replicas(args.props, args.resource_type)} replicas without hard pod anti-affinity (or a DoNotSchedule "
               f"spread) on {HOST}: one node failure can take every replica down{fix('thanos.node-spread')}.")
    if not _spreads_zones(pod):
        report(f"{name} runs {replicas(args.props, args.resource_type)} replicas without a spread over {ZONE}"
               f"{fix('thanos.zone-spread')}.")


def validate_min_replicas(args, report):
    """Refuses HA components with fewer replicas than the minimum (2 by default): losing one pod is an outage."""
    if args.resource_type not in HA_TYPES:
        return
    name = _is_ha_candidate(args.props, args.resource_type)
    minimum = int(args.get_config().get("minReplicas", 2))
    if name and replicas(args.props, args.resource_type) < minimum:
        report(f"{name} has {replicas(args.props, args.resource_type)} replica(s); at least {minimum} are required"
               f"{fix(_replicas_key(name, args.props))}.")


def _replicas_key(name: str, props) -> str:
    """The config key of a component's replica count (receive routers and memcached pools have their own; the global
    tier's are under global-view, its enforcing query's under tenancy, the query in front of its ruler under
    global-view.ruler)."""
    labels = (props.get("metadata") or {}).get("labels") or {}
    if labels.get("app.kubernetes.io/component") == "query-tenants":
        return "tenancy.query.replicas"
    if labels.get("app.kubernetes.io/component") == "query-rules":
        return "global-view.ruler.query.replicas"
    key = _leaf_replicas_key(name, props)
    return GLOBAL_REPLICAS_KEY.get(key, key) if labels.get("app.kubernetes.io/instance") == GLOBAL_INSTANCE else key


def _leaf_replicas_key(name: str, props) -> str:
    flags = [f for _, _, fl in thanos_containers(props) for f in fl]
    if name == "receive" and flag(flags, "receive.hashrings-file") and not flag(flags, "receive.local-endpoint"):
        return "thanos.receive.router-replicas"
    pool = ((props.get("metadata") or {}).get("name") or "").removeprefix("thanos-memcached-")
    if name == "memcached" and pool in ("index", "bucket", "query-results"):
        return f"thanos.caches.{pool}.replicas"
    selector = ((props.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if name == "receive" and "thanos.io/hashring" in selector:  # this program's ingestors of a tenant's own
        return "tenancy.tenants[].dedicated-ingestors"
    return REPLICAS_KEY[name]


def validate_pdb(args, report):
    """Refuses multi-replica Thanos workloads with no PodDisruptionBudget, or one allowing no drain: drains take all or block."""
    pdbs = [r for r in args.resources if r.resource_type == "kubernetes:policy/v1:PodDisruptionBudget"]
    for r in args.resources:
        if r.resource_type not in HA_TYPES or replicas(r.props, r.resource_type) < 2 or not _is_ha_candidate(r.props, r.resource_type):
            continue
        labels = _pod_labels(r)
        namespace = (r.props.get("metadata") or {}).get("namespace")
        matching = [p for p in pdbs if (p.props.get("metadata") or {}).get("namespace") == namespace
                    and p.provider and r.provider and p.provider.urn == r.provider.urn
                    and _selects(((p.props.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}, labels)]
        name = (r.props.get("metadata") or {}).get("name")
        if not matching:
            report(f"{name} has {replicas(r.props, r.resource_type)} replicas and no PodDisruptionBudget selecting its pods.", r.urn)
            continue
        spec = matching[0].props.get("spec") or {}
        if spec.get("maxUnavailable") == 0 or (spec.get("minAvailable") is not None
                                               and int(spec["minAvailable"]) >= replicas(r.props, r.resource_type)):
            report(f"the PodDisruptionBudget of {name} allows no disruption: it blocks every node drain.", r.urn)


SINGLE_NODE_MODES = ("ReadWriteOnce", "ReadWriteOncePod")


def validate_claims(args, report):
    """Replicas of a Deployment (or a DaemonSet's pods) mounting one ReadWriteOnce claim: the volume attaches to one
    node (one pod, for ReadWriteOncePod), so every other replica hangs in ContainerCreating; on one node they all open
    the same TSDB or cache directory. Each replica needs its own claim (a StatefulSet's volumeClaimTemplates)."""
    stack = Stack(args.resources)
    for r in args.resources:
        # A StatefulSet's volumeClaimTemplates are per replica; a claim in its pod's volumes is shared like any other.
        if r.resource_type not in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet",
                                   "kubernetes:apps/v1:DaemonSet") or not any(True for _ in thanos_containers(r.props)):
            continue
        daemon = r.resource_type.endswith(":DaemonSet")
        if not daemon and replicas(r.props) < 2:
            continue
        pods = "its pods (one per node)" if daemon else f"{replicas(r.props)} replicas"
        metadata = r.props.get("metadata") or {}
        for volume in pod_spec(r.props).get("volumes") or []:
            name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            claim = stack.get(r, "PersistentVolumeClaim", name) if name else None
            modes = list(((claim.props.get("spec") or {}).get("accessModes") or []) if claim else [])
            single = [m for m in modes if m in SINGLE_NODE_MODES]
            if name and single:
                report(f"{metadata.get('name')}: {pods} share the {single[0]} claim {name}: it attaches to one "
                       "node, so the other replicas never start (or, on one node, open the same data directory); "
                       "give each replica its own claim (a StatefulSet's volumeClaimTemplates).", r.urn)


POLICIES = [
    resource_policy("thanos-ha-anti-affinity", "Multi-replica Thanos workloads have hard anti-affinity on nodes and a "
                    "spread over zones.", validate_anti_affinity),
    resource_policy("thanos-ha-min-replicas", "Query, query-frontend, store, ruler, receive, Prometheus and memcached run "
                    "enough replicas.", validate_min_replicas, config={"minReplicas": {"type": "integer", "default": 2}}),
    stack_policy("thanos-ha-pdb", "Every multi-replica Thanos workload has a PodDisruptionBudget that selects it and "
                 "allows a drain.", validate_pdb),
    stack_policy("thanos-ha-claims", "Replicas of a Thanos workload never share one ReadWriteOnce claim.", validate_claims),
]
