"""kube-thanos' example manifests (examples/all/manifests, rendered with Thanos v0.30.2): `args: [<command>, ...]`,
the objstore config from a Secret key through env OBJSTORE_CONFIG and `--objstore.config=$(OBJSTORE_CONFIG)`, replica
labels from a `NAME` env var that a fieldRef fills with the pod's name, soft anti-affinity, one replica each,
example resources of 123Mi/420Mi, a memcached address left as a `<MEMCACHED_SERVICE>` placeholder, and no
container-level hardening on the compactor and the receive ingestors."""

from .common import HARDENED, SOFT_ANTI_AFFINITY, Finding, Fixture, objstore_yaml, probes, secret, service, workload

NS = "thanos"
IMAGE = "quay.io/thanos/thanos:v0.30.2"
ENV = [{"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
       {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
       {"name": "OBJSTORE_CONFIG", "valueFrom": {"secretKeyRef": {"name": "thanos-objectstorage", "key": "thanos.yaml"}}}]
RESOURCES = {"requests": {"cpu": "0.123", "memory": "123Mi"}, "limits": {"cpu": "0.420", "memory": "420Mi"}}
POD = {"securityContext": {"runAsUser": 65534, "runAsGroup": 65532, "fsGroup": 65534, "runAsNonRoot": True,
                           "seccompProfile": {"type": "RuntimeDefault"}},
       "nodeSelector": {"kubernetes.io/os": "linux"}, "terminationGracePeriodSeconds": 120}


def thanos(name: str, args: list[str], hardened: bool = True, mounts: list | None = None) -> dict:
    c = {"name": name, "image": IMAGE, "args": args, "env": ENV, "resources": RESOURCES, **probes()}
    if hardened:
        c["securityContext"] = HARDENED
    if mounts:
        c["volumeMounts"] = mounts
    return c


def labels(component: str) -> dict:
    return {"app.kubernetes.io/component": component, "app.kubernetes.io/instance": "thanos",
            "app.kubernetes.io/name": f"thanos-{component}"}


def pod_with(component: str) -> dict:
    return {**POD, "affinity": SOFT_ANTI_AFFINITY(labels(component))}


def claim(size: str = "10Gi") -> dict:
    return {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}]}


MEMCACHED = ('--index-cache.config={"type": "MEMCACHED", "config": {"addresses": '
             '["dnssrv+_client._tcp.<MEMCACHED_SERVICE>.thanos.svc"]}}')

FIXTURE = Fixture(
    name="kube-thanos examples/all",
    seen_in="thanos-io/kube-thanos examples/all/manifests (rendered by all.jsonnet, Thanos v0.30.2)",
    resources=[
        secret("thanos-objectstorage", "thanos.yaml", objstore_yaml("thanos"), NS),
        service("thanos-query", NS, labels("query"), ports=(("grpc", 10901), ("http", 9090))),
        service("thanos-store", NS, labels("store")),
        service("thanos-rule", NS, labels("rule")),
        service("thanos-receive-ingestor-default", NS, labels("receive")),
        workload("Deployment", "thanos-query", NS, labels("query"), [thanos("thanos-query", [
            "query", "--grpc-address=0.0.0.0:10901", "--http-address=0.0.0.0:9090", "--log.level=info",
            "--query.replica-label=prometheus_replica", "--query.replica-label=rule_replica",
            "--query.replica-label=replica",
            "--endpoint=dnssrv+_grpc._tcp.thanos-store.thanos.svc.cluster.local",
            "--endpoint=dnssrv+_grpc._tcp.thanos-rule.thanos.svc.cluster.local",
            "--endpoint=dnssrv+_grpc._tcp.thanos-receive-ingestor-default.thanos.svc.cluster.local",
            "--query.timeout=5m", "--query.lookback-delta=15m", "--query.auto-downsampling"])],
            pod=pod_with("query")),
        workload("StatefulSet", "thanos-store", NS, labels("store"), [thanos("thanos-store", [
            "store", "--data-dir=/var/thanos/store", "--grpc-address=0.0.0.0:10901", "--http-address=0.0.0.0:10902",
            "--objstore.config=$(OBJSTORE_CONFIG)", "--ignore-deletion-marks-delay=24h", MEMCACHED],
            mounts=[{"name": "data", "mountPath": "/var/thanos/store"}])],
            pod=pod_with("store"), extra_spec=claim()),
        workload("StatefulSet", "thanos-compact", NS, labels("compact"), [thanos("thanos-compact", [
            "compact", "--wait", "--log.level=info", "--objstore.config=$(OBJSTORE_CONFIG)",
            "--data-dir=/var/thanos/compact", "--debug.accept-malformed-index", "--retention.resolution-raw=0d",
            "--retention.resolution-5m=0d", "--retention.resolution-1h=0d", "--delete-delay=48h",
            "--compact.concurrency=1", "--downsample.concurrency=1", "--deduplication.replica-label=replica"],
            hardened=False, mounts=[{"name": "data", "mountPath": "/var/thanos/compact"}])],
            pod=POD, extra_spec=claim()),
        workload("StatefulSet", "thanos-rule", NS, labels("rule"), [thanos("thanos-rule", [
            "rule", "--data-dir=/var/thanos/rule", "--grpc-address=0.0.0.0:10901", "--http-address=0.0.0.0:10902",
            "--objstore.config=$(OBJSTORE_CONFIG)", '--label=rule_replica="$(NAME)"', "--alert.label-drop=rule_replica",
            "--query=dnssrv+_http._tcp.thanos-query.thanos.svc.cluster.local", "--tsdb.retention=48h",
            "--tsdb.block-duration=2h", "--rule-file=/etc/thanos/rules/*.yaml"])],
            replicas=2, pod=pod_with("rule"), extra_spec=claim()),
        workload("StatefulSet", "thanos-receive-ingestor-default", NS, labels("receive"), [thanos(
            "thanos-receive", [
                "receive", "--tsdb.path=/var/thanos/receive", "--grpc-address=0.0.0.0:10901",
                "--http-address=0.0.0.0:10902", "--remote-write.address=0.0.0.0:19291",
                "--receive.replication-factor=1", "--objstore.config=$(OBJSTORE_CONFIG)", "--tsdb.retention=15d",
                '--label=replica="$(NAME)"', '--label=receive="true"',
                "--receive.local-endpoint=$(NAME).thanos-receive-ingestor-default.$(NAMESPACE).svc.cluster.local:10901"],
            hardened=False, mounts=[{"name": "data", "mountPath": "/var/thanos/receive"}])],
            pod={**POD, "terminationGracePeriodSeconds": 900}, extra_spec=claim()),
    ],
    findings=[
        Finding("thanos-ha-min-replicas", "deployment-thanos-query", "query has 1 replica(s); at least 2", "true",
                "the examples run one query: a rollout or a node loss takes the read path down"),
        Finding("thanos-ha-min-replicas", "statefulset-thanos-store", "store has 1 replica(s)", "true",
                "one store gateway: history is unreadable while it restarts"),
        Finding("thanos-ha-min-replicas", "statefulset-thanos-receive-ingestor-default", "receive has 1 replica(s)",
                "true", "one ingestor with replication factor 1: its restart loses remote writes"),
        Finding("thanos-ha-anti-affinity", "statefulset-thanos-rule", "rule runs 2 replicas without hard pod "
                "anti-affinity", "opinion", "kube-thanos spreads softly (preferred); the pack wants it required"),
        Finding("thanos-ha-anti-affinity", "statefulset-thanos-rule", "rule runs 2 replicas without a spread over "
                "topology.kubernetes.io/zone", "true", "nothing keeps both rulers out of one zone"),
        Finding("thanos-ha-pdb", "statefulset-thanos-rule", "thanos-rule has 2 replicas and no PodDisruptionBudget",
                "true", "kube-thanos ships PDBs only for receive (kube-thanos#306)"),
        Finding("thanos-store-limits", "statefulset-thanos-store", "sets no --store.limits.request-series", "true",
                "no per-request series limit: one wide query can OOM the store"),
        Finding("thanos-store-limits", "statefulset-thanos-store", "sets no --store.limits.request-samples", "true",
                "no per-request sample limit"),
        Finding("thanos-store-limits", "statefulset-thanos-store", "chunk pool (2GB) is not below its memory limit "
                "(420Mi)", "true", "the default 2 GB chunk pool cannot fit under the 420Mi example limit"),
        Finding("thanos-compactor-singleton", "statefulset-thanos-compact", "the compactor's volume is 10Gi, below "
                "100Gi", "opinion", "the 10Gi example volume; the floor is the pack's (minDataVolume)"),
        Finding("thanos-hardening-pods", "statefulset-thanos-compact", "container thanos-compact needs "
                "readOnlyRootFilesystem", "true", "no container securityContext on the compactor"),
        Finding("thanos-hardening-pods", "statefulset-thanos-compact", "container thanos-compact does not drop ALL",
                "true", "capabilities kept"),
        Finding("thanos-hardening-pods", "statefulset-thanos-receive-ingestor-default", "container thanos-receive "
                "needs readOnlyRootFilesystem", "true", "no container securityContext on the ingestors"),
        Finding("thanos-hardening-pods", "statefulset-thanos-receive-ingestor-default", "container thanos-receive "
                "does not drop ALL", "true", "capabilities kept"),
        Finding("thanos-wiring-references", "statefulset-thanos-store", "dials dnssrv+_client._tcp.<MEMCACHED_SERVICE>"
                ".thanos.svc, an unfilled placeholder", "true", "the example leaves the memcached Service to the user"),
        Finding("thanos-exposure-admin-api-off", "statefulset-thanos-compact", "thanos compact lets anyone who reaches "
                "its HTTP port mark every block for deletion (POST /api/v1/blocks/mark), and the compactor then deletes "
                "them; v0.30.2 cannot turn that off: upgrade to v0.33.0", "true",
                "v0.30.2 serves the mark API on 10902 with no switch, and the examples ship no NetworkPolicy"),
        Finding("thanos-exposure-admin-api-off", "statefulset-thanos-store", "thanos store lets anyone who reaches its "
                "HTTP port mark every block for deletion (POST /api/v1/blocks/mark), and the compactor then deletes "
                "them; v0.30.2 cannot turn that off: upgrade to v0.39.0", "true",
                "the store gateway serves the same mark API; its switch came only in v0.39.0"),
        Finding("thanos-wiring-store-cache-resolves", "statefulset-thanos-store", "the store gateway's "
                "--index-cache.config lists only dnssrv+_client._tcp.<MEMCACHED_SERVICE>.thanos.svc: DNS discovery over "
                "a headless Service", "true", "SRV discovery of the memcached Service, which kube-thanos renders "
                "headless: with no cache pod ready (first deploy, a cache rollout) the store exits at start"),
    ],
    silent=[
        ("thanos-identity-objstore-secret", "the objstore config comes from a Secret through env, not inline"),
        ("thanos-flags-known", "v0.30.2 flags are judged only for removals; --endpoint is not removed"),
        ("thanos-producers-external-labels", "replica=\"$(NAME)\" is the pod's name through a fieldRef"),
        ("thanos-producers-blocks-and-labels", "the ruler labels and drops rule_replica"),
        ("thanos-producers-replica-labels", "query deduplicates on replica and rule_replica"),
        ("thanos-compactor-one-per-bucket", "one compactor on the bucket"),
        ("thanos-retention-minimums", "0d keeps every resolution forever"),
    ],
)
