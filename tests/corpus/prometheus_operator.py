"""prometheus-operator CRs (kube-prometheus with its thanos-sidecar addon): a `Prometheus` with `spec.thanos`
(objectStorageConfig as a Secret key selector, replicaExternalLabelName left at prometheus_replica) and a
`ThanosRuler`, which the operator turns into StatefulSets with no anti-affinity and no PDB of their own. The same
Prometheus copied into a second cluster without changing its external labels, a ruler on a mutable tag, and a query
that deduplicates Prometheus replicas but not the ruler's."""

from .common import (HARD_SPREAD, HARDENED, OTHER_PROVIDER, PROVIDER, Finding, Fixture, objstore_yaml, pdb, probes,
                     record, secret, service, workload)

PROMETHEUS = "kubernetes:monitoring.coreos.com/v1:Prometheus"
RULER = "kubernetes:monitoring.coreos.com/v1:ThanosRuler"


def prometheus(provider: str, suffix: str) -> dict:
    return record(PROMETHEUS, f"prometheus-k8s-{suffix}", {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
        "metadata": {"name": "k8s", "namespace": "monitoring"},
        "spec": {"replicas": 2, "version": "v3.5.0", "externalLabels": {"cluster": "eu-1"},
                 "thanos": {"version": "v0.42.4",
                            "objectStorageConfig": {"name": "thanos-objstore", "key": "objstore.yml"}}}}, provider)


QUERY_LABELS = {"app.kubernetes.io/name": "thanos-query"}

FIXTURE = Fixture(
    name="prometheus-operator Prometheus and ThanosRuler",
    seen_in="prometheus-operator ThanosSpec/ThanosRulerSpec (pkg/apis/monitoring/v1), kube-prometheus "
            "addons/thanos-sidecar.libsonnet",
    resources=[
        secret("thanos-objstore", "objstore.yml", objstore_yaml("acme-thanos-eu"), "monitoring", base64_data=False),
        secret("thanos-objstore", "objstore.yml", objstore_yaml("acme-thanos-eu"), "monitoring", base64_data=False,
               provider=OTHER_PROVIDER) | {"name": "secret-thanos-objstore-b",
                                           "urn": "urn:pulumi:ext::ext::kubernetes:core/v1:Secret::secret-b"},
        prometheus(PROVIDER, "a"),
        prometheus(OTHER_PROVIDER, "b"),
        record(RULER, "thanos-ruler", {
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ThanosRuler",
            "metadata": {"name": "thanos-ruler", "namespace": "monitoring"},
            "spec": {"image": "quay.io/thanos/thanos:latest", "queryEndpoints": ["dnssrv+_http._tcp.thanos-query.thanos.svc"],
                     "objectStorageConfig": {"name": "thanos-objstore", "key": "objstore.yml"}}}),
        service("thanos-query", "thanos", QUERY_LABELS),
        workload("Deployment", "thanos-query", "thanos", QUERY_LABELS, [{
            "name": "thanos-query", "image": "quay.io/thanos/thanos:v0.42.4", "securityContext": HARDENED,
            "resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "2Gi"}}, **probes(),
            "args": ["query", "--query.replica-label=prometheus_replica",
                     "--endpoint=dnssrv+_grpc._tcp.prometheus-operated.monitoring.svc.cluster.local"]}],
            replicas=2, pod={"securityContext": {"runAsNonRoot": True}, **HARD_SPREAD(QUERY_LABELS)}),
        pdb("thanos-query", "thanos", QUERY_LABELS),
    ],
    findings=[
        *[Finding("thanos-ha-anti-affinity", f"prometheus-k8s-{c}", "prometheus runs 2 replicas without hard pod "
                  "anti-affinity", "true", "the operator copies spec.affinity, and none is set") for c in "ab"],
        *[Finding("thanos-ha-anti-affinity", f"prometheus-k8s-{c}", "without a spread over topology.kubernetes.io/zone",
                  "true", "no topologySpreadConstraints either") for c in "ab"],
        *[Finding("thanos-ha-pdb", f"prometheus-k8s-{c}", "k8s has 2 replicas and no PodDisruptionBudget", "true",
                  "the operator manages no PDB (prometheus-operator#3917)") for c in "ab"],
        Finding("thanos-ha-min-replicas", "thanos-ruler", "rule has 1 replica(s)", "true",
                "the operator's default of one ruler: rules stop while it restarts"),
        Finding("thanos-hardening-pods", "thanos-ruler", "the Thanos image quay.io/thanos/thanos:latest is not pinned",
                "true", "a mutable tag: the version changes under a restart"),
        Finding("thanos-producers-replica-labels", "deployment-thanos-query", "query does not deduplicate on "
                "thanos_ruler_replica", "true", "the ruler's per-pod label, which the operator adds"),
        Finding("thanos-flags-known", "deployment-thanos-query", "thanos query --endpoint is deprecated in v0.42.4",
                "true", "the image is v0.42.4, where --endpoint gives way to --endpoint.sd-config"),
        Finding("thanos-producers-external-labels", "prometheus-k8s-b", "k8s and k8s upload to S3:acme-thanos-eu/ "
                "with the same external labels", "true", "the copy in cluster b kept cluster: eu-1"),
    ],
    silent=[
        ("thanos-identity-objstore-secret", "objectStorageConfig is a Secret key selector"),
        ("thanos-compactor-one-per-bucket", "no compactor here"),
    ],
)
