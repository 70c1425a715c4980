"""Reading Kubernetes workloads the way the engine passes them (camelCase props, possibly proxied)."""

import re
from typing import Any, Iterator

WORKLOAD_TYPES = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")
THANOS_IMAGE = re.compile(r"(^|/)thanos/thanos[:@]")
COMMANDS = ("tools bucket web", "tools bucket replicate", "tools bucket cleanup", "tools bucket retention",
            "query-frontend", "sidecar", "query", "store", "compact", "rule", "receive")
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def fix(key: str) -> str:
    """Names the key of this project's `thanos:config` that fixes a finding (for stacks built with it)."""
    return f" (config: {key})"


def seconds(duration: str) -> float:
    """Seconds in a Prometheus duration; NaN when it is not one."""
    parts = _DURATION.findall(duration or "")
    if not parts or "".join(n + u for n, u in parts) != duration:
        return float("nan")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def plain(value: Any) -> Any:
    """A deep copy as plain dicts and lists (engine props are read-only proxies)."""
    if hasattr(value, "items"):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and not isinstance(value, (str, bytes))):
        return [plain(v) for v in value]
    return value


def pod_spec(props: Any) -> dict:
    """spec.template.spec of a workload, or {}."""
    return ((props.get("spec") or {}).get("template") or {}).get("spec") or {}


def containers(props: Any) -> list:
    """The workload's containers."""
    return list(pod_spec(props).get("containers") or [])


def thanos_containers(props: Any) -> Iterator[tuple[dict, str, list[str]]]:
    """(container, thanos command, flags) for every container running the Thanos image."""
    for c in containers(props):
        if THANOS_IMAGE.search(c.get("image") or ""):
            args = [str(a) for a in (c.get("args") or [])]
            for command in COMMANDS:
                words = command.split()
                if args[: len(words)] == words:
                    yield c, command, args[len(words):]
                    break


def flag(flags: list[str], name: str) -> list[str]:
    """Values of `--name=value` flags."""
    return [f.split("=", 1)[1] for f in flags if f.startswith(f"--{name}=")]


def has_switch(flags: list[str], name: str) -> bool:
    """True when `--name` is set."""
    return f"--{name}" in flags


def replicas(props: Any) -> int:
    """spec.replicas (an HPA-managed workload without it counts as 2)."""
    value = (props.get("spec") or {}).get("replicas")
    return 2 if value is None else int(value)


def component(props: Any) -> str:
    """The Thanos command the workload runs, or "" (or "prometheus" for Prometheus with a sidecar)."""
    for _, command, _ in thanos_containers(props):
        if command == "sidecar":
            return "prometheus"
        return command
    return ""


def cluster_of(resource: Any) -> str:
    """The Kubernetes provider (cluster) and namespace a stack resource lives in."""
    provider = resource.provider.urn if getattr(resource, "provider", None) else ""
    return f"{provider}|{(resource.props.get('metadata') or {}).get('namespace') or ''}"


def mounted_secrets(props: Any) -> list[str]:
    """Names of the Secrets a workload mounts as volumes."""
    return [(v.get("secret") or {}).get("secretName") for v in pod_spec(props).get("volumes") or []
            if v.get("secret")]
