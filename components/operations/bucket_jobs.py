"""Scheduled bucket jobs: `thanos tools bucket verify` of the bucket, read-only, in the compactor's cluster."""

from typing import Any

from components.platform.common import (
    OBJSTORE_FLAG,
    container,
    objstore_mount,
    objstore_volume,
    pod_spec,
    service_name,
)
from components.platform.kube import ClusterContext
from components.thanos.flags import thanos_args
from config.thanos import BucketVerifySpec

VERIFY = "thanos-bucket-verify"


def verify_args() -> list[str]:
    """Check the known index issues and overlapping blocks; no --repair (it would need delete rights and must never
    run beside the compactor)."""
    return thanos_args("tools bucket verify", ["--log.format=logfmt", OBJSTORE_FLAG, "--issues=index_known_issues",
                                               "--issues=overlapped_blocks"])


def verify_cronjob(ctx: ClusterContext, spec: BucketVerifySpec, pod_labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A CronJob that never overlaps itself; failed runs stay listed (and alert through kube_job_status_failed)."""
    component = "bucket-verify"
    pod = pod_spec(service_name(component), [container(
        "thanos-bucket-verify", ctx.image, verify_args(), spec.resources, ports=[], mounts=[objstore_mount()])],
        selector=ctx.selector(component), replicas=1, volumes=[objstore_volume()], grace_seconds=30)
    pod["restartPolicy"] = "Never"
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": ctx.metadata(VERIFY, component),
            "spec": {"schedule": spec.schedule, "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 3600,
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                     "jobTemplate": {"spec": {"backoffLimit": 1, "activeDeadlineSeconds": 4 * 3600, "template": {
                         "metadata": {"labels": {**ctx.labels(component), **(pod_labels or {})}}, "spec": pod}}}}}
