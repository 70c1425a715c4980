"""An S3-compatible server (MinIO) inside the cluster for dev: pinned image, PVC, generated credentials, bucket at start."""

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_random as random
import yaml

from components.platform.common import container_security_context, pod_spec, volume_claim
from components.platform import names
from components.platform.kube import ClusterContext, register
from components.platform.names import service_address
from components.platform.workload import workload_objects
from components.storage.identity import BucketAccess
from config.storage import MINIO_CLIENT_IMAGE, InClusterStorage
from config.base import duration_seconds

NAME = names.MINIO
CREDENTIALS = "thanos-minio-credentials"
"""The server's root user and password: only the server and its setup Jobs read them."""
BLOCKS_USER = "thanos-blocks"
BLOCKS_SECRET = "thanos-minio-blocks"
"""The password of the user Thanos runs as: object actions on its cluster's bucket only (no admin, no other bucket:
not the DR copies another region keeps on this server, which have users of their own)."""
PORT = 9000


def endpoint(namespace: str) -> str:
    """host:port of the server."""
    return service_address(NAME, namespace, PORT)


def objstore_config(storage: InClusterStorage, namespace: str, user: str, password: str) -> str:
    """The objstore YAML for the in-cluster server (plain HTTP inside the cluster, dev only)."""
    return yaml.safe_dump({"type": "S3", "config": {
        "bucket": storage.bucket, "endpoint": endpoint(namespace), "insecure": True, "access_key": user,
        "secret_key": password, "bucket_lookup_type": "path"}}, sort_keys=True)


def _credentials_env() -> list[dict[str, Any]]:
    return [{"name": "MINIO_ROOT_USER", "valueFrom": {"secretKeyRef": {"name": CREDENTIALS, "key": "user"}}},
            {"name": "MINIO_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": CREDENTIALS, "key": "password"}}},
            {"name": "HOME", "value": "/tmp"}]


def _mc_env(namespace: str) -> list[dict[str, Any]]:
    """mc's alias `local` with the root credentials, from the environment (`MC_HOST_<alias>`, composed by the kubelet's
    `$(VAR)` expansion; the generated password is alphanumeric): never on a command line, where every process of the
    container could read it."""
    return [*_credentials_env(), {"name": "MC_CONFIG_DIR", "value": "/tmp/.mc"},
            {"name": "MC_HOST_local", "value": f"http://$(MINIO_ROOT_USER):$(MINIO_ROOT_PASSWORD)@{endpoint(namespace)}"}]


WAIT_FOR_SERVER = "until mc ready local >/dev/null 2>&1; do sleep 5; done"
"""Wait until the server answers (its readiness check through mc, as the alias from the environment)."""


def build_minio(ctx: ClusterContext, storage: InClusterStorage, copies: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """StatefulSet with a PVC and its Service, and a Job that creates the bucket once the server answers."""
    component = "minio"
    port = {"name": "s3", "containerPort": PORT, "protocol": "TCP"}
    health = {"periodSeconds": 10, "timeoutSeconds": 5}
    server = {
        "name": "minio", "image": storage.image, "imagePullPolicy": "IfNotPresent",
        "args": ["server", "/data", "--address", f":{PORT}", "--console-address", ":9001"],
        "env": _credentials_env(), "ports": [port],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],
        "livenessProbe": {"httpGet": {"path": "/minio/health/live", "port": "s3"}, **health},
        "readinessProbe": {"httpGet": {"path": "/minio/health/ready", "port": "s3"}, **health},
    }
    pod = pod_spec("thanos-minio", [server], selector=ctx.selector(component), replicas=1,
                   volumes=[{"name": "tmp", "emptyDir": {}}], grace_seconds=30)
    objects = workload_objects(ctx, component, NAME, kind="StatefulSet", replicas=1, pod=pod, ports=[port],
                               claims=[volume_claim("data", storage.size, None)])
    days = int(duration_seconds(storage.noncurrent_version_expiration) // 86400)
    make_bucket = {
        "name": "make-bucket", "image": MINIO_CLIENT_IMAGE, "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c"],
        "args": [WAIT_FOR_SERVER + "".join(f" && {command}" for b in (storage.bucket, *copies)
                                           for command in versioned_bucket_commands(b, days))],
        "env": _mc_env(ctx.namespace),
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    job_pod = pod_spec("thanos-minio", [make_bucket], selector=ctx.selector(component), replicas=1,
                       volumes=[{"name": "tmp", "emptyDir": {}}], grace_seconds=10)
    job_pod["restartPolicy"] = "OnFailure"
    objects.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": ctx.metadata(f"{NAME}-make-bucket", component),
                    "spec": {"backoffLimit": 20, "ttlSecondsAfterFinished": 86400,
                             "template": {"metadata": {"labels": ctx.labels("minio-setup")}, "spec": job_pod}}})
    objects.append({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": ctx.metadata("thanos-minio", component), "automountServiceAccountToken": False})
    return objects


def versioned_bucket_commands(bucket: str, noncurrent_days: int) -> list[str]:
    """mc commands making a bucket (again: each is idempotent) versioned, with noncurrent versions expired after
    `noncurrent_days`: an object a writer overwrites or deletes stays restorable that long (docs/runbooks.md)."""
    lifecycle = {"Rules": [{"ID": "noncurrent-version-expiration", "Status": "Enabled", "Filter": {"Prefix": ""},
                            "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days}}]}
    return [f"mc mb --ignore-existing local/{bucket}", f"mc version enable local/{bucket}",
            f"printf '%s' '{json.dumps(lifecycle)}' | mc ilm import local/{bucket}"]


READ_ACTIONS = ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"]
WRITE_ACTIONS = [*READ_ACTIONS, "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
BLOCK_ACTIONS = [*WRITE_ACTIONS, "s3:DeleteObject"]
"""What the Thanos components of a namespace do, together (dev shares one objstore Secret per namespace)."""


def bucket_policy(bucket: str | list[str], actions: list[str]) -> dict[str, Any]:
    """A MinIO (S3 IAM) policy granting `actions` on these buckets and their objects only."""
    buckets = [bucket] if isinstance(bucket, str) else bucket
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": [
        arn for b in buckets for arn in (f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*")]}]}


def scoped_user_job(ctx: ClusterContext, user: str, secret: str, policy: dict[str, Any]) -> dict[str, Any]:
    """A Job creating a MinIO user whose only policy is `policy` (its password from `secret`, key `password`), with
    the server's root credentials, which never leave this namespace."""
    name = f"{NAME}-user-{user}"
    script = (f"{WAIT_FOR_SERVER} && printf '%s' '{json.dumps(policy, sort_keys=True)}' > /tmp/policy.json && "
              f"mc admin policy create local {user} /tmp/policy.json && "
              f"mc admin user add local {user} \"$USER_PASSWORD\" && "
              f"(mc admin policy attach local {user} --user {user} || true)")
    job = {"name": "create-user", "image": MINIO_CLIENT_IMAGE, "imagePullPolicy": "IfNotPresent",
           "command": ["/bin/sh", "-c"], "args": [script],
           "env": [*_mc_env(ctx.namespace),
                   {"name": "USER_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}],
           "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
           "securityContext": container_security_context(), "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}
    pod = pod_spec("thanos-minio", [job], selector=ctx.selector("minio-setup"), replicas=1,
                   volumes=[{"name": "tmp", "emptyDir": {}}], grace_seconds=10)
    pod["restartPolicy"] = "OnFailure"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": ctx.metadata(name, "minio"),
            "spec": {"backoffLimit": 20, "template": {"metadata": {"labels": ctx.labels("minio-setup")}, "spec": pod}}}


def copy_user(source_region: str) -> str:
    """The user a DR copy's store gateway and maintenance jobs run as, on the server that holds the copy."""
    return f"thanos-copy-{source_region}"


def copy_user_objects(ctx: ClusterContext, source_region: str, bucket: str, password: Any) -> list[dict[str, Any]]:
    """The Secret and the Job of a copy's own user: object actions (delete included, for retention and cleanup) on
    that copy only, so no identity of the cluster holding it (its writers run as the blocks user) can touch it."""
    secret = f"{NAME}-{copy_user(source_region)}"
    return [{"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(secret, "minio"), "type": "Opaque",
             "stringData": {"password": pulumi.Output.secret(password)}},
            scoped_user_job(ctx, copy_user(source_region), secret, bucket_policy(bucket, BLOCK_ACTIONS))]


@dataclass(frozen=True)
class InClusterObjectStoreArgs:
    """The server of one cluster and the buckets it holds."""

    ctx: ClusterContext
    """The cluster it runs in."""
    storage: InClusterStorage
    """The region's storage spec (bucket, size, image, noncurrent-version expiry)."""
    after: tuple[pulumi.Resource, ...] = ()
    """What the server and its Jobs wait for (the namespace); default nothing."""
    copies: tuple[str, ...] = ()
    """The DR copies of other regions' buckets it also holds; default none."""


class InClusterObjectStore(pulumi.ComponentResource):
    """MinIO in the cluster's namespace, with generated root credentials kept as Pulumi secrets, and the user Thanos
    runs as."""

    access: BucketAccess
    """The bucket access of the one cluster it serves (as the blocks user)."""

    blocks_password: pulumi.Output[str]
    """The blocks user's generated password (a secret)."""

    setup: list[pulumi.Resource]
    """The Jobs that make the buckets and the blocks user (what Thanos waits for)."""

    def __init__(self, name: str, args: InClusterObjectStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:incluster:ObjectStore", name, {}, opts)
        ctx, storage, depends_on = args.ctx, args.storage, list(args.after)
        # Default providers are disabled for every package, random included.
        provider = random.Provider(f"{name}-random", opts=pulumi.ResourceOptions(parent=self))
        password = random.RandomPassword(f"{name}-password", length=32, special=False,
                                         opts=pulumi.ResourceOptions(parent=self, provider=provider))
        blocks = random.RandomPassword(f"{name}-blocks-password", length=32, special=False,
                                       opts=pulumi.ResourceOptions(parent=self, provider=provider))
        root = "thanos"  # the root user's name since the first release: changing it would re-key the server
        credentials = {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(CREDENTIALS, "minio"),
                       "type": "Opaque", "stringData": {"user": root, "password": password.result}}
        self.blocks_password = pulumi.Output.secret(blocks.result)
        blocks_secret = {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(BLOCKS_SECRET, "minio"),
                         "type": "Opaque", "stringData": {"password": self.blocks_password}}
        server = register([credentials, blocks_secret, *build_minio(ctx, storage, args.copies)], name, self, depends_on)
        user_job = scoped_user_job(ctx, BLOCKS_USER, BLOCKS_SECRET, bucket_policy(storage.bucket, BLOCK_ACTIONS))
        users = register([user_job], f"{name}-users", self, [*depends_on, *server.values()])
        self.setup = [r for key, r in [*server.items(), *users.items()] if key.startswith("Job/")]
        config = self.blocks_password.apply(lambda secret: objstore_config(storage, ctx.namespace, BLOCKS_USER, secret))
        self.access = BucketAccess(objstore_config=config, annotations={}, pod_labels={})
        self.register_outputs({"endpoint": endpoint(ctx.namespace), "bucket": storage.bucket})
