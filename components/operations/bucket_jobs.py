"""Scheduled bucket jobs: `thanos tools bucket verify` of each bucket (read-only, in the compactor's cluster), and
for copies without native replication `tools bucket replicate` (single run) with retention and cleanup on the copy."""

from collections.abc import Sequence
from typing import Any

from components.platform.common import (
    OBJSTORE_FLAG,
    OBJSTORE_KEY,
    container,
    objstore_mount,
    objstore_volume,
    pod_spec,
    service_name,
)
from components.platform.kube import ClusterContext
from components.thanos.flags import thanos_args
from config.thanos import BucketVerifySpec, CompactorSpec, Compute, Resources

VERIFY = "thanos-bucket-verify"
REPLICA_SECRET = "thanos-objstore-replica"
TARGET_MOUNT = "/etc/thanos/objstore-to"
JOB_RESOURCES = Resources(requests=Compute(cpu="100m", memory="128Mi"), limits=Compute(memory="1Gi"))
"""The replicate, retention and cleanup jobs of in-cluster (dev) copies: small buckets; their pods come every 15
minutes beside a kind node's workloads, so the request leaves room for a rolling update (the limit allows more)."""


VERIFY_SCRIPT = """{ /bin/thanos "$@"; echo $? >/tmp/verify.status; } 2>&1 | tee /tmp/verify.log
read -r status </tmp/verify.status || exit 1
[ "$status" -eq 0 ] || exit "$status"
if grep -qE 'msg="(found overlapped blocks|detected issue)"' /tmp/verify.log; then
  echo 'bucket verify found issues (logged above): the Job fails' >&2
  exit 1
fi
"""
"""`tools bucket verify` logs what it finds and exits 0 (pkg/verifier: "found overlapped blocks", "detected issue"):
the verify container runs it through this script (the image's busybox sh, tee and grep), so a finding fails the Job
and ThanosBucketVerifyFailed fires."""
VERIFY_COMMAND = ["/bin/sh", "-c", VERIFY_SCRIPT, "thanos"]


def verify_args() -> list[str]:
    """Check the known index issues and overlapping blocks; no --repair (it would need delete rights and must never
    run beside the compactor)."""
    return thanos_args("tools bucket verify", ["--log.format=logfmt", OBJSTORE_FLAG, "--issues=index_known_issues",
                                               "--issues=overlapped_blocks"])


def replicate_args() -> list[str]:
    """One pass copying every block not yet in the copy, oldest first, meta.json last (never deletes)."""
    return thanos_args("tools bucket replicate", ["--log.format=logfmt", OBJSTORE_FLAG,
                                                  f"--objstore-to.config-file={TARGET_MOUNT}/{OBJSTORE_KEY}",
                                                  "--single-run"])


def retention_args(spec: CompactorSpec) -> list[str]:
    """The primary compactor's retention applied to the copy (identical on both sides), then marked blocks deleted."""
    r = spec.retention
    return thanos_args("tools bucket retention", [
        "--log.format=logfmt", OBJSTORE_FLAG, f"--retention.resolution-raw={r.raw}",
        f"--retention.resolution-5m={r.res_5m}", f"--retention.resolution-1h={r.res_1h}",
        f"--delete-delay={spec.delete_delay}", f"--consistency-delay={spec.consistency_delay}"])


def cleanup_args(spec: CompactorSpec) -> list[str]:
    """Delete blocks marked for deletion and aborted partial uploads on the copy."""
    return thanos_args("tools bucket cleanup", ["--log.format=logfmt", OBJSTORE_FLAG,
                                                f"--delete-delay={spec.delete_delay}",
                                                f"--consistency-delay={spec.consistency_delay}"])


def cronjob(ctx: ClusterContext, component: str, name: str, args: list[str], schedule: str, *,
            resources: Resources = JOB_RESOURCES, secret: str | None = None, extra_volumes: Sequence[dict[str, Any]] = (),
            extra_mounts: Sequence[dict[str, Any]] = (), pod_labels: dict[str, str] | None = None,
            service_account: str | None = None, command: list[str] | None = None) -> dict[str, Any]:
    """A hardened CronJob that never overlaps itself; failed runs stay listed (they alert through
    kube_job_status_failed). `secret` replaces the cluster's objstore Secret (a copy's config); `service_account`
    runs it as another component's identity; `command` replaces the image's entrypoint."""
    volume = objstore_volume()
    if secret:
        volume["secret"]["secretName"] = secret
    job = container(name, ctx.image, args, resources, ports=[], mounts=[objstore_mount(), *extra_mounts])
    if command:
        job["command"] = command
    pod = pod_spec(service_account or service_name(component), [job],
                   selector=ctx.selector(component), replicas=1, volumes=[volume, *extra_volumes], grace_seconds=30)
    pod["restartPolicy"] = "Never"
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": ctx.metadata(name, component),
            "spec": {"schedule": schedule, "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 3600,
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                     "jobTemplate": {"spec": {"backoffLimit": 1, "activeDeadlineSeconds": 4 * 3600, "template": {
                         "metadata": {"labels": {**ctx.labels(component), **(pod_labels or {})}}, "spec": pod}}}}}


def temp_dir(size: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, mount) of a writable /tmp of `size`: Thanos writes temporary files to os.TempDir() (`/tmp`), which
    the read-only root filesystem refuses."""
    return {"name": "tmp", "emptyDir": {"sizeLimit": size}}, {"name": "tmp", "mountPath": "/tmp"}


def verify_cronjob(ctx: ClusterContext, spec: BucketVerifySpec, pod_labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The daily verification of the cluster's bucket, as the bucket-verify identity (read-only), with a /tmp that
    holds the block indexes it downloads."""
    volume, mount = temp_dir(spec.temp_size)
    return cronjob(ctx, "bucket-verify", VERIFY, verify_args(), spec.schedule, resources=spec.resources,
                   pod_labels=pod_labels, extra_volumes=[volume], extra_mounts=[mount], command=VERIFY_COMMAND)


def verify_copy_cronjob(ctx: ClusterContext, spec: BucketVerifySpec, secret: str, source_region: str, reader: str,
                        pod_labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The daily verification of a DR copy, as its store gateway's reader identity."""
    volume, mount = temp_dir(spec.temp_size)
    return cronjob(ctx, "bucket-verify", f"{VERIFY}-dr-{source_region}", verify_args(), "37 4 * * *", secret=secret,
                   resources=spec.resources, pod_labels=pod_labels, service_account=reader, extra_volumes=[volume],
                   extra_mounts=[mount], command=VERIFY_COMMAND)


def replicate_cronjob(ctx: ClusterContext, schedule: str, source_secret: str) -> dict[str, Any]:
    """Copy the cluster's bucket to its DR copy: source config (a read-only user) in `source_secret`, target config
    (a user that cannot delete) in the `thanos-objstore-replica` Secret."""
    target = {"name": "objstore-to", "secret": {"secretName": REPLICA_SECRET, "defaultMode": 0o440,
                                                "items": [{"key": OBJSTORE_KEY, "path": OBJSTORE_KEY}]}}
    return cronjob(ctx, "bucket-replicate", "thanos-bucket-replicate", replicate_args(), schedule, secret=source_secret,
                   extra_volumes=[target], extra_mounts=[{"name": "objstore-to", "mountPath": TARGET_MOUNT,
                                                          "readOnly": True}])


def copy_maintenance(ctx: ClusterContext, spec: CompactorSpec, secret: str, source_region: str) -> list[dict[str, Any]]:
    """Retention and cleanup on a copy made by replicate (which never deletes), hourly, off the hour."""
    return [cronjob(ctx, "bucket-retention", f"thanos-bucket-retention-{source_region}", retention_args(spec),
                    "41 * * * *", secret=secret),
            cronjob(ctx, "bucket-cleanup", f"thanos-bucket-cleanup-{source_region}", cleanup_args(spec),
                    "53 * * * *", secret=secret)]
