"""Write the Kubernetes objects of a plan as YAML, one file per object: <cluster>/<namespace>/<kind>-<name>.yaml."""

import shutil
from pathlib import Path
from typing import Any

import yaml

from .engine import Plan, Resource, redacted

K8S_PROVIDER_PREFIX = "k8s-"


class _ManifestDumper(yaml.SafeDumper):
    """Multi-line strings (prometheus.yml, rules, hashrings) as literal blocks, so manifests read like files."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ManifestDumper.add_representer(str, _string)


def kubernetes_objects(plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    """(cluster, object) for every Kubernetes object of the plan, secrets redacted, in registration order."""
    providers = {r.urn: r.name for r in plan.resources if r.type == "pulumi:providers:kubernetes"}
    objects = []
    for resource in plan.resources:
        if not resource.custom or not resource.type.startswith("kubernetes:"):
            continue
        cluster = providers.get(resource.provider or "", "_default").removeprefix(K8S_PROVIDER_PREFIX)
        objects.append((cluster, manifest_of(resource)))
    return objects


def manifest_of(resource: Resource) -> dict[str, Any]:
    """The object as `kubectl apply` would take it (apiVersion and kind first)."""
    body = _sorted(redacted(resource.raw_inputs))
    head = {key: body.pop(key) for key in ("apiVersion", "kind", "metadata")}
    return {**head, **body}


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def manifest_path(cluster: str, obj: dict[str, Any]) -> Path:
    """<cluster>/<namespace or _cluster>/<kind>-<name>.yaml"""
    metadata = obj.get("metadata", {})
    namespace = metadata.get("namespace") or "_cluster"
    return Path(cluster) / namespace / f"{obj['kind'].lower()}-{metadata['name']}.yaml"


def write_manifests(plan: Plan, directory: Path) -> int:
    """Replace `directory` with the plan's manifests; return how many were written."""
    if directory.exists():
        shutil.rmtree(directory)
    count = 0
    for cluster, obj in kubernetes_objects(plan):
        path = directory / manifest_path(cluster, obj)
        if path.exists():
            raise ValueError(f"two Kubernetes objects map to {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.dump(obj, Dumper=_ManifestDumper, sort_keys=False, width=120))
        count += 1
    return count
