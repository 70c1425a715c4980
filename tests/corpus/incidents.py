"""Five incident patterns from public Thanos docs and charts, each beside its correct form, written here to reproduce
how they look in a rendered deployment (no file of theirs is copied): an unsharded compactor beside shards selected
by a relabel file, receive replicas with one literal label set, offline deduplication of Prometheus pairs with the
one-to-one merger, `bucket replicate` as a CronJob that never ends, replicas of a Deployment on one RWO claim."""

import yaml

from .common import Finding, Fixture, pdb, record, secret, workload
from .community import CLAIM, COMPACT, HARD_SPREAD, POD, STORE, VOLUMES, labels, thanos

NS = "thanos"
OBJSTORE = ["--objstore.config-file", "/etc/thanos/objstore.yml"]
BUCKET = yaml.safe_dump({"type": "S3", "config": {"bucket": "acme-blocks", "endpoint": "s3.eu-west-1.amazonaws.com"}})


def objstore() -> dict:
    return secret("thanos-objstore", "objstore.yml", BUCKET, NS, base64_data=False)


def replicated(kind: str, name: str, component: str, args: list[str], replicas: int = 2, env=None,
               volumes: list | None = None, extra: dict | None = None) -> list[dict]:
    """A workload spread hard over nodes and zones with its PDB (so only the incident is left to find)."""
    selected = labels(component, {"instance": name})
    container = thanos(args)
    if env:
        container["env"] = env
    pod = {**POD, "volumes": [*VOLUMES["volumes"], *(volumes or [])], **HARD_SPREAD(selected)}
    return [workload(kind, name, NS, selected, [container], replicas=replicas, pod=pod, extra_spec=extra),
            pdb(name, NS, selected)]


def cron_job(name: str, args: list[str]) -> dict:
    pod = {**POD, **VOLUMES, "restartPolicy": "OnFailure", "containers": [thanos(args)]}
    return record("kubernetes:batch/v1:CronJob", f"cronjob-{name}", {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": NS},
        "spec": {"schedule": "0 2 * * *", "concurrencyPolicy": "Forbid",
                 "jobTemplate": {"spec": {"template": {"spec": pod}}}}})


POD_NAME_ENV = [{"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
RECEIVE = ["receive", "--tsdb.path", "/var/thanos/receive", *OBJSTORE, "--tsdb.retention", "1d"]
SHARD_FILE = ["--selector.relabel-config-file", "/etc/thanos/shard.yaml"]
ADMIN_API_ON = ("lets anyone who reaches its HTTP port mark every block for deletion (POST /api/v1/blocks/mark), and the "
                "compactor then deletes them: set --disable-admin-operations.")
ADMIN_API_WHY = "the chart's v0.42.4 compactors and store gateways leave the switch off"

COMPACTOR_SHARDS = Fixture(
    name="compactors sharded by a relabel file beside the default one",
    seen_in="thanos-io/thanos docs/sharding.md (compactor shards chosen by --selector.relabel-config-file) with a "
            "chart's default compactor left enabled",
    resources=[
        objstore(),
        workload("StatefulSet", "thanos-compactor", NS, labels("compactor"), [thanos([*COMPACT])],
                 pod={**POD, **VOLUMES}, extra_spec=CLAIM),
        *[workload("StatefulSet", f"thanos-compactor-{i}", NS, labels("compactor", {"shard": str(i)}),
                   [thanos([*COMPACT, *SHARD_FILE])], pod={**POD, **VOLUMES}, extra_spec=CLAIM) for i in (0, 1)],
    ],
    findings=[
        Finding("thanos-compactor-one-per-bucket", "statefulset-thanos-compactor", "an unsharded compactor writes to "
                "bucket S3:acme-blocks/ beside 2 sharded one(s): it compacts the streams they own as well", "true",
                "the default compactor overlaps both shards the relabel files select"),
        *[Finding("thanos-exposure-admin-api-off", f"statefulset-{name}", ADMIN_API_ON, "true", ADMIN_API_WHY)
          for name in ("thanos-compactor", "thanos-compactor-0", "thanos-compactor-1")],
    ],
    silent=[("thanos-compactor-singleton", "each compactor is one replica on its own claim")],
)

RECEIVE_LABELS = Fixture(
    name="receive replicas with one literal label set",
    seen_in="thanos-io/thanos docs/components/receive.md (the example's literal --label receive_replica=\"0\") "
            "scaled out as a StatefulSet",
    resources=[
        objstore(),
        *replicated("StatefulSet", "thanos-receive", "receive", [*RECEIVE, "--label", 'receive_replica="0"']),
        *replicated("StatefulSet", "thanos-receive-b", "receive", [*RECEIVE, "--label", 'receive_replica="$(NAME)"',
                                                                   "--label", 'tenant="b"'], env=POD_NAME_ENV),
    ],
    findings=[
        Finding("thanos-producers-external-labels", "statefulset-thanos-receive", "thanos-receive: 2 receive replicas "
                "upload blocks with identical labels (add a per-pod replica label).", "true",
                "both pods stamp receive_replica=\"0\": their blocks overlap and the compactor halts"),
    ],
    silent=[("thanos-producers-receive-ring", "no replication factor given: each ingestor stands alone")],
)

OFFLINE_DEDUP = Fixture(
    name="offline deduplication of Prometheus pairs",
    seen_in="thanos-io/thanos docs/components/compact.md (vertical compaction: --deduplication.replica-label, "
            "penalty for Prometheus HA) with kube-prometheus' prometheus_replica",
    resources=[
        objstore(),
        workload("StatefulSet", "thanos-compactor", NS, labels("compactor"), [thanos(
            [*COMPACT, "--deduplication.replica-label", "prometheus_replica"])], pod={**POD, **VOLUMES},
            extra_spec=CLAIM),
        # The correct form, on another bucket (its own namespace and objstore Secret).
        secret("thanos-objstore", "objstore.yml", BUCKET.replace("acme-blocks", "acme-archive"), "thanos-archive",
               base64_data=False),
        workload("StatefulSet", "thanos-compactor", "thanos-archive", labels("compactor"), [thanos(
            [*COMPACT, "--deduplication.replica-label", "prometheus_replica", "--deduplication.func", "penalty"])],
            pod={**POD, **VOLUMES}, extra_spec=CLAIM),
    ],
    findings=[
        Finding("thanos-producers-replica-labels", "statefulset-thanos-compactor", "thanos-compactor: the compactor "
                "deduplicates on prometheus_replica with the one-to-one function", "true",
                "HA Prometheus pairs never write identical samples: one-to-one keeps both and doubles every series"),
        *[Finding("thanos-exposure-admin-api-off", "statefulset-thanos-compactor", ADMIN_API_ON, "true", ADMIN_API_WHY)
          for namespace in (NS, "thanos-archive")],  # one compactor of that name in each
    ],
)

REPLICATE_CRONJOB = Fixture(
    name="bucket replicate as a nightly CronJob",
    seen_in="thanos-io/thanos docs/components/tools.md (bucket replicate runs until stopped unless --single-run), "
            "run nightly as a CronJob",
    resources=[
        objstore(),
        cron_job("thanos-replicate", ["tools", "bucket", "replicate", *OBJSTORE, "--objstore-to.config-file",
                                      "/etc/thanos/dr.yml"]),
        cron_job("thanos-replicate-once", ["tools", "bucket", "replicate", *OBJSTORE, "--objstore-to.config-file",
                                           "/etc/thanos/dr.yml", "--single-run"]),
    ],
    findings=[
        Finding("thanos-batch-finishes", "cronjob-thanos-replicate", "CronJob container thanos runs thanos tools bucket "
                "replicate without --single-run", "true", "the first run never ends; with Forbid no run follows"),
    ],
)

SHARED_CLAIM = Fixture(
    name="a store gateway Deployment scaled out on one claim",
    seen_in="a store gateway run as a Deployment with one PersistentVolumeClaim (as the Bitnami chart's "
            "persistence.existingClaim mounts one), scaled to 2",
    resources=[
        objstore(),
        record("kubernetes:core/v1:PersistentVolumeClaim", "pvc-thanos-store", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "thanos-store", "namespace": NS},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Gi"}}}}),
        *replicated("Deployment", "thanos-store", "store", STORE,
                    volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "thanos-store"}}]),
    ],
    findings=[
        Finding("thanos-ha-claims", "deployment-thanos-store", "thanos-store: 2 replicas share the ReadWriteOnce claim "
                "thanos-store", "true", "the second pod waits forever for a volume attached to another node"),
        Finding("thanos-exposure-admin-api-off", "deployment-thanos-store", ADMIN_API_ON, "true", ADMIN_API_WHY),
    ],
)

FIXTURES = [COMPACTOR_SHARDS, RECEIVE_LABELS, OFFLINE_DEDUP, REPLICATE_CRONJOB, SHARED_CLAIM]
