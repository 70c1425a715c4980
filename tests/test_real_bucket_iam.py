"""A writer identity damages at most what it is meant to write: the plan's own IAM documents, judged by a real
IAM-style evaluator where no cloud runs. MinIO evaluates S3 identity policies with AWS' logic for what these
documents use (an explicit Deny wins; `Null`; a negated string operator is true when the key is absent) and with
the same condition keys (`s3:x-amz-storage-class`, `s3:x-amz-server-side-encryption-customer-algorithm`), so each
component role of prod's plan becomes a MinIO user with its exact policy, and S3 requests decide what it may do.

MinIO takes SSE-C only over TLS (it refuses it before any policy otherwise), so the server here serves HTTPS on
loopback. It accepts the classes STANDARD and REDUCED_REDUNDANCY only: REDUCED_REDUNDANCY stands for every class
that is not STANDARD (DEEP_ARCHIVE, GLACIER), which the plan denies by the same condition.

dev runs as planned: seattle's MinIO with its planned setup Jobs (the real mc) and the users and passwords of the
plan's objstore Secrets."""

import base64
import hashlib
import json
import os
import secrets
import subprocess
import urllib.request
import ssl
from contextlib import contextmanager
from pathlib import Path

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.realtools import Harness
from tests.realtools.build import tool
from tests.realtools.devstack import CLUSTERS, s3_client
from tests.realtools.kubernetes import _certificates, _die_with_parent, free_port, wait_until
from tests.realtools.plan import kubernetes_clusters, kubernetes_objects
from tests.realtools.pods import planned_containers

SEATTLE_BUCKET, CHICAGO_BUCKET = "acme-thanos-prod-us-west-2", "acme-thanos-prod-us-east-1"
BLOCK = "01JBLOCK0000000000000000AA"
OTHER_CLASS = "REDUCED_REDUNDANCY"


class Minio:
    """A MinIO server on loopback over TLS, its root credentials and a CA file that verifies it."""

    def __init__(self, url: str, root: tuple[str, str], ca: Path, workdir: Path):
        self.url, self.root, self.ca, self.workdir = url, root, ca, workdir

    def client(self, user: str, password: str):
        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=user, aws_secret_access_key=password,
                            region_name="us-east-1", verify=str(self.ca),
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

    def mc(self, *args: str) -> str:
        """The real mc as the root user (it trusts the server's CA from its config folder)."""
        config = self.workdir / "mc"
        (config / "certs" / "CAs").mkdir(parents=True, exist_ok=True)
        (config / "certs" / "CAs" / "ca.crt").write_bytes(self.ca.read_bytes())
        host = self.url.replace("https://", f"https://{self.root[0]}:{self.root[1]}@")
        proc = subprocess.run([str(tool("mc")), *args], capture_output=True, text=True, timeout=60,
                              env={"MC_CONFIG_DIR": str(config), "PATH": os.environ["PATH"], "MC_HOST_root": host})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def user(self, name: str, policy: dict) -> tuple[str, str]:
        """A user whose only policy is `policy`; returns its credentials."""
        document = self.workdir / f"{name}.json"
        document.write_text(json.dumps(policy))
        password = secrets.token_hex(16)
        self.mc("admin", "policy", "create", "root", name, str(document))
        self.mc("admin", "user", "add", "root", name, password)
        self.mc("admin", "policy", "attach", "root", name, "--user", name)
        return name, password


@contextmanager
def minio_over_tls(workdir: Path, buckets: list[str]):
    """The real MinIO on 127.0.0.1 with a serving certificate from a CA of its own, `buckets` made; stopped after."""
    certs = _certificates(workdir / "pki")
    certs_dir = workdir / "minio-certs"
    certs_dir.mkdir()
    (certs_dir / "public.crt").write_bytes(certs["apiserver.crt"].read_bytes())
    (certs_dir / "private.key").write_bytes(certs["apiserver.key"].read_bytes())
    port, root = free_port(), ("root-" + secrets.token_hex(4), secrets.token_hex(16))
    env = {"PATH": os.environ["PATH"], "HOME": str(workdir), "MINIO_ROOT_USER": root[0],
           "MINIO_ROOT_PASSWORD": root[1], "MINIO_BROWSER": "off"}
    log = (workdir / "minio.log").open("w")
    process = subprocess.Popen([str(tool("minio")), "server", str(workdir / "data"), "--address", f"127.0.0.1:{port}",
                                "--console-address", f"127.0.0.1:{free_port()}", "--certs-dir", str(certs_dir)],
                               env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    url = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(certs["ca.crt"]))

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/minio/health/ready", timeout=2, context=context) as response:
                return response.status == 200
        except OSError:
            return process.poll() is not None
    try:
        assert wait_until(ready, 60) and process.poll() is None, (workdir / "minio.log").read_text()[-3000:]
        server = Minio(url, root, certs["ca.crt"], workdir)
        admin = server.client(*root)
        for bucket in buckets:
            admin.create_bucket(Bucket=bucket)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def refused(call) -> bool:
    """Whether S3 refuses the request to the identity: AccessDenied, a user this server does not know, or one it
    knows with another password (chicago's `thanos-blocks` on seattle's server); anything else that fails is an error
    of the test."""
    try:
        call()
    except ClientError as error:
        if error.response["Error"]["Code"] in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return True
        raise
    return False


def customer_key() -> dict[str, str]:
    """SSE-C request parameters with a fresh key."""
    key = secrets.token_bytes(32)
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(key).decode(),
            "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode()}


def role_policies(planned) -> dict[str, dict]:
    """prod's component role policies by `<cluster>-<component>` (the region's objectstore prefix removed)."""
    found = {}
    for resource in planned["prod"].resources("aws:iam/rolePolicy:RolePolicy"):
        name = resource["name"].split("-objectstore-", 1)[1]
        if name != "replication":
            found[name] = json.loads(resource["inputs"]["policy"])
    return found


def s3_only(document: dict) -> dict:
    """The document without its KMS statement: MinIO's policies know no kms:Decrypt (and SSE-KMS is not asked here);
    every statement about S3 stays as planned."""
    return {**document, "Statement": [s for s in document["Statement"] if not any(
        a.startswith("kms:") for a in s["Action"])]}


def what_it_may_do(client, bucket: str, admin) -> dict[str, bool]:
    """Each damaging request an identity might make on a block of `bucket`: True where it succeeds. The block's
    objects are put back by the root user first, so each request meets a block as a writer left it."""
    meta, chunk = f"{BLOCK}/meta.json", f"{BLOCK}/chunks/000001"

    def reset():
        for key in (meta, chunk):
            admin.put_object(Bucket=bucket, Key=key, Body=b'{"ulid": "%s"}' % BLOCK.encode())
    outcomes = {}
    requests = {
        "upload": lambda: client.put_object(Bucket=bucket, Key=f"{BLOCK}/index", Body=b"index"),
        "upload STANDARD": lambda: client.put_object(Bucket=bucket, Key=f"{BLOCK}/index", Body=b"i",
                                                     StorageClass="STANDARD"),
        "overwrite meta.json": lambda: client.put_object(Bucket=bucket, Key=meta, Body=b"{"),
        "re-class on upload": lambda: client.put_object(Bucket=bucket, Key=chunk, Body=b"c", StorageClass=OTHER_CLASS),
        "re-class in place": lambda: client.copy_object(Bucket=bucket, Key=chunk, StorageClass=OTHER_CLASS,
                                                        CopySource={"Bucket": bucket, "Key": chunk},
                                                        MetadataDirective="REPLACE"),
        "re-class by multipart upload": lambda: client.create_multipart_upload(Bucket=bucket, Key=chunk,
                                                                              StorageClass=OTHER_CLASS),
        "encrypt with its own key": lambda: client.put_object(Bucket=bucket, Key=chunk, Body=b"c", **customer_key()),
        "encrypt in place with its own key": lambda: client.copy_object(
            Bucket=bucket, Key=chunk, CopySource={"Bucket": bucket, "Key": chunk}, MetadataDirective="REPLACE",
            **customer_key()),
        "delete": lambda: client.delete_object(Bucket=bucket, Key=chunk),
        "mark for deletion": lambda: client.put_object(Bucket=bucket, Key=f"{BLOCK}/deletion-mark.json", Body=b"{}"),
    }
    for name, request in requests.items():
        reset()
        outcomes[name] = not refused(request)
    return outcomes


ALLOWED = {"writer": {"upload", "upload STANDARD", "overwrite meta.json"},
           "compactor": {"upload", "upload STANDARD", "overwrite meta.json", "delete", "mark for deletion"}}


def test_the_plans_s3_roles_cannot_re_class_or_encrypt_blocks_away_nor_reach_another_regions_bucket(planned, tmp_path):
    """prod's seattle writers (sidecar, ruler, receive) upload and may overwrite in their bucket (the trade-off: no
    per-writer prefix, docs/dr.md) but neither delete nor mark, nor move a block to another storage class, nor
    encrypt it with a key of their own; the compactor deletes and marks but is held to the same two denies. chicago's
    identities, every one, can do nothing to seattle's bucket. The old documents let every uploader re-class and
    encrypt: those rows fail on them."""
    policies = role_policies(planned)
    assert {"seattle-prometheus", "seattle-ruler", "seattle-receive", "seattle-compactor", "chicago-receive"} <= \
        set(policies), sorted(policies)
    with minio_over_tls(tmp_path, [SEATTLE_BUCKET, CHICAGO_BUCKET]) as server:
        admin = server.client(*server.root)
        found, expected = {}, {}
        for name, document in sorted(policies.items()):
            if not name.startswith(("seattle-", "chicago-")) or "-store-dr-" in name:
                continue  # the DR store gateways read the other region's DR copy, which this server does not hold
            user = server.user(name, s3_only(document))
            found[name] = what_it_may_do(server.client(*user), SEATTLE_BUCKET, admin)
            component = name.split("-", 1)[1]
            role = "compactor" if component == "compactor" else \
                "writer" if component in ("prometheus", "ruler", "receive") else "reader"
            expected[name] = {r: name.startswith("seattle-") and r in ALLOWED.get(role, set()) for r in found[name]}
        assert len(found) == 2 * 7, sorted(found)
        wrong = [f"{name} {request}: {'done' if found[name][request] else 'refused'}" for name in found
                 for request in found[name] if found[name][request] != expected[name][request]]
        assert wrong == []


def planned_identities(objects) -> dict[tuple[str, str], dict]:
    """(namespace, Secret name) -> the S3 config of every planned objstore Secret of dev (user and password)."""
    found = {}
    for _, obj in objects:
        if obj["kind"] == "Secret":
            for text in (obj.get("stringData") or {}).values():
                if isinstance(text, str) and "type: S3" in text:
                    found[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = yaml.safe_load(text)["config"]
    return found


def test_in_dev_no_cluster_identity_reaches_another_clusters_blocks_and_the_replicator_never_deletes(tmp_path):
    """seattle's planned MinIO holds seattle's bucket and chicago's DR copy. Every Thanos component of seattle runs as
    `thanos-blocks`: it writes and deletes in thanos-seattle and cannot touch the copy; the copy's store gateway,
    retention and cleanup run as its own user (thanos-copy-us-central); chicago's replicate job writes the copy as
    `thanos-replicate-write`, which writes and overwrites there (replicate replaces a meta.json that differs; the copy
is versioned) but never deletes nor reaches seattle's blocks; chicago's `thanos-blocks` (its
    password is chicago's) is no user here. The old plan gave seattle's `thanos-blocks` the copy too: a seattle
    writer deleted chicago's DR history."""
    objects = kubernetes_objects("dev")
    seattle, chicago = CLUSTERS["seattle"], CLUSTERS["chicago"]
    identities = planned_identities(objects)
    names = {"seattle thanos-blocks": (seattle, "thanos-objstore"),
             "chicago thanos-blocks": (chicago, "thanos-objstore"),
             "chicago's replicator": (chicago, "thanos-objstore-replica"),
             "the copy's store gateway and jobs": (seattle, "thanos-objstore-dr-us-central")}
    assert {n: identities[key]["bucket"] for n, key in names.items()} == {
        "seattle thanos-blocks": "thanos-seattle", "chicago thanos-blocks": "thanos-chicago",
        "chicago's replicator": "thanos-chicago-dr", "the copy's store gateway and jobs": "thanos-chicago-dr"}
    planned = {(c.workload, c.name): c for c in planned_containers("dev", objects) if c.namespace == seattle}
    jobs = sorted(w for w, name in planned if name in ("make-bucket", "create-user"))
    with Harness(tmp_path, objects, filesystem_buckets=False, kubernetes=kubernetes_clusters("dev")) as harness:
        minio = harness.start(planned[("thanos-minio", "minio")])
        assert minio.wait_ready(60) == "ready", minio.output()
        for job in sorted(jobs, key=lambda w: w != "thanos-minio-make-bucket"):
            process = harness.start(planned[(job, "make-bucket" if job.endswith("make-bucket") else "create-user")])
            assert process.wait_exit(120) == 0, process.output()
        admin = s3_client(minio)
        endpoint = f"http://{minio.ip}:{minio.ports['--address']}"
        found = {}
        for name, key in names.items():
            config = identities[key]
            client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=config["access_key"],
                                  aws_secret_access_key=config["secret_key"], region_name="us-east-1",
                                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
            for bucket in ("thanos-seattle", "thanos-chicago-dr"):
                for request, outcome in dev_requests(client, admin, bucket).items():
                    found[f"{name} {request} in {bucket}"] = outcome
    assert not harness.leftovers(), harness.leftovers()
    allowed = {f"seattle thanos-blocks {r} in thanos-seattle" for r in ("write", "overwrite", "delete")} | \
        {f"chicago's replicator {r} in thanos-chicago-dr" for r in ("write", "overwrite")} | \
        {f"the copy's store gateway and jobs {r} in thanos-chicago-dr" for r in ("write", "overwrite", "delete")}
    wrong = sorted(f"{what}: {'done' if done else 'refused'}" for what, done in found.items()
                   if done != (what in allowed))
    assert len(found) == 4 * 2 * 3 and wrong == []


def dev_requests(client, admin, bucket: str) -> dict[str, bool]:
    """Write a new block object, overwrite a block's meta.json, delete it: True where the identity succeeds (the
    root user puts the block back before each)."""
    meta = f"{BLOCK}/meta.json"
    requests = {"write": lambda: client.put_object(Bucket=bucket, Key=f"{BLOCK}/index", Body=b"index"),
                "overwrite": lambda: client.put_object(Bucket=bucket, Key=meta, Body=b"{"),
                "delete": lambda: client.delete_object(Bucket=bucket, Key=meta)}
    outcomes = {}
    for name, request in requests.items():
        admin.put_object(Bucket=bucket, Key=meta, Body=b'{"ulid": "%s"}' % BLOCK.encode())
        outcomes[name] = not refused(request)
    return outcomes
