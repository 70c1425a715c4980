"""The post-deploy validation Job: `pulumi up` waits for it (pulumi-kubernetes awaits Jobs), so a deploy that does not
work fails the update instead of looking green. It runs `validate_deploy.py` against what the plan expects."""

import hashlib
import json
from pathlib import Path
from typing import Any

from components.observability.alertmanager import NAME as ALERTMANAGER_NAME
from components.platform.common import ALERTMANAGER_PORT, HTTP_PORT, container_security_context, pod_spec
from components.platform import names
from components.platform.kube import ClusterContext
from components.platform.names import service_url
from config.stack import StackConfig

VALIDATOR_IMAGE = "docker.io/library/python:3.12.8-alpine3.21"
SCRIPT = Path(__file__).with_name("validate_deploy.py")
MOUNT = "/opt/validate"


def url(service: str, namespace: str) -> str:
    """The HTTP API of a Service in the namespace."""
    return service_url("http", service, namespace, HTTP_PORT)


def cluster_checks(ctx: ClusterContext, stack: StackConfig) -> dict[str, Any]:
    """What must hold in one cluster: its bucket readable, its query seeing every StoreAPI pod, series from the
    cluster, the ruler's rules loaded, its Alertmanager replicas gossiping."""
    thanos, alerting = stack.thanos, stack.observability.alertmanager
    parts = max(1, len(thanos.store.time_partitions))
    stores = {"sidecar": thanos.prometheus.replicas, "store": thanos.store.replicas * thanos.store.shards * parts,
              "rule": thanos.ruler.replicas}
    if thanos.receive.enabled:
        stores["receive"] = stack.ingestors()
    return {"bucket_web": [url(names.BUCKET_WEB, ctx.namespace)] if thanos.bucket_web.enabled else [],
            "queries": [{"url": url(names.QUERY, ctx.namespace), "store_types": stores, "clusters": [ctx.cluster]}],
            "rulers": [url(names.RULER, ctx.namespace)], "attempts": 30, "interval": 10,
            "alertmanagers": [{"url": service_url("http", ALERTMANAGER_NAME, ctx.namespace, ALERTMANAGER_PORT),
                               "peers": alerting.replicas}] if alerting.enabled else []}


def global_checks(ctx: ClusterContext, stack: StackConfig) -> dict[str, Any]:
    """What must hold in a global tier: every leaf listed and healthy, series from every cluster."""
    view = stack.global_view
    assert view is not None  # only a stack with a global view has a global tier
    stores = {"query": len(stack.cluster_names())}
    if view.ruler.enabled:
        stores["rule"] = view.ruler.replicas
    return {"queries": [{"url": url(names.QUERY, ctx.namespace), "store_types": stores,
                         "clusters": stack.cluster_names()}],
            "rulers": [url(names.RULER, ctx.namespace)] if view.ruler.enabled else [], "attempts": 30, "interval": 10}


JOB_DEADLINE_SECONDS = 900
"""How long a validation Job may run (its attempts x interval fit well inside)."""


def validation_objects(ctx: ClusterContext, plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The script and plan in a ConfigMap, and a Job named after their content (a change runs it again)."""
    script, plan_text = SCRIPT.read_text(), json.dumps(plan, indent=2, sort_keys=True)
    digest = hashlib.sha256((script + plan_text + VALIDATOR_IMAGE).encode()).hexdigest()[:10]
    name = f"thanos-validate-{digest}"
    runner = {"name": "validate", "image": VALIDATOR_IMAGE, "imagePullPolicy": "IfNotPresent",
              "command": ["python", f"{MOUNT}/validate_deploy.py", f"{MOUNT}/plan.json"],
              "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
              "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
              "securityContext": container_security_context(),
              "volumeMounts": [{"name": "validate", "mountPath": MOUNT, "readOnly": True}]}
    pod = pod_spec(names.QUERY, [runner], selector=ctx.selector("validate"), replicas=1, grace_seconds=10,
                   volumes=[{"name": "validate", "configMap": {"name": name}}])
    pod["restartPolicy"] = "Never"
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(name, "validate"),
             "data": {"validate_deploy.py": script, "plan.json": plan_text}},
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": ctx.metadata(name, "validate", annotations={
                # A failed run is replaced (run again) on the next `pulumi up` instead of failing it for ever; the
                # provider waits past the Job's own deadline, so the Job's verdict is what `pulumi up` reports.
                "pulumi.com/replaceUnready": "true",
                "pulumi.com/timeoutSeconds": str(JOB_DEADLINE_SECONDS + 300)}),
             "spec": {"backoffLimit": 1, "activeDeadlineSeconds": JOB_DEADLINE_SECONDS,
                      "template": {"metadata": {"labels": ctx.labels("validate")}, "spec": pod}}}]
