"""Benchmark: load on one dev cluster's data path (chicago), with the real binaries on loopback addresses.

Writes: remote-write requests of 1000 series each, encoded before each step, posted through the planned router to the
planned ingestor over mTLS with the planned writer certificate, in rising rate steps; every series gets a sample each
--interval seconds, as scraped series do, so a step of R samples/s keeps R x interval series active. It stops at the
first step with more than 0.1% non-2xx, a p99 over 5 s, a peak RSS over the planned memory limit, or an accepted rate
below 90% of the target. Reads: range queries over prepared history (real blocks from promtool, in the planned MinIO)
through the planned query and query-frontend. Run: `./run bench-load [--quick] [--json F]` (docs/benchmarks.md).
"""

import argparse
import http.client
import json
import math
import os
import resource
import signal
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.realtools.devstack import eventually, metric  # noqa: E402 (the project root first)
from tests.realtools.remote_write import label_fields, write_request  # noqa: E402

STACK, CLUSTER, NAMESPACE = "dev", "chicago", "thanos-chicago"
ROUTER, INGESTOR, QUERY, FRONTEND = "thanos-receive-router", "thanos-receive", "thanos-query-pods", "thanos-query-frontend-pods"
SERIES_PER_REQUEST = 1000
MAX_ERROR_RATIO = 0.001
MAX_P99_SECONDS = 5.0
MIN_ACCEPTED_FRACTION = 0.9
REQUEST_TIMEOUT = 30.0
"""Prometheus' default remote_timeout."""
READY_SECONDS = 120
REPLICA_LABEL, REPLICA = "prometheus_replica", "thanos-prometheus-0"
QUERIES = (
    ("sum by (shard) (harness_history)", 1.0, 60),
    ('harness_history{shard="s03"}', 1.0, 120),
    ("sum(avg_over_time(harness_history[10m]))", 1.0, 60),
    ("topk(10, max_over_time(harness_history[30m]))", 0.25, 60),
    ("count by (shard) (harness_history)", 0.5, 300),
)
"""(expression, fraction of the history window it covers (its newest part), step in s), asked in turn."""

FULL = {"rates": [2000, 5000, 10000, 20000, 40000, 60000, 80000], "step_seconds": 30.0, "queries": 100,
        "history_series": 1500, "history_hours": 6, "deadline": 600.0}
QUICK = {"rates": [2000, 10000], "step_seconds": 10.0, "queries": 20, "history_series": 1000, "history_hours": 4,
         "deadline": 300.0}
SETUP_SECONDS = 150
"""What starting the stack and preparing the history may take on a busy 2-core machine (checked against --deadline)."""


def rates_arg(text: str) -> list[int]:
    """`2000,5000,10k` -> [2000, 5000, 10000]."""
    return [int(float(r[:-1]) * 1000) if r.lower().endswith("k") else int(r) for r in text.split(",") if r.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, --quick's or the full run's defaults filled in; refuses a run that cannot fit its deadline."""
    parser = argparse.ArgumentParser(prog="./run bench-load", description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=rates_arg, help="samples/s of each step, ascending (default 2k,5k,10k,20k,40k,60k,80k)")
    parser.add_argument("--step-seconds", type=float, help="length of a step (default 30; --quick 10)")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between two samples of a series (default 15)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at most (default 16)")
    parser.add_argument("--queries", type=int, help="range queries through each of query and query-frontend (default 100)")
    parser.add_argument("--history-series", type=int, help="series of prepared history (default 1500)")
    parser.add_argument("--history-hours", type=int, help="hours of prepared history, one sample a minute (default 6)")
    parser.add_argument("--deadline", type=float, help="hard limit of the whole run in seconds (default 600; --quick 300)")
    parser.add_argument("--quick", action="store_true", help="two 10 s steps (2k, 10k), 20 queries, smaller history")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if not args.rates or any(r < 100 for r in args.rates) or args.rates != sorted(set(args.rates)):
        parser.error("--rates: ascending distinct samples/s, each at least 100")
    if not 1 <= args.interval <= 300 or args.rates[-1] * args.interval > 5_000_000:
        parser.error("--interval: 1-300 s, and at most 5 million series (the fastest rate x interval)")
    if not 1 <= args.step_seconds <= 300 or not 1 <= args.concurrency <= 256 or not 0 <= args.queries <= 10000:
        parser.error("--step-seconds 1-300, --concurrency 1-256, --queries 0-10000")
    if not 20 <= args.history_series <= 20000 or not 2 <= args.history_hours <= 48:
        parser.error("--history-series 20-20000, --history-hours 2-48")
    if not 60 <= args.deadline <= 3600:
        parser.error("--deadline: 60-3600 s")
    if SETUP_SECONDS + len(args.rates) * args.step_seconds > args.deadline:
        parser.error(f"{len(args.rates)} steps of {args.step_seconds:g} s and {SETUP_SECONDS} s of setup exceed --deadline")
    return args


# Remote write: the requests (tests/realtools/remote_write.py), pre-encoded per step.

def series_set(k: int) -> list[bytes]:
    """The k-th set of SERIES_PER_REQUEST series, as label fields: 10 metric names, 500 series a target."""
    return [label_fields({"__name__": f"bench_load_metric_{i % 10}", "job": "bench-load",
                          "instance": f"target-{i // 500}:9100", "series": str(i)})
            for i in range(k * SERIES_PER_REQUEST, (k + 1) * SERIES_PER_REQUEST)]


def sets_for(rate: int, interval: float) -> int:
    """How many sets keep each series at one sample per `interval` s at `rate` samples/s."""
    return max(1, round(rate * interval / SERIES_PER_REQUEST))


def step_requests(sets: list[list[bytes]], counters: list[int], rate: int, seconds: float,
                  start_ms: int) -> list[tuple[float, bytes]]:
    """(send offset in s, body) of each request of a step: the sets in turn, one every 1000/rate s, each series'
    sample stamped start_ms + its offset (so every series' timestamps rise, steps following each other) with the
    count of its samples so far (`counters`, one per set, grows with `sets`)."""
    spacing = SERIES_PER_REQUEST / rate
    counters.extend([0] * (len(sets) - len(counters)))
    requests = []
    for j in range(max(1, round(rate * seconds / SERIES_PER_REQUEST))):
        k = j % len(sets)
        counters[k] += 1
        requests.append((j * spacing, write_request(sets[k], float(counters[k]), start_ms + int(j * spacing * 1000))))
    return requests


class Writer:
    """Posts remote-write bodies to the router over mTLS, one kept-alive connection per worker thread."""

    HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
               "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "bench-load"}

    def __init__(self, host: str, port: int, context: ssl.SSLContext):
        self.host, self.port, self.context = host, port, context
        self.local = threading.local()
        self.connections: list[http.client.HTTPSConnection] = []
        self.lock = threading.Lock()

    def post(self, body: bytes) -> tuple[int, float]:
        """(HTTP status, or 0 without an answer; seconds taken)."""
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=REQUEST_TIMEOUT)
            self.local.connection = connection
            with self.lock:
                self.connections.append(connection)
        start = time.perf_counter()
        try:
            connection.request("POST", "/api/v1/receive", body, self.HEADERS)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            connection.close()
            self.local.connection = None
            status = 0
        return status, time.perf_counter() - start

    def close(self) -> None:
        with self.lock:
            for connection in self.connections:
                connection.close()
            self.connections.clear()


def send_step(writer: Writer, requests: list[tuple[float, bytes]], concurrency: int,
              stop_at: float) -> tuple[list[int], list[float], float]:
    """Send each body at its offset from now, at most `concurrency` in flight (a late one waits for a slot, and the
    step then falls behind its rate); stop dispatching at `stop_at` (monotonic). Statuses, latencies, seconds."""
    slots = threading.Semaphore(concurrency)
    results: list[tuple[int, float]] = []

    def send(body: bytes) -> None:
        try:
            results.append(writer.post(body))
        finally:
            slots.release()

    start = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        for offset, body in requests:
            delay = start + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() >= stop_at or not slots.acquire(timeout=max(0.0, stop_at - time.monotonic())):
                break
            pool.submit(send, body)
    seconds = time.monotonic() - start
    writer.close()
    return [s for s, _ in results], [t for _, t in results], seconds


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarise_step(target: int, series: int, seconds: float, statuses: list[int], latencies: list[float],
                   peaks: dict[str, int], limits: dict[str, int], cpu: dict[str, float]) -> dict:
    """One step's numbers and why it failed (empty: passed); `series`: the ingestor's head series; `peaks` and
    `limits` in bytes, `cpu` in cores, per process."""
    accepted = sum(1 for s in statuses if 200 <= s < 300)
    non_2xx = len(statuses) - accepted
    ratio = non_2xx / len(statuses) if statuses else 1.0
    accepted_rate = accepted * SERIES_PER_REQUEST / seconds if seconds > 0 else 0.0
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    failed = []
    if ratio > MAX_ERROR_RATIO:
        failed.append(f"{ratio:.2%} non-2xx")
    if p99 is not None and p99 > MAX_P99_SECONDS:
        failed.append(f"p99 {p99:.2f} s > {MAX_P99_SECONDS:g} s")
    failed += [f"{name} RSS {peaks[name] / 2**20:.0f} MiB > limit {limits[name] / 2**20:.0f} MiB"
               for name in sorted(peaks) if name in limits and peaks[name] > limits[name]]
    if accepted_rate < MIN_ACCEPTED_FRACTION * target:
        failed.append(f"accepted {accepted_rate:.0f}/s < {MIN_ACCEPTED_FRACTION:.0%} of target")
    codes: dict[str, int] = {}
    for status in statuses:
        codes[str(status)] = codes.get(str(status), 0) + 1
    return {"target_per_s": target, "series": series, "seconds": round(seconds, 2), "requests": len(statuses), "statuses": codes,
            "non_2xx": non_2xx, "accepted_samples": accepted * SERIES_PER_REQUEST, "accepted_per_s": round(accepted_rate),
            "p50_s": p50, "p99_s": p99, "peak_rss_mib": {k: round(v / 2**20, 1) for k, v in peaks.items()},
            "cpu_cores": {k: round(v, 2) for k, v in cpu.items()}, "failed": failed}


def verdict(steps: list[dict]) -> dict:
    """The sustained rate (the accepted rate of the last step that passed, steps rising), the first target with a
    non-2xx, what stopped the run."""
    passed = [s for s in steps if not s["failed"]]
    first = next((s["target_per_s"] for s in steps if s["non_2xx"]), None)
    return {"sustained_per_s": passed[-1]["accepted_per_s"] if passed else 0,
            "sustained_target_per_s": passed[-1]["target_per_s"] if passed else None,
            "first_non_2xx_at_per_s": first, "tried_up_to_per_s": steps[-1]["target_per_s"] if steps else None,
            "stopped_by": steps[-1]["failed"] if steps and steps[-1]["failed"] else None}


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def format_report(result: dict) -> str:
    """The printed summary of a run's result."""
    machine, write, lines = result["machine"], result["write"], []
    lines.append(f"machine: {machine['cores']} cores ({machine['cpu']}), load {machine['load']} at the start, "
                 f"Thanos {machine['thanos']}")
    lines.append(f"writes: a sample of each series every {write['interval']:g} s, {write['concurrency']} requests in flight "
                 f"at most, steps of {write['step_seconds']:g} s")
    lines.append(f"{'target/s':>9} {'series':>8} {'accepted/s':>10} {'reqs':>5} {'non-2xx':>7} {'p50 ms':>7} {'p99 ms':>7} "
                 f"{'router MiB':>10} {'ingestor MiB':>12} {'cores r/i/gen':>13}  verdict")
    for s in write["steps"]:
        cpu = s["cpu_cores"]
        lines.append(f"{s['target_per_s']:>9} {s['series']:>8} {s['accepted_per_s']:>10} {s['requests']:>5} {s['non_2xx']:>7} "
                     f"{_ms(s['p50_s']):>7} {_ms(s['p99_s']):>7} {s['peak_rss_mib'].get('router', 0):>10} "
                     f"{s['peak_rss_mib'].get('ingestor', 0):>12} "
                     f"{cpu.get('router', 0):>4.2f}/{cpu.get('ingestor', 0):.2f}/{cpu.get('generator', 0):.2f}  "
                     f"{'; '.join(s['failed']) or 'ok'}")
    v = write["verdict"]
    lines.append(f"sustained: {v['sustained_per_s']} samples/s accepted (step {v['sustained_target_per_s']}/s)"
                 + (f"; stopped by {'; '.join(v['stopped_by'])}" if v["stopped_by"] else ""))
    lines.append(f"first non-2xx: at {v['first_non_2xx_at_per_s']}/s" if v["first_non_2xx_at_per_s"] is not None
                 else f"first non-2xx: none up to {v['tried_up_to_per_s']}/s")
    if write.get("not_run_per_s"):
        lines.append(f"not run (the deadline came first): {', '.join(map(str, write['not_run_per_s']))} samples/s")
    limits, peaks = write["limits_mib"], write["peak_rss_mib"]
    lines.append(f"peak RSS: router {peaks.get('router')} MiB (limit {limits.get('router')}), "
                 f"ingestor {peaks.get('ingestor')} MiB (limit {limits.get('ingestor')})")
    if write["steps"]:
        series = max(s["series"] for s in write["steps"])
        base, per_series = write["planned_base_mib"], write["planned_head_kib_per_series"]
        lines.append(f"ingestor at {series} series in its head: peak RSS {peaks.get('ingestor')} MiB; the capacity planner's "
                     f"model ({base:g} MiB + {per_series:g} KiB a series) says {base + series * per_series / 1024:.0f} MiB")
    check = write["cross_check"]
    lines.append(f"cross-check: ingestor appended {check['appended']} samples, {check['acknowledged']} acknowledged "
                 f"({'equal' if check['appended'] == check['acknowledged'] else 'differ'})")
    history = result["queries"]["history"]
    lines.append(f"queries over {history['series']} series x {history['hours']} h of history:")
    for name, q in result["queries"]["paths"].items():
        lines.append(f"  {name:<15} {q['requests']:>4} range queries, {q['errors']} errors, "
                     f"p50 {_ms(q['p50_s'])} ms, p99 {_ms(q['p99_s'])} ms"
                     + (f", results cache hits {q['cache_hits']}" if "cache_hits" in q else ""))
    return "\n".join(lines)


# Processes: the real binary behind a harness Process, its memory and CPU.

def binary_pid(process) -> int:
    """The pid of the container's binary: the harness' process leads a group (unshare, sh, chroot) that ends up
    running it; pick the group's member whose command is the binary's name."""
    from tests.realtools.harness import BINARIES
    from tests.realtools.sandbox import image_repository

    name = BINARIES[image_repository(process.container.image)]
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = (Path("/proc") / entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (Path("/proc") / entry / "comm").read_text().strip()
        except OSError:
            continue
        if int(fields[2]) == process.popen.pid and command == name:
            found.append(int(entry))
    if not found:
        raise LookupError(f"{process.container.id}: no {name} in process group {process.popen.pid}")
    return min(found)


def status_bytes(pid: int, key: str) -> int:
    """A /proc/<pid>/status memory line (VmHWM: peak RSS, VmRSS) in bytes; 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def quantity_bytes(text: str) -> int:
    """A Kubernetes memory quantity (`256Mi`, `1Gi`, `500M`, `1048576`) in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text[:-len(suffix)]) * factor)
    return int(float(text))


def memory_limit(objects, container) -> int:
    """The planned memory limit of a container, in bytes."""
    workload = next(o for c, o in objects if c == container.cluster and o["kind"] == container.kind
                    and o["metadata"]["name"] == container.workload and o["metadata"].get("namespace") == container.namespace)
    spec = next(c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == container.name)
    return quantity_bytes(spec["resources"]["limits"]["memory"])


# The stack.

def machine_summary() -> dict:
    """Cores, CPU model, load average and the Thanos version the harness runs."""
    import subprocess

    from tests.realtools import tool

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    version = subprocess.run([str(tool("thanos")), "--version"], capture_output=True, text=True, timeout=30)
    return {"cores": len(os.sched_getaffinity(0)), "cpu": cpu, "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "thanos": (version.stdout + version.stderr).split()[2]}


def start_stack(harness, objects, workdir: Path, history_series: int, history_hours: int) -> tuple[dict, tuple[int, int]]:
    """Start chicago's namespace as test_real_dev does: MinIO, the planned mc Jobs, history blocks uploaded with
    MinIO's root user, the caches (ready and in DNS first), then every other server (Prometheus and the ruler too: the
    leaf query's endpoints are strict, and without them every answer is partial, which the frontend does not cache).
    Returns workload -> process (a pod's first container) and the history window (ms)."""
    import boto3
    import yaml
    from botocore.config import Config

    from tests.realtools.blocks import HOUR_MS, block_objects, write_blocks
    from tests.realtools.harness import BINARIES
    from tests.realtools.pods import Objects, planned_containers
    from tests.realtools.sandbox import image_repository

    containers = [c for c in planned_containers(STACK, objects, all_replicas=True)
                  if (c.cluster, c.namespace) == (CLUSTER, NAMESPACE) and image_repository(c.image) in BINARIES]
    processes = {}
    for container in [c for c in containers if c.workload == "thanos-minio"]:
        processes["thanos-minio"] = harness.start(container)
    minio = processes["thanos-minio"]
    if minio.wait_ready(60) != "ready" or not harness.wait_published(minio, 30):
        raise RuntimeError(f"MinIO is not ready:\n{minio.output()}")
    jobs = [c for c in containers if image_repository(c.image) == "quay.io/minio/mc"]
    for job in sorted(jobs, key=lambda c: c.workload != "thanos-minio-make-bucket"):
        process = harness.start(job)
        if process.wait_exit(120) != 0:
            raise RuntimeError(f"{job.id} failed:\n{process.output()}")

    chicago = Objects([o for c, o in objects if c == CLUSTER])
    bucket = yaml.safe_load(chicago.data("Secret", NAMESPACE, "thanos-objstore")["objstore.yml"])["config"]["bucket"]
    external = yaml.safe_load(chicago.data("ConfigMap", NAMESPACE, "thanos-prometheus")["prometheus.yml"])["global"]["external_labels"]
    end = (int(time.time() * 1000) - 3 * HOUR_MS) // (2 * HOUR_MS) * (2 * HOUR_MS)
    start = end - history_hours * HOUR_MS
    series = [f'harness_history{{instance="h{i:05d}",shard="s{i % 20:02d}"}}' for i in range(history_series)]
    s3 = boto3.client("s3", endpoint_url=f"http://{minio.ip}:{minio.ports['--address']}",
                      aws_access_key_id=minio.container.env["MINIO_ROOT_USER"],
                      aws_secret_access_key=minio.container.env["MINIO_ROOT_PASSWORD"], region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))
    for block in write_blocks(workdir / "history", series, start, end, 60, {**external, REPLICA_LABEL: REPLICA}):
        for key, path in block_objects(block):
            s3.upload_file(str(path), bucket, key)

    servers = [c for c in containers if not c.runs_to_completion and c.workload != "thanos-minio"]
    for container in servers:  # every pod has its name and address before any starts, as with `pulumi up`
        harness.register(container)
    caches = [c for c in servers if image_repository(c.image) == "docker.io/library/memcached"]
    started = [harness.start(c) for c in caches]
    for process in started:
        if not harness.wait_published(process, READY_SECONDS):
            raise RuntimeError(f"{process.container.id} is not ready:\n{process.output()}")
    started += [harness.start(c) for c in servers if c not in caches]
    for process in started:
        if process.ports and process.wait_ready(READY_SECONDS) != "ready":
            raise RuntimeError(f"{process.container.id} is not ready:\n{process.output()}")
        processes.setdefault(process.container.workload, process)
    return processes, (start, end)


def writer_context(objects, workdir: Path, cluster: str = CLUSTER, namespace: str = NAMESPACE,
                   secret: str = "thanos-remote-write-client-tls") -> ssl.SSLContext:
    """mTLS as a planned remote writer: the certificate of `secret` (default the cluster's writer; a tenant's writes
    as that tenant), the router verified against its CA."""
    from tests.realtools.pods import Objects

    planned = Objects([o for c, o in objects if c == cluster])
    pair = planned.data("Secret", namespace, secret)
    cert, key = workdir / f"{secret}.crt", workdir / f"{secret}.key"
    cert.write_bytes(pair["tls.crt"])
    key.write_bytes(pair["tls.key"])
    context = ssl.create_default_context(cadata=planned.data("Secret", namespace, "thanos-ca-bundle")["ca.crt"].decode())
    context.check_hostname = False  # dialled by address: the router's certificate names its Services
    context.load_cert_chain(cert, key)
    return context


def range_query(base: str, expr: str, start: float, end: float, step: int) -> tuple[bool, float]:
    """(answered in full: data and no warning of an endpoint left out; seconds) of one range query."""
    url = f"{base}/api/v1/query_range?" + urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    begin = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            body = json.loads(response.read())
        ok = body.get("status") == "success" and bool(body["data"]["result"]) and not body.get("warnings")
    except (OSError, ValueError, http.client.HTTPException):
        ok = False
    return ok, time.perf_counter() - begin


def run_queries(base: str, window: tuple[int, int], count: int, stop_at: float, concurrency: int = 4) -> dict:
    """`count` range queries (QUERIES in turn) over the history window, `concurrency` at a time."""
    start_s, end_s = window[0] / 1000 + 600, window[1] / 1000 - 60
    plan = []
    for i in range(count):
        expr, fraction, step = QUERIES[i % len(QUERIES)]
        plan.append((expr, end_s - fraction * (end_s - start_s), end_s, step))

    def one(item):
        if time.monotonic() >= stop_at:
            return None
        return range_query(base, *item)

    with ThreadPoolExecutor(concurrency) as pool:
        results = [r for r in pool.map(one, plan) if r is not None]
    latencies = [t for _, t in results]
    return {"requests": len(results), "errors": sum(1 for ok, _ in results if not ok),  # failed, empty or partial
            "p50_s": percentile(latencies, 50), "p99_s": percentile(latencies, 99)}


def read_phase(processes: dict, window: tuple[int, int], args: argparse.Namespace, deadline: float) -> dict:
    """Range queries over the history through the query and the query-frontend (with its results cache's hits)."""
    frontend = processes[FRONTEND]
    mid = (window[0] + window[1]) / 2000
    paths = {"query": processes[QUERY].url(), "query-frontend": frontend.url()}
    for base in paths.values():  # each path answers in full before it is timed
        eventually(lambda base=base: range_query(base, "count(harness_history)", mid, mid, 60)[0], 120, every=1)
    cache = {n: metric(frontend, f"cortex_cache_{n}_total") for n in ("hits", "fetched_keys")}
    queries = {name: run_queries(base, window, args.queries, deadline - 60) for name, base in paths.items()}
    cache = {n: metric(frontend, f"cortex_cache_{n}_total") - before for n, before in cache.items()}
    queries["query-frontend"]["cache_hits"] = f"{cache['hits']:.0f} of {cache['fetched_keys']:.0f}"
    return {"history": {"series": args.history_series, "hours": args.history_hours}, "paths": queries}


def write_phase(objects, processes: dict, args: argparse.Namespace, workdir: Path, deadline: float) -> dict:
    """The rate steps through the router, until one fails or the deadline nears; the ingestor's cross-check."""
    from capacity.constants import Constants

    router, ingestor = processes[ROUTER], processes[INGESTOR]
    pids = {"router": binary_pid(router), "ingestor": binary_pid(ingestor)}
    limits = {"router": memory_limit(objects, router.container), "ingestor": memory_limit(objects, ingestor.container)}
    writer = Writer(router.ip, router.ports["--remote-write.address"], writer_context(objects, workdir))
    sets: list[list[bytes]] = [series_set(0)]
    counters: list[int] = []
    # A warm-up write until the router's hashring reaches the ingestor; counted from here on.
    eventually(lambda: writer.post(write_request(sets[0], 0.0, int(time.time() * 1000)))[0] == 200, 60, every=1)
    writer.close()
    appended_before = metric(ingestor, "prometheus_tsdb_head_samples_appended_total")
    steps, not_run = [], []
    for rate in args.rates:
        if time.monotonic() + args.step_seconds + REQUEST_TIMEOUT + 30 > deadline:
            not_run = args.rates[args.rates.index(rate):]
            break
        count = sets_for(rate, args.interval)
        sets += [series_set(k) for k in range(len(sets), count)]
        requests = step_requests(sets[:count], counters, rate, args.step_seconds, int(time.time() * 1000))
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()} | {"generator": own_cpu_seconds()}
        statuses, latencies, seconds = send_step(writer, requests, args.concurrency, deadline - REQUEST_TIMEOUT - 30)
        seconds = max(seconds, args.step_seconds)  # the last answer may come before the step's end
        cpu = {name: (cpu_seconds(pid) - cpu_before[name]) / seconds for name, pid in pids.items()}
        cpu["generator"] = (own_cpu_seconds() - cpu_before["generator"]) / seconds
        peaks = {name: status_bytes(pid, "VmHWM") for name, pid in pids.items()}
        series = round(metric(ingestor, "prometheus_tsdb_head_series"))
        steps.append(summarise_step(rate, series, seconds, statuses, latencies, peaks, limits, cpu))
        print(f"step {rate}/s: accepted {steps[-1]['accepted_per_s']}/s, p99 {_ms(steps[-1]['p99_s'])} ms, "
              f"{'; '.join(steps[-1]['failed']) or 'ok'}", file=sys.stderr)
        if steps[-1]["failed"]:
            break
    appended = round(metric(ingestor, "prometheus_tsdb_head_samples_appended_total") - appended_before)
    planned = Constants()
    return {"interval": args.interval, "concurrency": args.concurrency, "step_seconds": args.step_seconds,
            "steps": steps, "verdict": verdict(steps), "not_run_per_s": not_run,
            "limits_mib": {k: round(v / 2**20) for k, v in limits.items()},
            "peak_rss_mib": {name: round(status_bytes(pid, "VmHWM") / 2**20, 1) for name, pid in pids.items()},
            "planned_head_kib_per_series": planned.head_bytes_per_series / 1024,
            "planned_base_mib": planned.base_memory / 2**20,
            "cross_check": {"appended": appended, "acknowledged": sum(s["accepted_samples"] for s in steps)}}


def run(args: argparse.Namespace, workdir: Path, deadline: float) -> dict:
    """Start the stack, query the history (on an idle ingestor), then write in steps; the result."""
    from tests.realtools import Harness
    from tests.realtools.plan import kubernetes_clusters, kubernetes_objects

    result = {"machine": machine_summary(), "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    objects = kubernetes_objects(STACK)
    with Harness(workdir, objects, filesystem_buckets=False, kubernetes=kubernetes_clusters(STACK)) as harness:
        try:
            processes, window = start_stack(harness, objects, workdir, args.history_series, args.history_hours)
            print(f"stack ready after {time.monotonic() - (deadline - args.deadline):.0f} s", file=sys.stderr)
            result["queries"] = read_phase(processes, window, args, deadline)
            result["write"] = write_phase(objects, processes, args, workdir, deadline)
        finally:
            signal.alarm(0)  # the deadline's exception must not cut the harness' stopping of every process short
    result["leftovers"] = harness.leftovers()
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    deadline = time.monotonic() + args.deadline

    def expired(*_):
        raise TimeoutError(f"bench-load: the {args.deadline:g} s deadline passed")

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(int(args.deadline))  # the hard stop: the harness' context manager still stops every process
    try:
        with tempfile.TemporaryDirectory(prefix="bench-load-", ignore_cleanup_errors=True) as workdir:
            result = run(args, Path(workdir), deadline)
    finally:
        signal.alarm(0)
    print(format_report(result))
    if result["leftovers"]:
        print("left running:", *result["leftovers"], sep="\n  ")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if result["leftovers"] else 0


if __name__ == "__main__":
    sys.exit(main())
