"""The real Thanos judges the plan: every planned Thanos container of every stack starts with its exact args, env and
files (rewritten only by tests/realtools/loopback.py) and gets ready, and the planned bucket configs parse.

Each stack is started whole, as `pulumi up` would leave it: the real Thanos (built from its Go module by
ci/tools.sh, the version the plan pins), Prometheus and Alertmanager, and Debian's memcached, each pod on its own
loopback address with the stand-in cluster DNS. Then every planned job runs against it and must exit 0. dev is also
started with tracing on, exporting to a stand-in OTLP collector."""

import subprocess
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
import yaml

from tests.support.stacks import STACKS
from tests.realtools import Harness, tool
from tests.realtools.harness import BINARIES
from tests.realtools.loopback import bucket_name
from tests.realtools.plan import kubernetes_objects
from tests.realtools.pods import planned_containers
from tests.realtools.sandbox import image_repository

READY_SECONDS = 60
"""Every Thanos server of a stack must be ready within this (the slowest waits for its peers' first answer)."""
JOB_SECONDS = 60


@pytest.fixture(scope="module")
def plans():
    """Every stack's Kubernetes objects, unredacted, planned once for this module."""
    return {stack: kubernetes_objects(stack) for stack in STACKS}


def runnable(containers):
    """The containers a real binary stands for here (Thanos, Prometheus, Alertmanager, memcached)."""
    return [c for c in containers if image_repository(c.image) in BINARIES]


def wait_all_ready(processes, seconds):
    """Poll every server until all are ready or `seconds` pass; return container id -> "ready"/"running"/"exited"."""
    states = {p.container.id: "running" for p in processes}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(s == "running" for s in states.values()):
        for process in processes:
            if states[process.container.id] == "running":
                states[process.container.id] = process.wait_ready(0.01)
        time.sleep(0.5)
    return states


@pytest.mark.parametrize("stack", STACKS)
def test_every_planned_thanos_container_starts_and_gets_ready(plans, stack, tmp_path, capsys):
    containers = runnable(planned_containers(stack, plans[stack]))
    thanos = [c for c in containers if c.is_thanos]
    assert len(thanos) >= 10, f"{stack} plans only {len(thanos)} Thanos containers"
    servers = [c for c in containers if not c.runs_to_completion]
    jobs = [c for c in thanos if c.runs_to_completion]
    started = time.monotonic()
    with Harness(tmp_path, plans[stack]) as harness:
        caches = [c for c in servers if c.image.startswith("docker.io/library/memcached")]
        processes = [harness.start(container) for container in caches]
        # The caches first, ready and in DNS before the servers that dial them start (as `pulumi up` awaits a
        # workload's readiness before what depends on it).
        unpublished = [p.container.id for p in processes if not harness.wait_published(p, READY_SECONDS)]
        processes += [harness.start(container) for container in servers if container not in caches]
        states = wait_all_ready(processes, READY_SECONDS)
        for i, process in enumerate(processes):  # started again as the kubelet would (Harness.until_ready)
            if states[process.container.id] == "exited":
                processes[i] = process = harness.until_ready(process, READY_SECONDS)
                states[process.container.id] = "ready"
        states.update({cid: "not in DNS" for cid in unpublished})
        outputs = {p.container.id: p.output() for p in processes}
        job_results = {}
        for job in jobs:
            process = harness.start(job)
            code = process.wait_exit(JOB_SECONDS)
            job_results[job.id] = (code, process.output())
            process.stop()
    assert not harness.leftovers(), harness.leftovers()  # a finished test leaves no process and no open port
    thanos_ids = {c.id for c in thanos}
    ready = sum(1 for cid, s in states.items() if cid in thanos_ids and s == "ready")
    completed = sum(1 for code, _ in job_results.values() if code == 0)
    with capsys.disabled():
        print(f"\n{stack}: {len(thanos)} Thanos containers ({len(thanos) - len(jobs)} servers, {len(jobs)} jobs): "
              f"{ready} ready, {completed} jobs completed; {len(servers)} processes in {time.monotonic() - started:.0f} s"
              + (f"; restarted after a crash at start: {harness.crashes}" if harness.crashes else ""))
    failures = [f"{cid} ({state}): {last_lines(outputs[cid])}" for cid, state in states.items() if state != "ready"]
    failures += [f"{cid} (exit {code}): {last_lines(output)}" for cid, (code, output) in job_results.items() if code != 0]
    assert not failures, f"{stack}: the real tools refused planned containers:\n" + "\n".join(failures)


def last_lines(output: str, count: int = 3) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])[-1500:] if lines else "(no output)"


def planned_bucket_configs(plans):
    """(stack, type, bucket) -> config text of every distinct bucket config the plan mounts into Thanos."""
    seen = {}
    for stack in STACKS:
        for _, obj in plans[stack]:
            if obj["kind"] != "Secret":
                continue
            for key, text in (obj.get("stringData") or {}).items():
                if key.endswith((".yml", ".yaml")) and "type:" in text and "config:" in text:
                    config = yaml.safe_load(text)
                    if isinstance(config, dict) and config.get("type") in ("S3", "GCS", "AZURE", "FILESYSTEM"):
                        seen.setdefault((stack, config["type"], bucket_name(config)), text)
    return seen


PARSE_ERRORS = ("parsing config", "unmarshal", "yaml:", "unknown unit", "not supported", "field ")
PAST_PARSING = ("network is unreachable", "credential", "dial tcp", "dial udp", "context deadline exceeded")
"""What Thanos says once it has a client and tries to use it, with no network."""


def test_every_planned_bucket_config_parses_in_thanos(plans, tmp_path):
    """Thanos gets past parsing each planned bucket config: in a network namespace of its own (no network at all)
    it fails on the network or on credentials, never on the config."""
    configs = planned_bucket_configs(plans)
    assert {kind for _, kind, _ in configs} >= {"S3", "GCS", "AZURE"}, sorted(configs)
    failures = []
    for (stack, kind, name), text in sorted(configs.items()):
        path = tmp_path / f"{stack}-{name}.yml"
        path.write_text(text)
        proc = subprocess.run(["unshare", "-n", str(tool("thanos")), "tools", "bucket", "ls",
                               f"--objstore.config-file={path}", "--timeout=5s"],
                              capture_output=True, text=True, timeout=120)
        output = proc.stdout + proc.stderr
        if any(marker in output.lower() for marker in PARSE_ERRORS) or \
                not any(marker in output.lower() for marker in PAST_PARSING):
            failures.append(f"{stack} {kind} {name}: {last_lines(output, 2)}")
    assert not failures, "Thanos refused planned bucket configs (or stopped before using them):\n" + "\n".join(failures)


class _OtlpStandIn(BaseHTTPRequestHandler):
    """A stand-in for an OpenTelemetry collector's OTLP/HTTP receiver (test-only): records each export and answers
    it as a collector does, 200 with an empty ExportTraceServiceResponse."""

    exports: list[tuple[str, bytes]]

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.exports.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _service_names(bodies: list[bytes], candidates: set[str]) -> set[str]:
    """The candidates some export names as a string value (protobuf AnyValue.string_value: tag 0x0a, length, text)."""
    return {name for name in candidates for body in bodies if b"\x0a" + bytes([len(name)]) + name.encode() in body}


def _whole_trace(names: set[str]) -> bool:
    """The trace has spans of the query and of at least one StoreAPI it asked."""
    return "thanos-query" in names and bool(names & {"thanos-sidecar", "thanos-store", "thanos-receive", "thanos-ruler"})


def test_every_planned_thanos_server_of_dev_starts_with_tracing_and_a_forced_trace_arrives(tmp_path, capsys):
    """dev planned with `tracing` (OTLP over HTTP to a stand-in collector on loopback, sampler parentbasedneversample:
    nothing is traced unless asked): every Thanos server starts and gets ready with its --tracing.config, nothing is
    exported until a request to a leaf query carries X-Thanos-Force-Tracing, and then its trace arrives, with spans of
    the query and of the StoreAPIs it asked (they follow the caller's sampling decision)."""
    receiver = ThreadingHTTPServer(("127.0.0.2", 0), type("Recorder", (_OtlpStandIn,), {"exports": []}))
    exports = receiver.RequestHandlerClass.exports
    Thread(target=receiver.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    try:
        tracing = {"endpoint": f"127.0.0.2:{receiver.server_address[1]}", "client-type": "http", "insecure": True,
                   "sampler-type": "parentbasedneversample"}
        objects = kubernetes_objects("dev", {"tracing": tracing})
        containers = runnable(planned_containers("dev", objects))
        servers = [c for c in containers if not c.runs_to_completion]
        traced = [c for c in servers if c.is_thanos]
        assert traced and all(any(a.startswith("--tracing.config=") for a in c.args) for c in traced)
        started = time.monotonic()
        with Harness(tmp_path, objects) as harness:
            caches = [c for c in servers if c.image.startswith("docker.io/library/memcached")]
            processes = [harness.start(c) for c in caches]
            assert all(harness.wait_published(p, READY_SECONDS) for p in processes)
            processes += [harness.start(c) for c in servers if c not in caches]
            states = wait_all_ready(processes, READY_SECONDS)
            for i, process in enumerate(processes):
                if states[process.container.id] == "exited":
                    processes[i] = harness.until_ready(process, READY_SECONDS)
                    states[process.container.id] = "ready"
            not_ready = [f"{p.container.id} ({states[p.container.id]}): {last_lines(p.output())}" for p in processes
                         if p.container.is_thanos and states[p.container.id] != "ready"]
            assert not not_ready, "\n".join(not_ready)
            ready = time.monotonic() - started
            time.sleep(6)  # one batch interval (5 s): anything sampled so far would be exported by now
            unforced = list(exports)
            leaf = next(p for p in processes if p.container.workload == "thanos-query-pods"
                        and p.container.namespace == "thanos-chicago")
            request = urllib.request.Request(leaf.url("/api/v1/query?query=count%28up%29"),
                                             headers={"X-Thanos-Force-Tracing": "true"})
            with urllib.request.urlopen(request, timeout=30) as response:
                trace_id = response.headers["X-Thanos-Trace-Id"]
            assert trace_id and len(trace_id) == 32, trace_id
            # Each server exports its own spans in its own batches, so the trace is whole only when the query's and
            # a StoreAPI's have both arrived; the first export alone may be a sidecar's.
            kinds = {c.name for c in traced}
            deadline = time.monotonic() + 30
            while True:
                names = _service_names([b for _, b in list(exports) if bytes.fromhex(trace_id) in b], kinds)
                if _whole_trace(names) or time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
            arrived = time.monotonic() - deadline + 30
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert not harness.leftovers(), harness.leftovers()
    assert unforced == [], f"exported before any request was forced: {len(unforced)} exports"
    assert {path for path, _ in exports} == {"/v1/traces"}
    assert _whole_trace(names), names
    with capsys.disabled():
        print(f"\ndev with tracing: {len(traced)} Thanos servers ready in {ready:.0f} s with --tracing.config "
              f"({', '.join(sorted(kinds))}); nothing exported unforced; the forced trace {trace_id} arrived "
              f"{arrived:.1f} s after the request in {len(exports)} export(s), with spans of {', '.join(sorted(names))}")
