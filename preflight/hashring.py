"""Hashring changes against a baseline: for each receive hashring (a ConfigMap holding `hashrings.json`), which
endpoints join or leave it, and whether the step is safe.

The program orders the ring after the ingestor StatefulSets and the routers after the ring (components/thanos/
receive.py), so a ring that grows is published once its new pods are ready. The same order makes a ring that loses
endpoints unsafe when their pods go in the same `pulumi up`: the StatefulSet scales down first, and until the routers
restart on the new ring their writes to the gone pods miss quorum. Such a step is refused (a DestructiveEdit named
after the ConfigMap, which `allow-destructive` can list); shrinking takes two steps, `draining` first."""

import json
from dataclasses import dataclass
from typing import Any

from .destructive import DestructiveEdit
from .engine import Plan, Resource

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
RING_KEY = "hashrings.json"


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

    @property
    def safe(self) -> bool:
        return not self.going

    def line(self) -> str:
        """What happens to the ring, in a line or two."""
        before, after = self.sizes
        change = ", ".join([*(f"+{p}" for p in self.joined), *(f"-{p}" for p in self.left)])
        head = f"  {self.name}: hashring {self.where} {before} -> {after} endpoints ({change})"
        if self.going:
            return f"{head}: refused (above), their pods go in the same step"
        if self.joined and not self.left:
            return (f"{head}: safe, they join once their pods are ready (the ring waits for the StatefulSet rollout, "
                    "then the routers restart on it)")
        if self.left:
            return (f"{head}: safe, the routers restart on the new ring while those pods keep running; next step: "
                    f"ingestors: {self.ingestors[1] - len(self.left)} with draining: 0")
        return f"{head}: safe"

    def refusal(self) -> tuple[str, str]:
        """What goes wrong, and the two steps that do it safely."""
        (before, after), (old, new) = self.sizes, self.ingestors
        return (f"hashring {self.where} {before} -> {after} endpoints: {', '.join(self.going)} leave it in the same "
                "step as their pods go (the StatefulSet scales down before the routers restart on the new ring, so "
                "writes of their share miss quorum meanwhile)",
                f"Shrink in two steps: thanos.receive.draining: {old - new} with ingestors: {old}, pulumi up (the "
                f"ring drops them, their pods keep running); then ingestors: {new} with draining: 0, pulumi up")

    def edit(self, allowed: list[str]) -> DestructiveEdit:
        """The refusal as a destructive edit (exit 1 unless `allow-destructive` names the ConfigMap)."""
        return DestructiveEdit(self.name, self.urn, *self.refusal(), self.name in allowed)


def ring_pods(text: str | None) -> list[str]:
    """The pod of each endpoint of every ring in a hashrings.json (`<pod>.<service>.<namespace>.svc...:port`)."""
    try:
        rings = json.loads(text or "[]")
    except ValueError:
        return []
    pods: list[str] = []
    for ring in rings if isinstance(rings, list) else []:
        for endpoint in (ring or {}).get("endpoints") or []:
            address = endpoint.get("address", "") if isinstance(endpoint, dict) else str(endpoint)
            pod = address.split(":")[0].split(".")[0]
            if pod and pod not in pods:
                pods.append(pod)
    return pods


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
        before, after = ring_pods((old[1].get("data") or {}).get(RING_KEY)), ring_pods(text)
        if before == after:
            continue
        siblings = [r for r in plan.resources if r.type == STATEFUL_SET and r.parent == resource.parent]
        replicas = {_name(s): (_baseline_replicas(s, baseline), _replicas(s.inputs)) for s in siblings}

        metadata = resource.inputs.get("metadata") or {}
        changes.append(RingChange(
            resource.name, resource.urn, f"{metadata.get('namespace', '')}/{metadata.get('name', '')}",
            [p for p in after if p not in before], [p for p in before if p not in after],
            [p for p in before if _goes(p, replicas)], (len(before), len(after)),
            (sum(o for o, _ in replicas.values()), sum(n for _, n in replicas.values()))))
    return changes


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
