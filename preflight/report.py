"""The preflight's text for people: per cluster what runs and what it requests, the endpoints and outputs, the secrets
still to set, the policy findings grouped by policy, and the command to run next. The per-type resource counts and
every finding on its own line come with `--verbose`; `--json` is the machine contract."""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from components.root import STABLE_OUTPUTS
from config.base import cpu_millicores, memory_bytes

from .engine import Plan, Resource

SCALED = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
OPERATED = ("kubernetes:monitoring.coreos.com/v1:Prometheus", "kubernetes:monitoring.coreos.com/v1:Alertmanager",
            "kubernetes:monitoring.coreos.com/v1:ThanosRuler")
"""prometheus-operator resources: the operator makes their pods (replicas and requests in their spec)."""
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
FIRST = 3
"""How many resources a grouped line names before "and N more"."""


@dataclass(frozen=True)
class Workload:
    """What one planned workload runs: its pods and what they request in all."""

    cluster: str
    namespace: str
    name: str
    """The object's name without the project's `thanos-` prefix and `-pods` suffix (query, memcached-index...)."""
    replicas: int
    max_replicas: int | None
    """When an HPA scales it: its maximum (and `replicas` its minimum)."""
    per_node: bool
    """A DaemonSet: one pod per node (counted once)."""
    cpu_m: int
    """Millicores requested by all its pods."""
    memory: int
    """Bytes requested by all its pods."""

    def label(self) -> str:
        if self.per_node:
            return f"{self.name} (per node)"
        if self.max_replicas is not None:
            return f"{self.name} x{self.replicas}-{self.max_replicas} (HPA)"
        return f"{self.name} x{self.replicas}"


def _cluster(resource: Resource, by_urn: dict[str, Resource]) -> str:
    provider = by_urn.get(resource.provider or "")
    return provider.name.removeprefix("k8s-") if provider else "(default provider)"


def _quantity(read: Any, value: Any) -> int:
    try:
        return read(str(value)) if value is not None else 0
    except ValueError:
        return 0


def _pod_requests(pod: dict[str, Any]) -> tuple[int, int]:
    """(millicores, bytes) one pod requests, as the scheduler counts it: its containers summed, or its largest init
    container when that is more."""
    def requests(container: dict[str, Any]) -> tuple[int, int]:
        wanted = (container.get("resources") or {}).get("requests") or {}
        return _quantity(cpu_millicores, wanted.get("cpu")), _quantity(memory_bytes, wanted.get("memory"))

    running = [requests(c) for c in pod.get("containers") or []]
    init = [requests(c) for c in pod.get("initContainers") or []]
    return (max([sum(c for c, _ in running), *(c for c, _ in init)]),
            max([sum(m for _, m in running), *(m for _, m in init)]))


def workloads(plan: Plan) -> list[Workload]:
    """Every Deployment, StatefulSet, DaemonSet and operator-made pod set of the plan (Jobs and CronJobs run now and
    then and are left out)."""
    by_urn = {r.urn: r for r in plan.resources}
    hpa: dict[tuple[Any, Any, Any], tuple[int, int]] = {}
    for r in plan.resources:
        if r.type == HPA:
            spec, metadata = r.inputs.get("spec") or {}, r.inputs.get("metadata") or {}
            target = (spec.get("scaleTargetRef") or {}).get("name")
            hpa[(r.provider, metadata.get("namespace"), target)] = (int(spec.get("minReplicas") or 1),
                                                                    int(spec.get("maxReplicas") or 1))
    found = []
    for r in plan.resources:
        if r.type not in (*SCALED, DAEMON_SET, *OPERATED) or not r.custom:
            continue
        metadata, spec = r.inputs.get("metadata") or {}, r.inputs.get("spec") or {}
        name, namespace = metadata.get("name") or r.name, metadata.get("namespace") or ""
        scaled = hpa.get((r.provider, namespace, name))
        if r.type in OPERATED:
            replicas = int(spec.get("replicas") or 1)
            sidecar = [{"resources": spec["thanos"].get("resources") or {}}] if spec.get("thanos") else []
            pod: dict[str, Any] = {"containers": [{"resources": spec.get("resources") or {}}, *sidecar,
                                                   *(spec.get("containers") or [])]}
        else:
            replicas = 1 if r.type == DAEMON_SET else scaled[0] if scaled else int(spec.get("replicas", 1))
            pod = (spec.get("template") or {}).get("spec") or {}
        cpu, memory = _pod_requests(pod)
        short = name.removeprefix("thanos-").removesuffix("-pods")
        found.append(Workload(_cluster(r, by_urn), namespace, short, replicas, scaled[1] if scaled else None,
                              r.type == DAEMON_SET, cpu * replicas, memory * replicas))
    return found


def _cpu(millicores: int) -> str:
    return f"{millicores / 1000:.2f} CPU"


def _memory(size: int) -> str:
    return f"{size / 2**30:.2f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


def reached_through(settings: Any) -> dict[str, str]:
    """How the program reaches each cluster: its kubeconfig context or its cluster stack."""
    return {c.name: f"context {c.kubernetes.context}" if c.kubernetes.context else f"stack {c.kubernetes.stack}"
            for region in settings.regions for c in region.clusters}


def what_runs(found: list[Workload], reached: dict[str, str] | None = None) -> list[str]:
    """Per cluster: its requests in all, then per namespace the workloads with their replicas."""
    lines = []
    for cluster in sorted({w.cluster for w in found}):
        mine = [w for w in found if w.cluster == cluster]
        pods = sum(1 if w.per_node else w.replicas for w in mine)
        through = f" ({reached[cluster]})" if reached and cluster in reached else ""
        lines.append(f"Cluster {cluster}{through}: {len(mine)} workloads, {pods} pods, requesting "
                     f"{_cpu(sum(w.cpu_m for w in mine))} and {_memory(sum(w.memory for w in mine))}")
        for namespace in sorted({w.namespace for w in mine}):
            inside = sorted((w for w in mine if w.namespace == namespace), key=lambda w: w.name)
            lines.append(f"  {namespace} ({_cpu(sum(w.cpu_m for w in inside))}, "
                         f"{_memory(sum(w.memory for w in inside))}): {', '.join(w.label() for w in inside)}")
    return lines


def endpoints(outputs: dict[str, Any], stack: str) -> list[str]:
    """Where to reach what the stack runs, read from its outputs; then the outputs' names."""
    lines = []
    view = outputs.get("global") if isinstance(outputs.get("global"), dict) else None
    if view and view.get("endpoint"):
        how = (f"sign in with `pulumi stack output globalBasicAuth --show-secrets -s {stack}`"
               if "globalBasicAuth" in outputs else "sign in through the identity provider")
        lines.append(f"  global view: {view['endpoint']} ({how})")
    for region in sorted(k for k, v in outputs.items() if isinstance(v, dict) and "clusters" in v):
        for cluster, out in sorted((outputs[region].get("clusters") or {}).items()):
            parts = [f"{label} {out[key]}" for key, label in (("remoteWriteUrl", "remote write"),
                                                              ("queryFrontendUrl", "query frontend"),
                                                              ("leafQuery", "leaf query gRPC")) if out.get(key)]
            if parts:
                lines.append(f"  {cluster} ({region}): {', '.join(parts)}")
    if lines:
        lines.insert(0, "Endpoints:")
    stable = sorted(name for name in outputs if name in STABLE_OUTPUTS)
    lines.append(f"Stack outputs (`pulumi stack output NAME -s {stack}`): {', '.join(stable) or 'none'}")
    old = sorted(name for name in outputs if name not in STABLE_OUTPUTS)
    if old:
        lines.append(f"  also {', '.join(old)}: each region's outputs at the top level, as before `regions`; they go in "
                     "the next release: read `regions.<name>`")
    return lines


@dataclass(frozen=True)
class SecretToSet:
    """A secret config key the stack reads and its file does not hold: preflight used a placeholder for it."""

    key: str
    """The key under the project's namespace (`thanos:<key>`)."""
    what: str
    """What value it takes, for the command's placeholder."""
    url: bool = False
    """The value is a URL (the placeholder preflight used is URL-shaped)."""

    def command(self, project: str, stack: str) -> str:
        return f"pulumi config set --secret {project}:{self.key} '<{self.what}>' -s {stack}"


def secrets_to_set(raw: dict[str, Any], settings: Any, project: str = "thanos") -> list[SecretToSet]:
    """The secret keys the stack needs but keeps out of the stack file (`pulumi config set --secret` sets them)."""
    needed: list[SecretToSet] = []
    entry = settings.global_view.entry_point if settings.global_view else None
    if entry and entry.auth == "oauth2-proxy":
        needed.append(SecretToSet("oauth2ClientSecret", "the OIDC client secret of the entry point"))
    for receiver in settings.observability.alertmanager.receivers:
        integration = getattr(receiver, receiver.kind)
        for field in type(integration).model_fields:
            if field.endswith("_secret"):
                what = field.removesuffix("_secret").replace("_", " ")
                needed.append(SecretToSet(getattr(integration, field),
                                          f"{receiver.kind} {what} of receiver {receiver.name}", "url" in field))
    unset = {s.key: s for s in needed if f"{project}:{s.key}" not in raw}  # a key two receivers share: once
    return list(unset.values())


def secrets_text(needed: list[SecretToSet], project: str, stack: str) -> list[str]:
    if not needed:
        return ["Secrets to set before `pulumi up`: none"]
    return [f"Secrets to set before `pulumi up` ({len(needed)}; preflight planned with placeholders for them):",
            *(f"  {s.command(project, stack)}" for s in needed)]


def _resource(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] or "(stack)"


def findings(violations: list[Any] | None, verbose: bool) -> list[str]:
    """The policy findings: one line per policy and level (how many, the first message, the first resources), or
    with `verbose` each finding on its own line."""
    if violations is None:
        return ["Policies: skipped (--no-policy)"]
    levels = Counter(v.level for v in violations)
    lines = [f"Policies: {levels.get('mandatory', 0)} mandatory, {levels.get('advisory', 0)} advisory"]
    ordered = sorted(violations, key=lambda v: (v.level != "mandatory", v.policy, v.urn))
    if verbose:
        return lines + [f"  [{v.level}] {v.policy}: {_resource(v.urn)}: {v.message}" for v in ordered]
    groups: dict[tuple[str, str], list[Any]] = {}
    for v in ordered:
        groups.setdefault((v.level, v.policy), []).append(v)
    for (level, policy), found in groups.items():
        if len(found) == 1:
            lines.append(f"  [{level}] {policy}: {_resource(found[0].urn)}: {found[0].message}")
            continue
        names = [_resource(v.urn) for v in found]
        more = f" and {len(names) - FIRST} more" if len(names) > FIRST else ""
        messages = len({v.message for v in found})
        lines.append(f"  [{level}] {policy}: {len(found)} findings{f' ({messages} messages)' if messages > 1 else ''} "
                     f"on {', '.join(names[:FIRST])}{more}; the first: {found[0].message}")
    if len(groups) < len(violations):
        lines.append("  (--verbose lists every finding)")
    return lines


def type_counts(plan: Plan) -> list[str]:
    """Resources by component and type (`--verbose`)."""
    lines = []
    components = Counter(r.type for r in plan.resources if not r.custom)
    if components:
        lines.append("  components:")
        lines += [f"    {count:4d}  {typ}" for typ, count in sorted(components.items())]
    types = Counter(r.type for r in plan.resources if r.custom)
    lines.append("  resources:")
    lines += [f"    {count:4d}  {typ}" for typ, count in sorted(types.items())]
    return lines


def next_command(stack: str, policy_args: str, mandatory: bool, secrets: bool, refused: bool) -> str:
    """What to run next, given what stands in the way."""
    preview = f"pulumi preview -s {stack} {policy_args}".rstrip()
    if mandatory or refused:
        return ("Next: fix the mandatory findings (the key in parentheses) or refusals above, then run the preflight "
                f"again; then {preview}")
    first = "set the secrets above, then " if secrets else ""
    return f"Next: {first}{preview}; if it shows what you expect, pulumi up -s {stack} {policy_args}".rstrip()
