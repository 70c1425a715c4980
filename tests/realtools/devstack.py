"""The dev stack's data path, started for real: chicago and seattle, then the global tier, every process started from
the plan's own args and files, against the planned MinIO servers. The happy-path tests (tests/test_real_dev.py) and
the fault runs (tests/test_real_faults.py) share one start of it (the session fixture `dev` in tests/conftest.py).

History is prepared (real blocks from promtool, 48 hours two days back, two HA replicas per cluster) and written
into each cluster's bucket; the live path is the real Prometheus scraping and its sidecar. Stand-ins, named: the
cluster DNS (dns.py). The planned make-bucket and user Jobs run with the real mc."""

import dataclasses
import http.client
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import yaml
from botocore.config import Config

from .blocks import HOUR_MS, block_objects, write_blocks
from .harness import BINARIES, Harness
from .pods import Objects, planned_containers
from .plan import kubernetes_clusters, kubernetes_objects
from .sandbox import Process, image_repository

CLUSTERS = {"chicago": "thanos-chicago", "seattle": "thanos-seattle"}
GLOBAL_NAMESPACE = "thanos-global"
WINDOW_MS = 48 * HOUR_MS
"""The compactor's largest default range but one; two whole windows of history, so the older one is compacted to a
2-day block (it leaves the newest range open) and downsampled (it downsamples blocks of 40h and more)."""
SERIES = ['harness_history{instance="a",tenant_id="default-tenant"}',
          'harness_history{instance="b",tenant_id="default-tenant"}']
"""What the planned Prometheus' platform jobs write: dev has tenants, so each series carries its tenant (reads through
the global query-frontend see `default-tenant`'s without a tenant header)."""
REPLICA_LABEL = "prometheus_replica"
REPLICAS = ["thanos-prometheus-0", "thanos-prometheus-1"]
READY_SECONDS = 90


@dataclass
class DevStack:
    """The started dev data path: its harness, the plan's objects and every process, by container id."""

    harness: Harness
    objects: list
    processes: dict[str, Process]
    """container id -> its process."""
    window: tuple[int, int]
    blocks: dict[str, int]
    """bucket -> blocks written into it."""
    flows: set[tuple[str, str, int]] = dataclasses.field(default_factory=set)
    """(client id, server id, port) of every connection seen between the started pods (sampled each second, from
    before the setup Jobs run: the sampler adds to this set under `flows_lock`)."""
    flows_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def restart(self, process: Process) -> Process:
        """Start a killed or stopped container again on its claims, and track the new process."""
        new = self.harness.restart(process)
        self.processes[process.container.id] = new
        return new

    def process(self, cluster: str, namespace: str, workload: str, container: str | None = None) -> Process:
        for process in self.processes.values():
            c = process.container
            if (c.cluster, c.namespace, c.workload) == (cluster, namespace, workload) and \
                    (container is None or c.name == container):
                return process
        raise LookupError(f"{cluster}/{namespace}/{workload} is not running")


def s3_client(minio: Process):
    """An S3 client of a MinIO server as its root user (what the make-bucket Job's `mc` uses)."""
    return boto3.client("s3", endpoint_url=f"http://{minio.ip}:{minio.ports['--address']}",
                        aws_access_key_id=minio.container.env["MINIO_ROOT_USER"],
                        aws_secret_access_key=minio.container.env["MINIO_ROOT_PASSWORD"], region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


def planned_s3_configs(objects) -> dict[str, dict]:
    """bucket -> the planned S3 config (dev: each cluster's MinIO)."""
    configs = {}
    for _, obj in objects:
        if obj["kind"] == "Secret":
            for text in (obj.get("stringData") or {}).values():
                config = yaml.safe_load(text) if "type: S3" in text else None
                if isinstance(config, dict):
                    configs.setdefault(config["config"]["bucket"], config["config"])
    return configs


def http_json(url: str, timeout: float = 10) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def query(process: Process, expr: str, **params) -> list[dict]:
    args = urllib.parse.urlencode({"query": expr, **params})
    path = "/api/v1/query_range" if "start" in params else "/api/v1/query"
    body = http_json(process.url(f"{path}?{args}"), timeout=30)
    assert body["status"] == "success", body
    return body["data"]["result"]


def metric(process: Process, name: str) -> float:
    """The sum of a metric's samples on the process' /metrics; raises when it has none."""
    with urllib.request.urlopen(process.url("/metrics"), timeout=10) as response:
        text = response.read().decode()
    samples = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " ")]
    if not samples:
        raise ValueError(f"{process.container.id} has no {name}")
    return sum(samples)


def eventually(check, seconds: float, every: float = 2.0):
    """Retry `check` until it returns a truthy value; raise with its last answer."""
    deadline, last = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (OSError, ValueError, AssertionError, http.client.HTTPException) as err:
            last = err
        time.sleep(every)
    raise AssertionError(f"not within {seconds}s: {last!r}")


def ruler_replica(ruler, pod: str, groups: list[dict]):
    """Another replica of a planned ruler container (`pod`, e.g. thanos-ruler-1: its own replica label, its own data)
    whose rule file holds only `groups`: what a test starts beside the planned ruler to judge one rule."""
    first = ruler.pod
    rules = yaml.safe_dump({"groups": groups})
    return dataclasses.replace(ruler, pod=pod, env={**ruler.env, "POD_NAME": pod},
                               args=[a.replace(first, pod) for a in ruler.args],
                               mounts=[dataclasses.replace(m, volume=dataclasses.replace(
                                   m.volume, files={"thanos.yaml": (rules.encode(), 0o644)}))
                                   if m.path == "/etc/thanos/rules" else m for m in ruler.mounts])


def planned_external_labels(objects, cluster: str, namespace: str) -> dict[str, str]:
    """The external labels the planned Prometheus of a cluster writes into its blocks (its replica label aside)."""
    config = Objects([o for c, o in objects if c == cluster]).data("ConfigMap", namespace, "thanos-prometheus")
    return yaml.safe_load(config["prometheus.yml"])["global"]["external_labels"]



@contextmanager
def started_dev(workdir: Path) -> Iterator[DevStack]:
    """Start the dev data path under `workdir` (see the module docstring); stop all of it on exit, leaving no process
    and no open port."""
    objects = kubernetes_objects("dev")
    containers = [c for c in planned_containers("dev", objects, all_replicas=True)
                  if image_repository(c.image) in BINARIES]
    harness = Harness(workdir, objects, filesystem_buckets=False, kubernetes=kubernetes_clusters("dev"))
    processes: dict[str, Process] = {}
    flows, flows_lock, sampling = set(), threading.Lock(), threading.Event()

    def sample():
        while not sampling.wait(1):
            found = harness.connections()
            with flows_lock:
                flows.update(found)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        # Object storage: the planned MinIO servers, then the planned Jobs that make the buckets and the scoped
        # users, run with the real mc.
        for minio in [c for c in containers if c.image.startswith("quay.io/minio/minio")]:
            processes[minio.id] = harness.start(minio)
        for process in processes.values():
            assert process.wait_ready(60) == "ready", process.output()
            assert harness.wait_published(process, 10), process.container.id  # the Jobs reach it by its Service
        setup = [c for c in containers if c.image.startswith("quay.io/minio/mc")]
        assert {c.workload for c in setup} >= {"thanos-minio-make-bucket"}, [c.workload for c in setup]
        for job in sorted(setup, key=lambda c: c.workload != "thanos-minio-make-bucket"):
            process = harness.start(job)
            assert process.wait_exit(120) == 0, f"{job.id}:\n{process.output()}"
        configs = planned_s3_configs(objects)
        now = int(time.time() * 1000)
        start = (now - 5 * 24 * HOUR_MS) // WINDOW_MS * WINDOW_MS
        blocks: dict[str, int] = {}
        for cluster, namespace in CLUSTERS.items():
            bucket = f"thanos-{cluster}"
            config = configs[bucket]
            minio = next(p for p in processes.values() if p.container.namespace == namespace)
            client = s3_client(minio)
            made = {b["Name"] for b in client.list_buckets()["Buckets"]}
            assert {bucket, *(b for b, c in configs.items() if c["endpoint"] == config["endpoint"])} <= made, made
            external = planned_external_labels(objects, cluster, namespace)
            for replica in REPLICAS:
                labels = {**external, REPLICA_LABEL: replica}
                for block in write_blocks(workdir / "history" / cluster / replica, SERIES, start,
                                          start + 2 * WINDOW_MS, 120, labels):
                    for key, path in block_objects(block):
                        client.upload_file(str(path), bucket, key)
                    blocks[bucket] = blocks.get(bucket, 0) + 1
        servers = [c for c in containers if not c.runs_to_completion and not c.image.startswith("quay.io/minio")]
        for container in servers:  # `pulumi up` creates every pod at once: each has its name and address first
            harness.register(container)
        caches = [c for c in servers if c.image.startswith("docker.io/library/memcached")]
        for container in caches:
            processes[container.id] = harness.start(container)
        for container in caches:  # ready and in DNS before the servers that dial them start, as `pulumi up` orders
            assert harness.wait_published(container, READY_SECONDS), processes[container.id].output()
        for container in servers:
            if container not in caches:
                processes[container.id] = harness.start(container)
        stack = DevStack(harness, objects, processes, (start, start + 2 * WINDOW_MS), blocks, flows, flows_lock)
        for key, process in processes.items():
            if process.ports:
                processes[key] = harness.until_ready(process, READY_SECONDS)
        yield stack
    finally:
        sampling.set()
        sampler.join(10)
        harness.close()
    assert not harness.leftovers(), harness.leftovers()  # no process and no port outlives the tests
