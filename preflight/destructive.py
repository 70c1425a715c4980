"""Edits that lose state, refused before `pulumi up`: the plan is compared with the stack's last state (`pulumi stack
export`) or an earlier plan (`preflight --json`), and every stateful resource the update would delete or replace is
named with the config key behind it and the safe way to get there. The stack goes ahead only with the resource's
name in `allow-destructive`.

Which input changes replace a resource: for Kubernetes objects, pulumi-kubernetes' `provider/pkg/provider/diff.go`
(the real-engine tests hold the rename and namespace cases against the real provider and engine); for buckets,
storage accounts and containers, the inputs each provider's schema marks as forcing a new resource (no cloud provider
runs here: for those this table is a model)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engine import Plan

STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
NAMESPACE = "kubernetes:core/v1:Namespace"
REPLACED_BY = {
    STATEFUL_SET: ("metadata.name", "metadata.namespace", "spec.selector", "spec.serviceName",
                   "spec.podManagementPolicy", "spec.revisionHistoryLimit"),
    NAMESPACE: ("metadata.name",),
    "aws:s3/bucket:Bucket": ("bucket",),
    "gcp:storage/bucket:Bucket": ("name", "location", "project"),
    "azure-native:storage:StorageAccount": ("accountName", "resourceGroupName", "location"),
    "azure-native:storage:BlobContainer": ("accountName", "containerName", "resourceGroupName"),
}
"""Stateful types, and the inputs whose change replaces them."""
CLAIM_FIELDS = ("storageClassName", "accessModes")
"""Fields of a StatefulSet's claim templates that existing claims never take: the program ignores changes to the
templates (the API server refuses them), so a new class or access mode would silently apply to no claim."""

LOSES = {
    STATEFUL_SET: "its pods stop while it is recreated, and a new name or namespace starts on new, empty claims "
                  "(blocks not yet uploaded stay behind on the old ones)",
    NAMESPACE: "deleting a namespace deletes every claim in it: blocks not yet uploaded by Prometheus, receive and "
               "the ruler (and in-cluster storage's blocks)",
    "aws:s3/bucket:Bucket": "the bucket holds every block: a new one starts empty",
    "gcp:storage/bucket:Bucket": "the bucket holds every block: a new one starts empty",
    "azure-native:storage:StorageAccount": "the account holds every block: a new one starts empty",
    "azure-native:storage:BlobContainer": "the container holds every block: a new one starts empty",
}


class BaselineError(ValueError):
    """The baseline file is unusable; the message names it."""


@dataclass
class DestructiveEdit:
    """One stateful resource the update would delete or replace."""

    name: str
    """Its logical name (what `allow-destructive` lists)."""
    urn: str
    """Its URN in the baseline."""
    change: str
    """What happens to it and why."""
    fix: str
    """The config key behind it and the safe way."""
    allowed: bool
    """The stack lists it in `allow-destructive`."""
    cause: str = ""
    """`change` without what is this resource's own (its namespace/name): edits of one cause share it; default
    `change` itself."""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "urn": self.urn, "change": self.change, "fix": self.fix, "allowed": self.allowed}

    def line(self) -> str:
        return f"  [{'allowed' if self.allowed else 'refused'}] {self.name}: {self.change}. {self.fix}"


SHOWN = 4
"""How many names a grouped refusal lists before "and N more"."""


def grouped_lines(edits: list[DestructiveEdit], verbose: bool = False) -> list[str]:
    """One entry per cause (a namespace change refuses every StatefulSet in it for the same reason): the cause and its
    fix once, then the resources' names (the first few; every one with `verbose`)."""
    groups: dict[tuple[bool, str, str], list[DestructiveEdit]] = {}
    for edit in edits:
        groups.setdefault((edit.allowed, edit.cause or edit.change, edit.fix), []).append(edit)
    lines = []
    for (allowed, cause, fix), members in groups.items():
        if len(members) == 1:
            lines.append(members[0].line())
            continue
        names = [m.name for m in members]
        shown = names if verbose else names[:SHOWN]
        more = f" and {len(names) - len(shown)} more (--verbose lists them)" if len(shown) < len(names) else ""
        lines.append(f"  [{'allowed' if allowed else 'refused'}] {len(members)} resources: {cause}. {fix}")
        lines.append(f"      {', '.join(shown)}{more}")
    return lines


def load_baseline(path: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Type and inputs by URN, from `pulumi stack export` output or a `preflight --json` plan."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise BaselineError(f"{path}: {err}") from None
    if isinstance(document, dict) and isinstance(document.get("deployment"), dict):
        resources = document["deployment"].get("resources") or []
    elif isinstance(document, dict) and isinstance(document.get("resources"), list):
        resources = document["resources"]
    else:
        raise BaselineError(f"{path}: neither `pulumi stack export` output nor a `preflight --json` plan")
    return {r["urn"]: (r["type"], r.get("inputs") or {}) for r in resources if "urn" in r and "type" in r}


def _at(inputs: dict[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _claim_templates(inputs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    templates = _at(inputs, "spec.volumeClaimTemplates") or []
    return {t["metadata"]["name"]: {f: (t.get("spec") or {}).get(f) for f in CLAIM_FIELDS} for t in templates}


def _where(inputs: dict[str, Any]) -> str:
    metadata = inputs.get("metadata") or {}
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}".lstrip("/")


def _fix(kind: str, path: str) -> str:
    if kind in (STATEFUL_SET, NAMESPACE) and path in ("metadata.name", "metadata.namespace"):
        return ("Config: namespace / regions[].clusters[].namespace. A new namespace starts empty: keep the old one, "
                "or run both until the old one's last blocks are uploaded (2h) and its data is no longer needed")
    if kind == STATEFUL_SET and path.startswith("volumeClaimTemplates"):
        return ("Config: thanos.prometheus.storage-class. Existing claims keep their class; to move, migrate each "
                "claim's volume to the new class first (or let a new replica start empty), then set it here")
    if kind == STATEFUL_SET:
        return ("Selectors carry the cluster's first name: if a `renamed-from` was dropped, put it back; after an "
                "upgrade of this project that changed the field, expect a gap of a few minutes in this component")
    return ("Config: regions[].storage. A new bucket starts empty and the blocks of the old one are no longer read: "
            "create the new one beside it, copy with `thanos tools bucket replicate`, then switch")


def destructive_edits(plan: Plan, baseline: dict[str, tuple[str, dict[str, Any]]],
                      allowed: list[str]) -> list[DestructiveEdit]:
    """Every stateful resource of `baseline` that `plan` would delete or replace (aliases followed)."""
    current = {r.urn: r for r in plan.resources}
    for resource in plan.resources:
        for alias in resource.aliases:
            current.setdefault(alias, resource)
    found: list[DestructiveEdit] = []

    def add(urn: str, change: str, fix: str, cause: str = "") -> None:
        name = urn.rsplit("::", 1)[-1]
        found.append(DestructiveEdit(name, urn, change, fix, name in allowed, cause))

    for urn, (kind, old) in sorted(baseline.items()):
        if kind not in REPLACED_BY:
            continue
        new = current.get(urn)
        if new is None or new.type != kind:
            loses = "its pods stop, and its claims (with blocks not yet uploaded) are left to no one" \
                if kind == STATEFUL_SET else LOSES[kind]
            add(urn, f"{kind.rsplit(':', 1)[-1]} {_where(old) or urn.rsplit('::', 1)[-1]} would be deleted: {loses}",
                "If its cluster was renamed, list the old name in the cluster's `renamed-from` (a region cannot be "
                "renamed: add the new one and move the data); if it was removed on purpose, let its last blocks "
                "upload first (every 2h)", f"{kind.rsplit(':', 1)[-1]}s would be deleted: {loses}")
            continue
        for path in REPLACED_BY[kind]:
            before, after = _at(old, path), _at(new.inputs, path)
            if before is not None and before != after:
                add(urn, f"changing {path} ({json.dumps(before)} -> {json.dumps(after)}) replaces it: {LOSES[kind]}",
                    _fix(kind, path))
                break
        else:
            if kind == STATEFUL_SET:
                before, after = _claim_templates(old), _claim_templates(new.inputs)
                for template in sorted(set(before) & set(after)):
                    if before[template] != after[template]:
                        add(urn, f"claims {template}-{old['metadata']['name']}-* of {_where(old)}: "
                                 f"{json.dumps(before[template])} -> {json.dumps(after[template])} would apply to no "
                                 "existing claim",
                            _fix(kind, "volumeClaimTemplates"),
                            f"claim template {template}: {json.dumps(before[template])} -> "
                            f"{json.dumps(after[template])} would apply to no existing claim")
    return found
