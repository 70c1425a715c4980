"""Hardening: every pod that runs Thanos has pinned images, runs as non-root on a read-only root without privilege
escalation or capabilities, with resources and probes; the stack runs one Thanos version."""

from ._register import resource_policy, stack_policy
from ._workloads import (PROMETHEUS_CR, THANOS_RULER_CR, WORKLOAD_TYPES, containers, fix, pod_spec,
                         thanos_containers)


def _pinned(image: str) -> bool:
    tail = image.rsplit("/", 1)[-1]
    return "@sha256:" in image or (":" in tail and tail.rsplit(":", 1)[1] not in ("", "latest"))


def _non_root(container: dict, pod: dict) -> bool:
    ctx, pod_ctx = container.get("securityContext") or {}, pod.get("securityContext") or {}
    non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    return bool(non_root) or (user is not None and int(user) != 0)


def validate_hardening(args, report):
    """Refuses Thanos pods with unpinned images, root, a writable root, escalation, capabilities, no resources or probes."""
    if args.resource_type in (PROMETHEUS_CR, THANOS_RULER_CR):
        spec = args.props.get("spec") or {}
        image = ((spec.get("thanos") or {}) if args.resource_type == PROMETHEUS_CR else spec).get("image")
        if image and not _pinned(image):
            report(f"the Thanos image {image} is not pinned to a version.")
        elif image and args.get_config().get("requireDigests") and "@sha256:" not in image:
            report(f"the Thanos image {image} is pinned by tag only: a tag can be moved; pin it by digest"
                   f"{fix('image-digests')}.")
        return
    if args.resource_type not in WORKLOAD_TYPES or not any(True for _ in thanos_containers(args.props, init=True)):
        return  # only pods that run Thanos: other workloads of the stack are not this pack's to judge
    pod = pod_spec(args.props)
    thanos = {id(c) for c, _, _ in thanos_containers(args.props)}
    long_running = args.resource_type not in ("kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob")
    if not (pod.get("securityContext") or {}).get("runAsNonRoot") and not all(
            _non_root(c, pod) for c in containers(args.props, init=True)):
        report("the pod does not set runAsNonRoot.")
    init = {id(c) for c in pod.get("initContainers") or []}
    for c in containers(args.props, init=True):
        name, ctx = c.get("name"), c.get("securityContext") or {}
        kind = "init container" if id(c) in init else "container"
        image = c.get("image") or ""
        if not _pinned(image):
            report(f"{kind} {name} image {image} is not pinned to a version{fix('thanos.image')}.")
        elif args.get_config().get("requireDigests") and "@sha256:" not in image:
            report(f"{kind} {name} image {image} is pinned by tag only: a tag can be moved; pin it by digest"
                   f"{fix('image-digests')}.")
        if id(c) in init and not _non_root(c, pod):
            report(f"init container {name} runs as root.")
        if not ctx.get("readOnlyRootFilesystem") or ctx.get("allowPrivilegeEscalation") is not False:
            report(f"{kind} {name} needs readOnlyRootFilesystem and allowPrivilegeEscalation false.")
        if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
            report(f"{kind} {name} does not drop ALL capabilities.")
        resources = c.get("resources") or {}
        if not resources.get("requests") or not (resources.get("limits") or {}).get("memory"):
            report(f"{kind} {name} needs resource requests and a memory limit.")
        if long_running and id(c) in thanos and (not c.get("livenessProbe") or not c.get("readinessProbe")):
            report(f"container {name} needs liveness and readiness probes.")


def validate_one_version(args, report):
    """Refuses a stack running more than one Thanos version: a half-finished upgrade mixes releases."""
    tags: dict[str, str] = {}
    for r in args.resources:
        if r.resource_type in WORKLOAD_TYPES:
            for c, _, _ in thanos_containers(r.props):
                tags.setdefault(c.get("image", "").split("@", 1)[0].rsplit(":", 1)[-1], r.urn)
    if len(tags) > 1:
        report(f"the stack runs more than one Thanos version: {', '.join(sorted(tags))}{fix('thanos.image')}.")


POLICIES = [
    resource_policy("thanos-hardening-pods", "Pinned images, non-root, read-only root, no escalation, resources, probes.",
                    validate_hardening, config={"requireDigests": {"type": "boolean", "default": False}}),
    stack_policy("thanos-hardening-one-version", "One Thanos version across the stack.", validate_one_version),
]
