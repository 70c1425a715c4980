"""The Bitnami chart (bitnami/thanos 13.3.0, Thanos 0.34.1): `docker.io/bitnami/thanos:0.34.1-debian-12-r0`, the
objstore config rendered into a chart Secret as base64 `data` and mounted at /conf/objstore.yml, container-level
hardening (runAsUser 1001, runAsNonRoot) with only fsGroup on the pod, the compactor as a Deployment with Recreate and
a PVC, `replica` as the replica label, and (volumePermissions.enabled) a root init container that chowns the volume.
Two releases of the chart pointed at one bucket, as happens when a second environment copies the values."""

from .common import HARDENED, Finding, Fixture, objstore_yaml, probes, secret, service, workload

NS = "monitoring"
IMAGE = "docker.io/bitnami/thanos:0.34.1-debian-12-r0"
CONTAINER_CONTEXT = {**HARDENED, "runAsUser": 1001, "privileged": False, "seccompProfile": {"type": "RuntimeDefault"}}
POD = {"securityContext": {"fsGroup": 1001, "fsGroupChangePolicy": "Always"}}
RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "4Gi"}}
OBJSTORE = [{"name": "objstore-config", "mountPath": "/conf", "readOnly": True}]


def volumes(release: str) -> list[dict]:
    return [{"name": "objstore-config", "secret": {"secretName": f"{release}-thanos-objstore-secret",
                                                  "items": [{"key": "objstore.yml", "path": "objstore.yml"}]}}]


def labels(release: str, component: str) -> dict:
    return {"app.kubernetes.io/instance": release, "app.kubernetes.io/name": "thanos",
            "app.kubernetes.io/component": component}


def thanos(name: str, args: list[str], env: list | None = None, mounts: list | None = None) -> dict:
    return {"name": name, "image": IMAGE, "imagePullPolicy": "IfNotPresent", "args": args,
            "securityContext": CONTAINER_CONTEXT, "resources": RESOURCES, "env": env or [],
            "volumeMounts": [*(mounts or []), *OBJSTORE], **probes()}


def release(name: str, bucket: str) -> list[dict]:
    store_labels, compact_labels = labels(name, "storegateway"), labels(name, "compactor")
    volume_permissions = {"name": "init-chmod-data", "image": "docker.io/bitnami/os-shell:12-debian-12-r16",
                          "command": ["/bin/bash", "-ec", "chown -R 1001:1001 /data"],
                          "securityContext": {"runAsUser": 0}, "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    return [
        secret(f"{name}-thanos-objstore-secret", "objstore.yml", objstore_yaml(bucket), NS),
        service(f"{name}-thanos-query", NS, labels(name, "query"), ports=(("http", 9090), ("grpc", 10901))),
        service(f"{name}-thanos-storegateway", NS, store_labels),
        workload("Deployment", f"{name}-thanos-query", NS, labels(name, "query"), [thanos("query", [
            "query", "--log.level=info", "--log.format=logfmt", "--grpc-address=0.0.0.0:10901",
            "--http-address=0.0.0.0:10902", "--query.replica-label=replica",
            f"--endpoint=dnssrv+_grpc._tcp.{name}-thanos-storegateway.{NS}.svc.cluster.local"])], pod=POD),
        workload("StatefulSet", f"{name}-thanos-storegateway", NS, store_labels, [thanos("storegateway", [
            "store", "--log.level=info", "--log.format=logfmt", "--grpc-address=0.0.0.0:10901",
            "--http-address=0.0.0.0:10902", "--data-dir=/data", "--objstore.config-file=/conf/objstore.yml",
            "--chunk-pool-size=1GB", "--store.limits.request-series=1000000",
            "--store.limits.request-samples=100000000"],
            mounts=[{"name": "data", "mountPath": "/data"}])], pod={**POD, "volumes": volumes(name)}),
        workload("Deployment", f"{name}-thanos-compactor", NS, compact_labels, [thanos("compactor", [
            "compact", "--log.level=info", "--log.format=logfmt", "--http-address=0.0.0.0:10902", "--data-dir=/data",
            "--retention.resolution-raw=30d", "--retention.resolution-5m=30d", "--retention.resolution-1h=10y",
            "--consistency-delay=30m", "--objstore.config-file=/conf/objstore.yml", "--wait"],
            mounts=[{"name": "data", "mountPath": "/data"}])],
            pod={**POD, "initContainers": [volume_permissions],
                 "volumes": [*volumes(name), {"name": "data", "persistentVolumeClaim": {
                     "claimName": f"{name}-thanos-compactor"}}]},
            extra_spec={"strategy": {"type": "Recreate"}}),
    ]


FIXTURE = Fixture(
    name="bitnami/thanos chart, two releases on one bucket",
    seen_in="bitnami/charts bitnami/thanos 13.3.0 values.yaml and templates (query, storegateway, compactor)",
    resources=[*release("prod", "acme-thanos"), *release("staging", "acme-thanos")],
    findings=[
        Finding("thanos-compactor-one-per-bucket", "deployment-staging-thanos-compactor", "2 compactors write to "
                "bucket S3:acme-thanos/", "true", "both releases compact the one bucket (resolved through the "
                "mounted chart Secret's base64 data)"),
        *[Finding("thanos-ha-min-replicas", f"{kind}-{release}-thanos-{component}", f"{name} has 1 replica(s)",
                  "true", "the chart's default of one replica")
          for release in ("prod", "staging")
          for kind, component, name in (("deployment", "query", "query"), ("statefulset", "storegateway", "store"))],
        *[Finding("thanos-hardening-pods", f"deployment-{release}-thanos-compactor", "init container init-chmod-data "
                  "runs as root", "true", "volumePermissions chowns the volume as root")
          for release in ("prod", "staging")],
        *[Finding("thanos-hardening-pods", f"deployment-{release}-thanos-compactor", f"init container init-chmod-data "
                  f"{problem}", "true", "the os-shell init container is not hardened")
          for release in ("prod", "staging")
          for problem in ("needs readOnlyRootFilesystem", "does not drop ALL", "needs resource requests")],
        *[Finding("thanos-hardening-pods", f"deployment-{release}-thanos-compactor", "the pod does not set "
                  "runAsNonRoot", "true", "one of its containers (the init container) runs as root")
          for release in ("prod", "staging")],
        *[Finding("thanos-exposure-admin-api-off", f"deployment-{release}-thanos-compactor", "thanos compact lets "
                  "anyone who reaches its HTTP port mark every block for deletion (POST /api/v1/blocks/mark), and the "
                  "compactor then deletes them: set --disable-admin-operations.", "true",
                  "0.34.1 has the switch, and the chart leaves it off") for release in ("prod", "staging")],
        *[Finding("thanos-exposure-admin-api-off", f"statefulset-{release}-thanos-storegateway", "thanos store lets "
                  "anyone who reaches its HTTP port mark every block for deletion (POST /api/v1/blocks/mark), and the "
                  "compactor then deletes them; v0.34.1 cannot turn that off: upgrade to v0.39.0", "true",
                  "the store gateway of 0.34.1 serves the mark API with no switch") for release in ("prod", "staging")],
    ],
    silent=[
        ("thanos-flags-known", "0.34.1 is judged only for removed flags, and it uses none"),
        ("thanos-identity-objstore-secret", "the objstore config is a mounted Secret"),
        ("thanos-store-limits", "limits set and a 1GB chunk pool under the 4Gi memory limit"),
        ("thanos-retention-minimums", "raw 30d, 5m 30d, 1h 10y: ordered and above the minimums"),
        ("thanos-wiring-references", "the endpoint names the release's storegateway Service"),
    ],
)
