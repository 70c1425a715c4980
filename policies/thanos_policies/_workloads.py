"""Reading Kubernetes workloads the way the engine passes them (camelCase props, possibly proxied), for any Thanos
deployment: this project's, kube-thanos, the Helm charts, prometheus-operator.

Thanos is recognised by its executable and subcommand (any registry or mirror, `command` or `args`), flags in both
`--flag=value` and `--flag value` forms, `$(VAR)` expanded from the container's env (literals, fieldRef,
secretKeyRef, configMapKeyRef), and the objstore config resolved through volumes, env and Secret `data`/`stringData`.
"""

import base64
import functools
import json
import os
import re
from typing import Any, Iterator

import yaml
from pulumi_policy.proxy import UnknownValueError

WORKLOAD_TYPES = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet",
                  "kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob")
PROMETHEUS_CR = "kubernetes:monitoring.coreos.com/v1:Prometheus"
OPERATED_SERVICES = {"Prometheus": "prometheus-operated", "ThanosRuler": "thanos-ruler-operated",
                     "Alertmanager": "alertmanager-operated"}
"""Kind of a prometheus-operator resource -> the headless Service the operator makes for its pods."""
THANOS_RULER_CR = "kubernetes:monitoring.coreos.com/v1:ThanosRuler"
COMMANDS = ("tools bucket web", "tools bucket replicate", "tools bucket cleanup", "tools bucket retention",
            "query-frontend", "sidecar", "query", "store", "compact", "rule", "receive")
POD_NAME = "$(POD_NAME)"
"""What a value taken from the pod's own name (fieldRef metadata.name) expands to."""
SECRET_REF = "$(secret:"
"""Prefix of what a value taken from a Secret (secretKeyRef) expands to: `$(secret:<name>/<key>)`."""
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
FLAG_TABLE = json.load(open(os.path.join(os.path.dirname(__file__), "thanos_flags.json")))
"""The pack's flag table (derived from reference/thanos-v0.42.4-flags.json): commands, removed flags, version."""


class Unknown(str):
    """A value computed at apply time (a generated password or certificate during a first preview): rules never
    read content from it; thanos-preview-coverage says what it hides."""


UNKNOWN = Unknown("(computed at apply)")


def known(read):
    """read(), or UNKNOWN when it touches a value the engine cannot know during a preview."""
    try:
        return read()
    except UnknownValueError:
        return UNKNOWN


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
    """The pod spec of a workload (Deployment, StatefulSet, DaemonSet, Job, CronJob), or {}."""
    spec = props.get("spec") or {}
    if "jobTemplate" in spec:
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def containers(props: Any, init: bool = False) -> list:
    """The workload's containers (with `init`, its init containers too, first)."""
    pod = pod_spec(props)
    return [*(pod.get("initContainers") or [] if init else []), *(pod.get("containers") or [])]


def image_version(image: str) -> tuple[int, ...] | None:
    """(major, minor, patch) from an image tag such as `v0.42.4`, `0.34.1-debian-12-r0`; None when untagged."""
    tail = (image or "").rsplit("/", 1)[-1].split("@", 1)[0]
    if ":" not in tail:
        return None
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", tail.rsplit(":", 1)[1])
    return tuple(int(n) for n in match.groups()) if match else None


def _version_text(version: tuple[int, ...]) -> str:
    return "v" + ".".join(str(n) for n in version)


def _is_thanos_executable(word: str) -> bool:
    return word.rsplit("/", 1)[-1] == "thanos"


def _is_thanos_image(image: str) -> bool:
    """The repository's last path segment is `thanos` (quay.io/thanos/thanos, thanosio/thanos, bitnami/thanos, a
    mirror on a registry with a port)."""
    last = (image or "").split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[0] == "thanos"


def environment(container: dict) -> dict[str, str]:
    """What each env var of the container expands to in `$(VAR)`: literals as written, the pod's name as
    $(POD_NAME), a Secret key as $(secret:<name>/<key>), a ConfigMap key as $(configmap:<name>/<key>)."""
    values: dict[str, str] = {}
    for item in container.get("env") or []:
        name, source = item.get("name"), item.get("valueFrom") or {}
        if "value" in item:
            values[name] = _VAR.sub(lambda m: values.get(m.group(1), m.group(0)), str(item.get("value") or ""))
        elif (source.get("fieldRef") or {}).get("fieldPath") == "metadata.name":
            values[name] = POD_NAME
        elif source.get("fieldRef"):
            values[name] = f"$(field:{source['fieldRef'].get('fieldPath')})"
        elif source.get("secretKeyRef"):
            ref = source["secretKeyRef"]
            values[name] = f"{SECRET_REF}{ref.get('name')}/{ref.get('key')})"
        elif source.get("configMapKeyRef"):
            ref = source["configMapKeyRef"]
            values[name] = f"$(configmap:{ref.get('name')}/{ref.get('key')})"
    return values


def expand(text: str, env: dict[str, str]) -> str:
    """`$(VAR)` replaced the way Kubernetes does in command and args (unknown variables stay as written)."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def _takes_value(command: str, name: str) -> bool | None:
    table = FLAG_TABLE["commands"].get(command) or {}
    if name in table.get("flags", []):
        return name not in table.get("switches", [])
    return None


def normalise_flags(command: str, words: list[str]) -> list[str]:
    """Flags as `--name=value` (or `--name` for a switch), whichever form they were written in."""
    flags, i = [], 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and "=" not in word and i + 1 < len(words):
            name = word[2:]
            takes = _takes_value(command, name)
            following = words[i + 1]
            if takes or (takes is None and not following.startswith("-")):
                flags.append(f"{word}={following}")
                i += 2
                continue
        flags.append(word)
        i += 1
    return flags


def thanos_command(container: dict) -> tuple[str, list[str]] | None:
    """(subcommand, raw flag words) when the container runs Thanos, else None."""
    words = [str(w) for w in [*(container.get("command") or []), *(container.get("args") or [])]]
    if words and _is_thanos_executable(words[0]):
        words = words[1:]
    elif not _is_thanos_image(container.get("image") or ""):
        return None
    if words and words[0] in ("/bin/sh", "sh", "bash", "/bin/bash"):
        return None  # a shell script: not read
    for command in COMMANDS:
        parts = command.split()
        if words[: len(parts)] == parts:
            return command, words[len(parts):]
    return None


def container_flags(container: dict) -> tuple[str, list[str]] | None:
    """(thanos command, flags as `--name=value` with `$(VAR)` expanded) of one container, or None."""
    found = thanos_command(container)
    if not found:
        return None
    command, words = found
    env = environment(container)
    return command, [expand(f, env) for f in normalise_flags(command, words)]


def workload_containers(resources: list) -> Iterator[tuple[Any, str | None, dict, str, list[str]]]:
    """(workload, its name, container, Thanos command, flags) of every Thanos container of the stack's workloads."""
    for r in resources:
        if r.resource_type in WORKLOAD_TYPES:
            name = (r.props.get("metadata") or {}).get("name")
            for c, command, flags in thanos_containers(r.props):
                yield r, name, c, command, flags


def thanos_containers(props: Any, init: bool = False) -> Iterator[tuple[dict, str, list[str]]]:
    """(container, thanos command, flags) for every Thanos container of a workload."""
    for c in containers(props, init):
        found = container_flags(c)
        if found:
            yield c, *found


def flag(flags: list[str], name: str) -> list[str]:
    """Values of `--name=value` flags."""
    return [f.split("=", 1)[1] for f in flags if f.startswith(f"--{name}=")]


def has_switch(flags: list[str], name: str) -> bool:
    """True when `--name` is set."""
    return f"--{name}" in flags


def switch_on(flags: list[str], name: str) -> bool:
    """A boolean flag as kingpin reads it: `--name` or `--name=true` on, `--no-name` or `--name=false` off (the
    last one given wins); off when absent."""
    state = False
    for f in flags:
        if f == f"--{name}":
            state = True
        elif f == f"--no-{name}":
            state = False
        elif f.startswith(f"--{name}="):
            state = f.split("=", 1)[1].lower() in ("true", "1")
    return state


def replicas(props: Any, resource_type: str = "") -> int:
    """spec.replicas; when unset, 1 for a Prometheus or ThanosRuler CR (the operator's default) and 2 for a workload
    (an HPA owns its count)."""
    value = (props.get("spec") or {}).get("replicas")
    if value is None:
        return 1 if resource_type in (PROMETHEUS_CR, THANOS_RULER_CR) else 2
    return int(value)


def component(props: Any) -> str:
    """The Thanos command the workload runs, or "" (or "prometheus" for Prometheus with a sidecar)."""
    for _, command, _ in thanos_containers(props):
        if command == "sidecar":
            return "prometheus"
        return command
    return ""


def provider_of(resource: Any) -> str:
    """The Kubernetes provider (cluster) a stack resource lives on."""
    return resource.provider.urn if getattr(resource, "provider", None) else ""


def namespace_of(resource: Any) -> str:
    """metadata.namespace, or "" (the provider's default)."""
    return (resource.props.get("metadata") or {}).get("namespace") or ""


def cluster_of(resource: Any) -> str:
    """The Kubernetes provider (cluster) and namespace a stack resource lives in."""
    return f"{provider_of(resource)}|{namespace_of(resource)}"


def _pod_labels(resource) -> dict:
    """The labels of a workload's pods (for an operator CR, the ones prometheus-operator gives them)."""
    props, name = resource.props, (resource.props.get("metadata") or {}).get("name")
    if resource.resource_type == PROMETHEUS_CR:
        own = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": name, "prometheus": name,
               "operator.prometheus.io/name": name}
    elif resource.resource_type == THANOS_RULER_CR:
        own = {"app.kubernetes.io/name": "thanos-ruler", "app.kubernetes.io/instance": name, "thanos-ruler": name}
    else:
        return ((props.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
    return {**(((props.get("spec") or {}).get("podMetadata") or {}).get("labels") or {}), **own}


def _selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def secret_text(props: Any, key: str, config_map: bool = False) -> str | None:
    """One key of a Secret's props, from `stringData` or base64 `data` (a ConfigMap's `data` is plain text);
    UNKNOWN when its value is computed at apply."""
    text = known(lambda: (props.get("stringData") or {}).get(key))
    if isinstance(text, Unknown):
        return text
    if isinstance(text, str):
        return text
    encoded = known(lambda: (props.get("data") or {}).get(key))
    if isinstance(encoded, Unknown):
        return encoded
    if not isinstance(encoded, str):
        return None
    if config_map:
        return encoded
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None


@functools.lru_cache(maxsize=1024)
def parsed(text: str) -> Any:
    """A YAML (or JSON) text parsed once however many rules read it (a stack's ConfigMaps hold dashboards of tens of
    kilobytes); None when it does not parse (or is computed at apply). Shared between callers: read it, never
    change it."""
    if not isinstance(text, str) or isinstance(text, Unknown):
        return None
    try:
        if text.lstrip().startswith(("{", "[")):
            return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 (a safe loader)
    except yaml.YAMLError:
        return None


def objstore_document(text: str | None) -> dict | None:
    """A parsed objstore config, or None (also for one computed at apply: `objstore_unknown` tells)."""
    if isinstance(text, Unknown):
        return None
    document = parsed(text) if isinstance(text, str) else None
    return document if isinstance(document, dict) and "type" in document and "config" in document else None


def bucket_name(document: dict | None) -> str:
    """`TYPE:bucket/prefix` of an objstore config ("" when unknown)."""
    if not document or not isinstance(document.get("config"), dict):
        return ""
    config = document["config"]
    name = config.get("bucket") or f"{config.get('storage_account')}/{config.get('container')}"
    return f"{document.get('type')}:{name}/{document.get('prefix') or ''}"


class Stack:
    """Index of a stack's resources for cross-resource reads (Secrets, ConfigMaps, Services by cluster)."""

    def __init__(self, resources: list) -> None:
        self.resources = resources
        self.objects: dict[tuple[str, str, str, str], Any] = {}
        for r in resources:
            kind = r.resource_type.rsplit(":", 1)[-1]
            name = (r.props.get("metadata") or {}).get("name")
            if kind in ("Secret", "ConfigMap", "Service", "PersistentVolumeClaim", *OPERATED_SERVICES) and name:
                self.objects[(provider_of(r), namespace_of(r), kind, name)] = r

    def get(self, owner: Any, kind: str, name: str) -> Any:
        """A Secret, ConfigMap, Service or PersistentVolumeClaim in the owner's cluster and namespace."""
        return self.objects.get((provider_of(owner), namespace_of(owner), kind, name))

    def services_in(self, provider: str, namespace: str) -> set[str]:
        """Names of the Services the stack declares in one namespace of one cluster, and the governing Services
        prometheus-operator makes for the custom resources declared there (`prometheus-operated` for a Prometheus,
        `thanos-ruler-operated`, `alertmanager-operated`)."""
        here = [(kind, name) for (p, ns, kind, name) in self.objects if p == provider and ns == namespace]
        return {name for kind, name in here if kind == "Service"} | \
            {OPERATED_SERVICES[kind] for kind, _ in here if kind in OPERATED_SERVICES}

    def objstore(self, owner: Any, container: dict, flags: list[str], prefix: str = "objstore") -> tuple[dict | None, str]:
        """(objstore config, where it came from: "file", "secret", "inline" or "") of a Thanos container."""
        for value in flag(flags, f"{prefix}.config"):
            if value.startswith(SECRET_REF):
                name, _, key = value[len(SECRET_REF):-1].partition("/")
                secret = self.get(owner, "Secret", name)
                return (objstore_document(secret_text(secret.props, key)) if secret else None), "secret"
            if value.startswith("$("):
                return None, "env"
            return objstore_document(value), "inline"
        for path in flag(flags, f"{prefix}.config-file"):
            return self._from_file(owner, container, path), "file"
        return None, ""

    def mounted(self, owner: Any, container: dict, path: str) -> Iterator[tuple[Any, str, str]]:
        """(the ConfigMap or Secret, None when the stack does not show it; its kind; the key `path` names in it) of
        each of the container's volumes mounted above `path`."""
        volumes = {v.get("name"): v for v in pod_spec(owner.props).get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            root = (mount.get("mountPath") or "").rstrip("/")
            # A file mounted by subPath is named by its own mount path.
            if not path.startswith(root + "/") and not (path == root and mount.get("subPath")):
                continue
            volume = volumes.get(mount.get("name")) or {}
            source = volume.get("secret") or volume.get("configMap")
            if not source:
                continue
            kind = "Secret" if volume.get("secret") else "ConfigMap"
            relative = mount.get("subPath") if path == root else \
                "/".join(p for p in (mount.get("subPath"), path[len(root) + 1:]) if p)
            key = next((i.get("key") for i in source.get("items") or [] if i.get("path") == relative), relative)
            yield self.get(owner, kind, source.get("secretName") or source.get("name")), kind, key

    def _from_file(self, owner: Any, container: dict, path: str) -> dict | None:
        for resource, kind, key in self.mounted(owner, container, path):
            return objstore_document(secret_text(resource.props, key, kind == "ConfigMap")) if resource else None
        return None

    def objstore_unknown(self, owner: Any, container: dict, flags: list[str], prefix: str = "objstore") -> str:
        """Where a Thanos container's objstore config is, when the stack shows it but its value is computed at
        apply (`Secret <name> key <key>`); "" otherwise."""
        for value in flag(flags, f"{prefix}.config"):
            if value.startswith(SECRET_REF):
                name, _, key = value[len(SECRET_REF):-1].partition("/")
                secret = self.get(owner, "Secret", name)
                if secret and isinstance(secret_text(secret.props, key), Unknown):
                    return f"Secret {name} key {key}"
            return ""
        for path in flag(flags, f"{prefix}.config-file"):
            for resource, kind, key in self.mounted(owner, container, path):
                if resource and isinstance(secret_text(resource.props, key, kind == "ConfigMap"), Unknown):
                    return f"{kind} {(resource.props.get('metadata') or {}).get('name')} key {key}"
                return ""
        return ""
