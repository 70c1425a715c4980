"""The community chart (thanos-community/helm-charts 0.38, Thanos v0.42.4 from quay.io) with its options on:
`command: [thanos]` and the `--flag value` form, the query's endpoints in an inline `--endpoint.sd-config`, store
gateways as an unsharded set plus hash shards, a compactor set per shard beside the chart's default one, and a
`tools bucket replicate` Deployment. Deliberate mistakes: an endpoint naming a Service that does not exist (a typo),
the replicate job's destination left equal to its source, the unsharded compactor left running."""

import json

from .common import HARD_SPREAD, HARDENED, Finding, Fixture, objstore_yaml, pdb, probes, secret, service, workload

NS = "thanos"
IMAGE = "quay.io/thanos/thanos:v0.42.4"
POD = {"securityContext": {"runAsNonRoot": True, "runAsUser": 1001, "fsGroup": 1001}}
RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}
MOUNT = [{"name": "objstore", "mountPath": "/etc/thanos", "readOnly": True}]
VOLUMES = {"volumes": [{"name": "objstore", "secret": {"secretName": "thanos-objstore"}}]}


def thanos(args: list[str]) -> dict:
    return {"name": "thanos", "image": IMAGE, "command": ["thanos"], "args": args, "securityContext": HARDENED,
            "resources": RESOURCES, "volumeMounts": MOUNT, **probes()}


def labels(component: str, extra: dict | None = None) -> dict:
    return {"app.kubernetes.io/name": "thanos", "app.kubernetes.io/component": component, **(extra or {})}


def ha(component: str, args: list[str], kind: str = "StatefulSet", name: str | None = None,
       extra: dict | None = None) -> list[dict]:
    """A two-replica workload spread hard over nodes and zones, with its PDB."""
    selected = labels(component, extra)
    workload_name = name or f"thanos-{component}"
    return [workload(kind, workload_name, NS, selected, [thanos(args)], replicas=2,
                     pod={**POD, **VOLUMES, **HARD_SPREAD(selected)}),
            pdb(workload_name, NS, selected)]


def shard(index: int, of: int) -> str:
    rules = [{"action": "hashmod", "source_labels": ["__block_id"], "target_label": "shard", "modulus": of},
             {"action": "keep", "source_labels": ["shard"], "regex": str(index)}]
    return json.dumps(rules)


SD = json.dumps({"endpoints": [{"address": "dnssrv+_grpc._tcp.thanos-storegateway.thanos.svc.cluster.local"},
                               {"address": "dnssrv+_grpc._tcp.thanos-storegateway-0.thanos.svc.cluster.local"},
                               {"address": "dnssrv+_grpc._tcp.thanos-storegatway-1.thanos.svc.cluster.local"}]})
STORE = ["store", "--data-dir", "/var/thanos/store", "--objstore.config-file", "/etc/thanos/objstore.yml",
         "--store.limits.request-series", "1000000", "--store.limits.request-samples", "100000000",
         "--chunk-pool-size", "1GB"]
COMPACT = ["compact", "--wait", "--data-dir", "/var/thanos/compact", "--objstore.config-file",
           "/etc/thanos/objstore.yml", "--retention.resolution-raw", "30d", "--retention.resolution-5m", "90d",
           "--retention.resolution-1h", "365d"]
CLAIM = {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
    "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "200Gi"}}}}]}

FIXTURE = Fixture(
    name="thanos-community helm chart with sharding and replication",
    seen_in="thanos-community/helm-charts (chart 0.38, appVersion v0.42.4) values and templates",
    resources=[
        secret("thanos-objstore", "objstore.yml", objstore_yaml("acme-metrics", "GCS"), NS, base64_data=False),
        service("thanos-query", NS, labels("query")),
        service("thanos-storegateway", NS, labels("storegateway")),
        service("thanos-storegateway-0", NS, labels("storegateway", {"shard": "0"})),
        service("thanos-storegateway-1", NS, labels("storegateway", {"shard": "1"})),
        *ha("query", ["query", "--http-address", "0.0.0.0:10902", "--query.replica-label", "prometheus_replica",
                      "--endpoint.sd-config", SD], kind="Deployment"),
        *ha("storegateway", STORE),
        *ha("storegateway", [*STORE, "--selector.relabel-config", shard(0, 2)], name="thanos-storegateway-0",
            extra={"shard": "0"}),
        *ha("storegateway", [*STORE, "--selector.relabel-config", shard(1, 2)], name="thanos-storegateway-1",
            extra={"shard": "1"}),
        workload("StatefulSet", "thanos-compactor", NS, labels("compactor"), [thanos(COMPACT)],
                 pod={**POD, **VOLUMES}, extra_spec=CLAIM),
        *[workload("StatefulSet", f"thanos-compactor-{i}", NS, labels("compactor", {"shard": str(i)}),
                   [thanos([*COMPACT, "--selector.relabel-config", shard(i, 2)])], pod={**POD, **VOLUMES},
                   extra_spec=CLAIM) for i in (0, 1)],
        workload("Deployment", "thanos-bucket-replicate", NS, labels("bucket-replicate"), [thanos([
            "tools", "bucket", "replicate", "--objstore.config-file", "/etc/thanos/objstore.yml",
            "--objstore-to.config-file", "/etc/thanos/objstore.yml"])], pod={**POD, **VOLUMES}),
    ],
    findings=[
        Finding("thanos-compactor-one-per-bucket", "statefulset-thanos-compactor", "an unsharded compactor writes to "
                "bucket GCS:acme-metrics/ beside 2 sharded one(s)", "true", "the default compactor was left on when "
                "the sharded ones were added"),
        Finding("thanos-wiring-references", "deployment-thanos-query", "dials dnssrv+_grpc._tcp.thanos-storegatway-1"
                ".thanos.svc.cluster.local, but the stack declares no Service thanos-storegatway-1", "true",
                "a typo: shard 1 is never queried"),
        Finding("thanos-wiring-references", "deployment-thanos-bucket-replicate", "tools bucket replicate copies "
                "GCS:acme-metrics/ onto itself", "true", "the destination was left equal to the source"),
        *[Finding("thanos-exposure-admin-api-off", f"statefulset-thanos-{name}", f"thanos-{name}: thanos {command} lets "
                  "anyone who reaches its HTTP port mark every block for deletion (POST /api/v1/blocks/mark), and the "
                  "compactor then deletes them: set --disable-admin-operations.", "true",
                  "the chart leaves the v0.42.4 switch off") for command, names in (
              ("compact", ("compactor", "compactor-0", "compactor-1")),
              ("store", ("storegateway", "storegateway-0", "storegateway-1"))) for name in names],
    ],
    silent=[
        ("thanos-store-shards-cover", "an unsharded store serves every block; the hash shards only overlap it"),
        ("thanos-flags-known", "every flag, in either form, exists in v0.42.4"),
        ("thanos-ha-anti-affinity", "hard anti-affinity and a zone spread everywhere"),
        ("thanos-ha-pdb", "every multi-replica workload has its PDB"),
        ("thanos-identity-objstore-secret", "a mounted Secret"),
        ("thanos-hardening-pods", "hardened and pinned"),
        ("thanos-store-limits", "limits and a 1GB chunk pool under 4Gi"),
    ],
)
