"""Observatorium's rendered Thanos (observatorium/observatorium configuration/examples/dev/manifests, from its jsonnet
over kube-thanos, Thanos v0.31.0): receive with a controller-generated hashring, one hash shard of store gateways
(modulus 1) with memcached index and bucket caches, a compactor deduplicating receive replicas offline with
downsampling off, query, query-frontend with a memcached response cache (each memcached behind a headless Service,
found by SRV), and a ruler. One replica each, the objstore config from a Secret through env ($(OBJSTORE_CONFIG)), only
a pod-level runAsUser/fsGroup, `resources: {}` on every Thanos container, soft anti-affinity, no PDB, 50Gi claims.
Namespace observatorium."""

import json

import yaml

from .common import Finding, Fixture, secret, service, workload

NS = "observatorium"
PREFIX = "observatorium-xyz"
IMAGE = "quay.io/thanos/thanos:v0.31.0"
SECRET_ENV = [{"name": "OBJSTORE_CONFIG", "valueFrom": {"secretKeyRef": {"name": "thanos-objectstorage",
                                                                         "key": "thanos.yaml"}}},
              {"name": "HOST_IP_ADDRESS", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
              {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
              {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
POD = {"securityContext": {"fsGroup": 65534, "runAsUser": 65534}, "nodeSelector": {"kubernetes.io/os": "linux"}}
CLAIM = {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
    "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Gi"}}}}]}
LOG = ["--log.level=info", "--log.format=logfmt"]


def probes(port: int = 10902) -> dict:
    return {"livenessProbe": {"httpGet": {"path": "/-/healthy", "port": port}, "periodSeconds": 30, "failureThreshold": 8},
            "readinessProbe": {"httpGet": {"path": "/-/ready", "port": port}, "periodSeconds": 5, "failureThreshold": 20}}


def labels(name: str) -> dict:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": PREFIX,
            "app.kubernetes.io/part-of": "observatorium"}


def soft_spread(selected: dict) -> dict:
    return {"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": selected}, "topologyKey": key}}
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")]}}}


def thanos(kind: str, name: str, args: list[str], port: int = 10902, claim: bool = False,
           mounts: list | None = None, volumes: list | None = None) -> dict:
    selected = labels(f"thanos-{name}")
    container = {"name": f"thanos-{name}", "image": IMAGE, "args": args, "env": SECRET_ENV, "resources": {},
                 **probes(port), "volumeMounts": [*([{"name": "data", "mountPath": f"/var/thanos/{name}"}]
                                                   if claim else []), *(mounts or [])]}
    return workload(kind, f"{PREFIX}-thanos-{name}", NS, selected, [container],
                    pod={**POD, **soft_spread(selected), "volumes": volumes or []}, replicas=1,
                    extra_spec=CLAIM if claim else None)


def memcached(name: str) -> dict:
    selected = labels(f"{name}-memcached")
    return workload("StatefulSet", f"{PREFIX}-thanos-{name}-memcached", NS, selected, [
        {"name": "memcached", "image": "docker.io/memcached:1.6.3-alpine", "args": ["-m 1024", "-I 1m", "-c 1024", "-v"],
         "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "50m", "memory": "128Mi"}}},
        {"name": "exporter", "image": "prom/memcached-exporter:v0.6.0",
         "args": ["--memcached.address=localhost:11211", "--web.listen-address=0.0.0.0:9150"], "resources": {}}],
        replicas=1)


def headless(record: dict) -> dict:
    """A Service with clusterIP None, as the memcached Services are rendered: DNS lists only their ready pods."""
    record["inputs"]["spec"]["clusterIP"] = "None"
    return record


def cache(service_name: str, **config) -> str:
    return json.dumps({"type": "MEMCACHED", "config": {
        "addresses": [f"dnssrv+_client._tcp.{PREFIX}-thanos-{service_name}-memcached.{NS}.svc"], **config}})


SHARD = json.dumps([{"action": "hashmod", "source_labels": ["__block_id"], "target_label": "shard", "modulus": 1},
                    {"action": "keep", "source_labels": ["shard"], "regex": "0"}])
OBJSTORE = yaml.safe_dump({"type": "s3", "config": {"bucket": "thanos", "endpoint":
                                                    "minio.observatorium-minio.svc.cluster.local:9000",
                                                    "insecure": True, "access_key": "minio", "secret_key": "minio123"}})
DNS = f"{NS}.svc.cluster.local"
THANOS = ("receive-default", "store-shard-0", "compact", "query", "query-frontend", "rule")
"""Its Thanos workloads: every one runs one replica with only a pod-level securityContext and `resources: {}`."""
KINDS = {"query": "deployment", "query-frontend": "deployment"}


def name(component: str) -> str:
    return f"{KINDS.get(component, 'statefulset')}-{PREFIX}-thanos-{component}"


def hardening(component: str) -> list[Finding]:
    container = f"container thanos-{component}"
    return [Finding("thanos-hardening-pods", name(component), f"{container} needs readOnlyRootFilesystem", "true",
                    "no container securityContext: a writable root filesystem and escalation allowed"),
            Finding("thanos-hardening-pods", name(component), f"{container} does not drop ALL capabilities", "true",
                    "the runtime's default capabilities are kept"),
            Finding("thanos-hardening-pods", name(component), f"{container} needs resource requests and a memory "
                    "limit", "true", "`resources: {}`: unscheduled by size and unbounded")]


MIN_REPLICAS = {"receive-default": "receive", "store-shard-0": "store", "query": "query",
                "query-frontend": "query-frontend", "rule": "rule"}

FIXTURE = Fixture(
    name="Observatorium (dev manifests)",
    seen_in="observatorium/observatorium configuration/examples/dev/manifests/observatorium/thanos-*.yaml and "
            "minio-secret-thanos.yaml, commit 5a240b5d0beca9abf797fbaa783511c67ba5421d",
    resources=[
        secret("thanos-objectstorage", "thanos.yaml", OBJSTORE, NS, base64_data=False),
        *[service(f"{PREFIX}-thanos-{name}", NS, labels(f"thanos-{name}")) for name in
          ("query", "query-frontend", "receive", "receive-default", "store-shard-0", "rule", "compact")],
        *[headless(service(f"{PREFIX}-thanos-{name}", NS, labels(f"thanos-{name}")))
          for name in ("store-memcached", "query-frontend-memcached")],
        thanos("StatefulSet", "receive-default", [
            "receive", *LOG, "--grpc-address=0.0.0.0:10901", "--http-address=0.0.0.0:10902",
            "--remote-write.address=0.0.0.0:19291", "--receive.replication-factor=1", "--tsdb.path=/var/thanos/receive",
            "--tsdb.retention=4d", '--label=replica="$(NAME)"', '--label=receive="true"',
            "--objstore.config=$(OBJSTORE_CONFIG)",
            f"--receive.local-endpoint=$(NAME).{PREFIX}-thanos-receive-default.$(NAMESPACE).svc.cluster.local:10901",
            "--receive.hashrings-file=/var/lib/thanos-receive/hashrings.json"], claim=True,
            mounts=[{"name": "hashring-config", "mountPath": "/var/lib/thanos-receive"}],
            volumes=[{"name": "hashring-config", "configMap": {
                "name": f"{PREFIX}-thanos-receive-controller-tenants-generated"}}]),
        thanos("StatefulSet", "store-shard-0", [
            "store", *LOG, "--data-dir=/var/thanos/store", "--grpc-address=0.0.0.0:10901",
            "--http-address=0.0.0.0:10902", "--objstore.config=$(OBJSTORE_CONFIG)", "--ignore-deletion-marks-delay=24h",
            f"--index-cache.config={cache('store', timeout='2s', max_item_size='1MiB')}",
            f"--store.caching-bucket.config={cache('store', chunk_subrange_size=16000)}",
            f"--selector.relabel-config={SHARD}"], claim=True),
        thanos("StatefulSet", "compact", [
            "compact", "--wait", *LOG, "--objstore.config=$(OBJSTORE_CONFIG)", "--data-dir=/var/thanos/compact",
            "--debug.accept-malformed-index", "--retention.resolution-raw=14d", "--retention.resolution-5m=1s",
            "--retention.resolution-1h=1s", "--delete-delay=48h", "--compact.concurrency=1",
            "--downsample.concurrency=1", "--downsampling.disable", "--deduplication.replica-label=replica"],
            claim=True),
        thanos("Deployment", "query", [
            "query", "--grpc-address=0.0.0.0:10901", "--http-address=0.0.0.0:9090", *LOG,
            "--query.replica-label=prometheus_replica", "--query.replica-label=rule_replica",
            "--query.replica-label=replica",
            f"--store=dnssrv+_grpc._tcp.{PREFIX}-thanos-rule.{DNS}",
            f"--store=dnssrv+_grpc._tcp.{PREFIX}-thanos-store-shard-0.{DNS}",
            f"--store=dnssrv+_grpc._tcp.{PREFIX}-thanos-receive-default.{DNS}",
            "--query.timeout=15m", "--query.auto-downsampling"], port=9090),
        thanos("Deployment", "query-frontend", [
            "query-frontend", *LOG, "--query-frontend.compress-responses", "--http-address=0.0.0.0:9090",
            f"--query-frontend.downstream-url=http://{PREFIX}-thanos-query.{DNS}.:9090",
            "--query-range.split-interval=24h", "--labels.split-interval=24h",
            "--query-range.max-retries-per-request=0", "--labels.max-retries-per-request=0",
            f"--query-range.response-cache-config={cache('query-frontend', timeout='500ms')}",
            f"--labels.response-cache-config={cache('query-frontend', timeout='500ms')}",
            "--query-frontend.log-queries-longer-than=5s"], port=9090),
        thanos("StatefulSet", "rule", [
            "rule", *LOG, "--grpc-address=0.0.0.0:10901", "--http-address=0.0.0.0:10902",
            "--objstore.config=$(OBJSTORE_CONFIG)", "--data-dir=/var/thanos/rule", '--label=rule_replica="$(NAME)"',
            "--alert.label-drop=rule_replica", "--tsdb.retention=48h", "--tsdb.block-duration=2h",
            f"--query=dnssrv+_http._tcp.{PREFIX}-thanos-query.{DNS}"], claim=True),
        memcached("store"),
        memcached("query-frontend"),
    ],
    findings=[
        *[f for component in THANOS for f in hardening(component)],
        *[Finding("thanos-ha-min-replicas", name(c), f"{kind} has 1 replica(s); at least 2", "true",
                  "one replica: each rollout or node loss is an outage of that path") for c, kind in MIN_REPLICAS.items()],
        *[Finding("thanos-ha-min-replicas", f"statefulset-{PREFIX}-thanos-{pool}-memcached", "memcached has 1 "
                  "replica(s)", "true", "one cache pod: its restart sends every lookup to the bucket")
          for pool in ("store", "query-frontend")],
        Finding("thanos-store-limits", name("store-shard-0"), "the store gateway has no memory limit", "true",
                "`resources: {}` on the store gateway"),
        Finding("thanos-store-limits", name("store-shard-0"), "sets no --store.limits.request-series", "true",
                "no per-request series limit"),
        Finding("thanos-store-limits", name("store-shard-0"), "sets no --store.limits.request-samples", "true",
                "no per-request sample limit"),
        Finding("thanos-retention-minimums", name("compact"), "raw retention is below the floor of 30d", "opinion",
                "14d of raw data is Observatorium's choice; the 30d floor is the pack's (rawFloor)"),
        Finding("thanos-compactor-singleton", name("compact"), "the compactor's volume is 50Gi, below 100Gi",
                "opinion", "the floor is the pack's (minDataVolume)"),
        Finding("thanos-exposure-admin-api-off", name("compact"), "thanos compact lets anyone who reaches its HTTP "
                "port mark every block for deletion (POST /api/v1/blocks/mark), and the compactor then deletes them; "
                "v0.31.0 cannot turn that off: upgrade to v0.33.0", "true", "v0.31.0 serves the mark API with no switch"),
        Finding("thanos-exposure-admin-api-off", name("store-shard-0"), "thanos store lets anyone who reaches its HTTP "
                "port mark every block for deletion (POST /api/v1/blocks/mark), and the compactor then deletes them; "
                "v0.31.0 cannot turn that off: upgrade to v0.39.0", "true", "the store gateway's mark API, no switch"),
        *[Finding("thanos-wiring-store-cache-resolves", name("store-shard-0"), f"the store gateway's --{option} lists "
                  f"only dnssrv+_client._tcp.{PREFIX}-thanos-store-memcached.{NS}.svc: DNS discovery over a headless "
                  "Service", "true", "SRV over the headless memcached Service, one cache pod: while it is not ready "
                  "(first deploy, its restart) a starting store gateway exits")
          for option in ("index-cache.config", "store.caching-bucket.config")],
        Finding("thanos-limits-receive", name("receive-default"), "the receive router sets no "
                "--receive.limits-config-file", "true", "a router and ingestor in one (the hashring and a local "
                "endpoint) without write limits: one writer's burst of series reaches every ingestor"),
        Finding("thanos-query-strict-endpoints", name("query"), "its StoreAPI endpoint(s) dnssrv+_grpc._tcp."
                f"{PREFIX}-thanos-rule.{DNS}, dnssrv+_grpc._tcp.{PREFIX}-thanos-store-shard-0.{DNS}, dnssrv+_grpc._tcp."
                f"{PREFIX}-thanos-receive-default.{DNS} are not strict, and thanos query-frontend {PREFIX}-thanos-query-"
                "frontend caches its answers", "true", "every StoreAPI by SRV discovery: a store that fails its health "
                "check leaves the set, the answer is a silent success, and the memcached response cache keeps it"),
    ],
    silent=[
        ("thanos-producers-replica-labels", "query deduplicates on replica and rule_replica; the compactor deduplicates "
                                            "offline only on replica, which only receive stamps (identical blocks)"),
        ("thanos-producers-external-labels", "receive and rule stamp the pod's name through a fieldRef"),
        ("thanos-wiring-references", "every --store, the downstream (its trailing dot too) and both caches name "
                                     "Services of the release"),
        ("thanos-store-shards-cover", "one shard of modulus 1 serves every block"),
        ("thanos-identity-objstore-secret", "keys for the in-cluster MinIO, from a Secret through env"),
        ("thanos-flags-known", "v0.31.0: only removals are judged, and --store still exists there"),
        ("thanos-ha-pdb", "one replica each: nothing to keep available"),
        ("thanos-ha-anti-affinity", "one replica each"),
        ("thanos-compactor-one-per-bucket", "one compactor"),
        ("thanos-storage-bucket-safety", "an object store (MinIO), no FILESYSTEM bucket"),
        ("thanos-query-dedup-func", "query deduplicates Prometheus and ruler replicas beside receive's: penalty, the "
                                    "default, is the function for them"),
    ],
    missed=[
        (f"statefulset-{PREFIX}-thanos-store-memcached", "memcached -m 1024 (MB of items) under a 128Mi memory limit: "
                                                        "the cache is OOM-killed once it fills"),
        (f"statefulset-{PREFIX}-thanos-query-frontend-memcached", "the same -m 1024 under 128Mi"),
    ],
)
