"""Hashring changes against a baseline: for each receive hashring (a ConfigMap holding `hashrings.json`), which
endpoints join or leave it, and whether the step is safe.

The program orders the ring after the ingestor StatefulSets and the routers after the ring (components/thanos/
receive.py), so a ring that grows is published once its new pods are ready. The same order makes a ring that loses
endpoints unsafe when their pods go in the same `pulumi up`: the StatefulSet scales down first, and until the routers
restart on the new ring their writes to the gone pods miss quorum. Such a step is refused (a DestructiveEdit named
after the ConfigMap, which `allow-destructive` can list); shrinking takes two steps, `draining` first.

A hashrings.json may hold several rings (a tenant's own before the default one): each ring is explained on its own,
its pods judged by their own StatefulSets. A ring that goes whole (a tenant given back to the default ring) is safe:
its tenant's writes move to the default ring when the routers restart, and Pulumi deletes the removed StatefulSets
only at the end of the step, after that."""

import json
from dataclasses import dataclass
from typing import Any

from .destructive import DestructiveEdit
from .engine import Plan, Resource

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
RING_KEY = "hashrings.json"
DEFAULT_RING = "default"


@dataclass
class RingChange:
    """One hashring whose endpoints differ from the baseline's."""

    name: str
    """The ConfigMap's logical name."""
    urn: str
    where: str
    """namespace/name of the ConfigMap."""
    joined: list[str]
    """Pods of the endpoints the plan's ring adds."""
    left: list[str]
    """Pods of the endpoints it drops."""
    going: list[str]
    """Pods the baseline's ring lists that this step removes (their StatefulSet scales below them or goes)."""
    sizes: tuple[int, int]
    """Endpoints before and after."""
    ingestors: tuple[int, int]
    """Replicas of the ring's StatefulSets before and after (the `ingestors` key)."""
    ring: str = DEFAULT_RING
    """The ring's name in hashrings.json: `default`, or the tenant a dedicated ring serves."""

    @property
    def safe(self) -> bool:
        return not self.going

    @property
    def keys(self) -> tuple[str, str]:
        """The config keys of the ring's ingestors and of its draining ones."""
        if self.ring == DEFAULT_RING:
            return "ingestors", "draining"
        return f"tenant {self.ring}'s dedicated-ingestors", "dedicated-draining"

    def line(self) -> str:
        """What happens to the ring, in a line or two."""
        before, after = self.sizes
        count, draining = self.keys
        change = ", ".join([*(f"+{p}" for p in self.joined), *(f"-{p}" for p in self.left)])
        ring = "" if self.ring == DEFAULT_RING else f" ring {self.ring}"
        head = f"  {self.name}: hashring {self.where}{ring} {before} -> {after} endpoints ({change})"
        if self.going:
            return f"{head}: refused (above), their pods go in the same step"
        if self.joined and not self.left:
            moved = f"; tenant {self.ring}'s writes move to them then" if not before and ring else ""
            return (f"{head}: safe, they join once their pods are ready (the ring waits for the StatefulSet rollout, "
                    f"then the routers restart on it){moved}")
        if self.left and not after:
            return (f"{head}: safe, tenant {self.ring}'s writes move to the default ring when the routers restart, "
                    "before its StatefulSets are deleted at the end of the step (each ingestor uploads its head as it "
                    "stops; their volumes stay)")
        if self.left:
            return (f"{head}: safe, the routers restart on the new ring while those pods keep running; next step: "
                    f"{count}: {self.ingestors[1] - len(self.left)} with {draining}: 0")
        return f"{head}: safe"

    def refusal(self) -> tuple[str, str]:
        """What goes wrong, and the two steps that do it safely."""
        (before, after), (old, new) = self.sizes, self.ingestors
        count, draining = self.keys
        where = "thanos.receive." if self.ring == DEFAULT_RING else ""
        ring = "" if self.ring == DEFAULT_RING else f" ring {self.ring}"
        return (f"hashring {self.where}{ring} {before} -> {after} endpoints: {', '.join(self.going)} leave it in the "
                "same step as their pods go (the StatefulSet scales down before the routers restart on the new ring, "
                "so writes of their share miss quorum meanwhile)",
                f"Shrink in two steps: {where}{draining}: {old - new} with {count}: {old}, pulumi up (the "
                f"ring drops them, their pods keep running); then {count}: {new} with {draining}: 0, pulumi up")

    def edit(self, allowed: list[str]) -> DestructiveEdit:
        """The refusal as a destructive edit (exit 1 unless `allow-destructive` names the ConfigMap)."""
        return DestructiveEdit(self.name, self.urn, *self.refusal(), self.name in allowed)


def ring_pods(text: str | None) -> list[str]:
    """The pod of each endpoint of every ring in a hashrings.json (`<pod>.<service>.<namespace>.svc...:port`)."""
    return list(dict.fromkeys(pod for pods in ring_members(text).values() for pod in pods))


def ring_members(text: str | None) -> dict[str, list[str]]:
    """Each ring of a hashrings.json (by its `hashring` name, `default` when it has none) and the pods of its
    endpoints, in order."""
    try:
        rings = json.loads(text or "[]")
    except ValueError:
        return {}
    members: dict[str, list[str]] = {}
    for ring in rings if isinstance(rings, list) else []:
        if not isinstance(ring, dict):
            continue
        pods = members.setdefault(str(ring.get("hashring") or DEFAULT_RING), [])
        for endpoint in ring.get("endpoints") or []:
            address = endpoint.get("address", "") if isinstance(endpoint, dict) else str(endpoint)
            pod = address.split(":")[0].split(".")[0]
            if pod and pod not in pods:
                pods.append(pod)
    return members


def _replicas(inputs: dict[str, Any]) -> int:
    replicas = (inputs.get("spec") or {}).get("replicas")
    return replicas if isinstance(replicas, int) else 1


def ring_changes(plan: Plan, baseline: dict[str, tuple[str, dict[str, Any]]]) -> list[RingChange]:
    """Every hashring of the plan whose endpoints differ from the same ConfigMap in `baseline` (aliases followed)."""
    changes = []
    for resource in plan.resources:
        text = ((resource.inputs.get("data") or {}) if resource.type == CONFIG_MAP else {}).get(RING_KEY)
        if text is None:
            continue
        old = next((baseline[u] for u in (resource.urn, *resource.aliases) if u in baseline), None)
        if old is None or old[0] != CONFIG_MAP:
            continue
        rings_before, rings_after = ring_members((old[1].get("data") or {}).get(RING_KEY)), ring_members(text)
        siblings = [r for r in plan.resources if r.type == STATEFUL_SET and r.parent == resource.parent]
        replicas = {_name(s): (_baseline_replicas(s, baseline), _replicas(s.inputs)) for s in siblings}
        metadata = resource.inputs.get("metadata") or {}
        for ring in dict.fromkeys([*rings_after, *rings_before]):
            before, after = rings_before.get(ring, []), rings_after.get(ring, [])
            if before == after:
                continue
            # The ring's StatefulSets: the ones of its pods (a single ring: every one beside it).
            own = {_statefulset(p) for p in before + after} if len(rings_before | rings_after) > 1 else set(replicas)
            counts = [replicas[name] for name in sorted(own) if name in replicas]
            changes.append(RingChange(
                resource.name, resource.urn, f"{metadata.get('namespace', '')}/{metadata.get('name', '')}",
                [p for p in after if p not in before], [p for p in before if p not in after],
                [p for p in before if _goes(p, replicas)], (len(before), len(after)),
                (sum(o for o, _ in counts), sum(n for _, n in counts)), ring))
    return changes


def _statefulset(pod: str) -> str:
    """The StatefulSet of a pod (its name without the ordinal)."""
    return pod.rpartition("-")[0]


def _goes(pod: str, replicas: dict[str, tuple[int, int]]) -> bool:
    """Whether the step removes the pod: its StatefulSet's replicas (before, after) drop below its ordinal."""
    statefulset, _, ordinal = pod.rpartition("-")
    if statefulset not in replicas:
        return False  # not a pod of this ring's StatefulSets: nothing here removes it
    old_count, new_count = replicas[statefulset]
    return ordinal.isdigit() and new_count <= int(ordinal) < old_count


def _name(resource: Resource) -> str:
    return (resource.inputs.get("metadata") or {}).get("name", "")


def _baseline_replicas(resource: Resource, baseline: dict[str, tuple[str, dict[str, Any]]]) -> int:
    """The StatefulSet's replicas in the baseline (as planned when it is new there)."""
    old = next((baseline[u] for u in (resource.urn, *resource.aliases) if u in baseline), None)
    return _replicas(old[1]) if old else _replicas(resource.inputs)
