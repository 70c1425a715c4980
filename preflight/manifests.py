"""Write the Kubernetes objects of a plan as YAML, one file per object: <cluster>/<namespace>/<kind>-<name>.yaml."""

from pathlib import Path
from typing import Any

import yaml

from .engine import Plan, Resource, redacted


def is_object(resource_type: str) -> bool:
    """A Kubernetes object of the plan (a `...Patch` resource only changes one the cluster already has)."""
    return resource_type.startswith("kubernetes:") and not resource_type.endswith("Patch")

K8S_PROVIDER_PREFIX = "k8s-"
MARKER = ".preflight-manifests"
"""The file preflight keeps in a manifests directory: the list of files it wrote there, the only ones it removes."""
_MARKER_HEADER = "# written by python -m preflight; the files below are the ones it may replace or remove\n"


class ManifestDirError(ValueError):
    """The manifests directory cannot be used without touching files preflight did not write."""


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
        if not resource.custom or not is_object(resource.type):
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


def artifact_files(cluster: str, obj: dict[str, Any]) -> list[tuple[Path, str]]:
    """The files inside an object, written as they are so they read (and lint) like files: each ConfigMap key that
    names a file (prometheus.yml, rule files, dashboards) and a PrometheusRule's groups, under
    <cluster>/<namespace>/files/<object name>/."""
    folder = manifest_path(cluster, obj).parent / "files" / obj["metadata"]["name"]
    if obj["kind"] == "ConfigMap":
        return [(folder / key, value) for key, value in sorted((obj.get("data") or {}).items())
                if key.endswith((".json", ".yaml", ".yml")) and "/" not in key]
    if obj["kind"] == "PrometheusRule":
        return [(folder / "rules.yaml", yaml.safe_dump({"groups": obj["spec"]["groups"]}, sort_keys=False))]
    return []


def owned_files(directory: Path) -> list[Path] | None:
    """The files a previous run wrote into `directory` (from its marker), or None when preflight did not make it."""
    marker = directory / MARKER
    if not marker.is_file():
        return None
    lines = marker.read_text().splitlines()
    if not lines or lines[0] + "\n" != _MARKER_HEADER:
        return None
    return [directory / line for line in lines[1:] if line and not line.startswith(("/", "..")) and ".." not in line]


def check_manifest_dir(directory: Path) -> None:
    """Refuse a path that is a file, or a non-empty directory that preflight did not write."""
    if directory.exists() and not directory.is_dir():
        raise ManifestDirError("is a file, not a directory")
    if directory.is_dir() and any(directory.iterdir()) and owned_files(directory) is None:
        raise ManifestDirError(f"directory is not empty and was not written by preflight (no {MARKER} marker): "
                               "give a new or empty directory; nothing there is touched")


def write_manifests(plan: Plan, directory: Path) -> tuple[int, int]:
    """Write the plan's manifests (and the files inside them) under `directory`, replacing only what an earlier run
    wrote there (every other file in it is left alone); return how many manifests and inner files were written."""
    check_manifest_dir(directory)
    previous = set(owned_files(directory) or [])
    planned: dict[Path, str] = {}
    objects = kubernetes_objects(plan)
    for cluster, obj in objects:
        files = [(manifest_path(cluster, obj), yaml.dump(obj, Dumper=_ManifestDumper, sort_keys=False, width=120)),
                 *artifact_files(cluster, obj)]
        for relative, text in files:
            path = directory / relative
            if path in planned:
                raise ValueError(f"two Kubernetes objects map to {path}")
            planned[path] = text
    clashes = sorted(str(p) for p in planned if p.exists() and p not in previous)
    if clashes:
        raise ManifestDirError(f"{clashes[0]} exists and was not written by preflight; nothing was written")
    for stale in previous - set(planned):
        if stale.is_file():
            stale.unlink()
            _remove_empty_parents(stale.parent, directory)
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in planned.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    listing = sorted(p.relative_to(directory).as_posix() for p in planned)
    (directory / MARKER).write_text(_MARKER_HEADER + "".join(f"{line}\n" for line in listing))
    return len(objects), len(planned) - len(objects)


def _remove_empty_parents(folder: Path, top: Path) -> None:
    while folder != top and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
