"""Rule files: the ConfigMaps and Secrets a ruler or Prometheus mounts, and the PrometheusRules an operator resource
selects."""

from typing import Any, Iterator

from ._workloads import Stack, parsed, secret_text


PROMETHEUS_RULE_CR = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"


def _mounted(stack: Stack, workload: Any, container: dict, paths: list[str]) -> Iterator[Any]:
    """The ConfigMaps and Secrets the stack shows, mounted where `paths` (files or globs) point."""
    for path in paths:
        yield from (resource for resource, _, _ in stack.mounted(workload, container, path) if resource is not None)


def _files(resource: Any) -> list[Any]:
    data = resource.props.get("data") or {}
    kind = resource.resource_type.rsplit(":", 1)[-1]
    keys = set(data) | set(resource.props.get("stringData") or {})
    return [parsed(secret_text(resource.props, key, kind == "ConfigMap")) for key in sorted(keys)]


def _selected(selector: Any, labels: dict) -> bool:
    wanted = (selector or {}).get("matchLabels") if isinstance(selector, dict) else None
    return selector is not None and all(labels.get(k) == v for k, v in (wanted or {}).items())
