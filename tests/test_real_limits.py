"""Limits, proved with the real tools from dev's plan with two tenants and small limits (so a test sends 10x them in
seconds): the real Thanos router and ingestor with the planned limits file, the meta-monitoring Prometheus being the
planned one scraping the ingestor; the real Prometheus with the planned workload scrape job and its limits; the real
query-frontend with the planned maximum query length. Each test prints its numbers."""

import dataclasses
import http.client
import http.server
import json
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from benchmarks.bench_load import writer_context
from tests.realtools import Harness
from tests.realtools.build import tool
from tests.realtools.devstack import READY_SECONDS, eventually, metric
from tests.realtools.kubernetes import free_port
from tests.realtools.pods import Objects, PlannedContainer, planned_containers
from tests.realtools.plan import kubernetes_clusters, kubernetes_objects
from tests.realtools.remote_write import label_fields, write_request

CLUSTER, NAMESPACE = "chicago", "thanos-chicago"
HEAD_SERIES_A = 200
"""team-a's head-series limit; team-b inherits the default (what dev's ingestor memory holds)."""
REQUEST_SERIES, REQUEST_SIZE = 100, 64 * 1024
SAMPLE_LIMIT = 100
MAX_QUERY_LENGTH = "2d"
OVERRIDES = {
    "tenancy": {"tenants": [{"name": "team-a", "limits": {"head-series": HEAD_SERIES_A}}, {"name": "team-b"}]},
    "thanos": {"receive": {"limits": {"request-series": REQUEST_SERIES, "request-size": f"{REQUEST_SIZE // 1024}Ki"}},
               "query-frontend": {"max-query-length": MAX_QUERY_LENGTH}},
    "observability": {"collection": {"scrape-limits": {"sample-limit": SAMPLE_LIMIT}}},
}


@pytest.fixture(scope="module")
def planned():
    """dev planned with two tenants and the small limits above."""
    return kubernetes_objects("dev", OVERRIDES)


def chicago_container(objects, workload: str, name: str) -> PlannedContainer:
    return next(c for c in planned_containers("dev", objects)
                if (c.cluster, c.namespace, c.workload, c.name) == (CLUSTER, NAMESPACE, workload, name))


def post(router, context: ssl.SSLContext, tenant: str, body: bytes) -> int:
    """One remote write as `tenant` (the header: this router is started without a tenant certificate field)."""
    connection = http.client.HTTPSConnection(router.ip, router.ports["--remote-write.address"], context=context,
                                             timeout=20)
    try:
        connection.request("POST", "/api/v1/receive", body, {
            "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0", "THANOS-TENANT": tenant})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def series(tenant: str, start: int, count: int, pad: str = "") -> list[bytes]:
    return [label_fields({"__name__": "limits_test", "tenant_writer": tenant, "n": str(i), **({"pad": pad} if pad else {})})
            for i in range(start, start + count)]


def test_a_tenant_over_its_head_series_limit_gets_429_while_another_keeps_writing(planned, tmp_path, capsys):
    """The planned router (its limits file, without a tenant certificate field) over the planned ingestor, and the
    planned Prometheus scraping it (the meta-monitoring URL of the limits file): a request over the request limits
    gets 413; team-a writes 10x its head-series limit in new series, is accepted until the limiter's next look at
    Prometheus (best effort, every 15 s) and refused with 429 from then on, while team-b's writes all succeed; its
    limit raised in the file, the same process accepts it again (reloaded, no restart); the router restarted without
    the limits file (the plan before limits) accepts team-a's new series in full."""
    chicago = Objects([o for c, o in planned if c == CLUSTER])
    write = yaml.safe_load(chicago.data("ConfigMap", NAMESPACE, "thanos-receive-limits")["limits.yaml"])["write"]
    assert write["tenants"]["team-a"]["head_series_limit"] == HEAD_SERIES_A
    assert write["global"]["meta_monitoring_url"] == f"http://thanos-prometheus.{NAMESPACE}.svc.cluster.local:9090"
    ingestor = chicago_container(planned, "thanos-receive", "thanos-receive")
    router = chicago_container(planned, "thanos-receive-router", "thanos-receive-router")
    router = dataclasses.replace(router, args=[a for a in router.args
                                               if not a.startswith("--receive.tenant-certificate-field")])
    prometheus = chicago_container(planned, "thanos-prometheus", "prometheus")
    context = writer_context(planned, tmp_path, CLUSTER, NAMESPACE)
    with Harness(tmp_path, planned, kubernetes=kubernetes_clusters("dev")) as harness:
        for container in (ingestor, router, prometheus):
            harness.register(container)
        started = harness.until_ready(harness.start(ingestor), READY_SECONDS)
        assert harness.wait_published(started, 10)
        routing, meta = harness.start(router), harness.start(prometheus)
        for process in (routing, meta):
            assert process.wait_ready(READY_SECONDS) == "ready", process.output()
        now = lambda: int(time.time() * 1000)  # noqa: E731
        eventually(lambda: post(routing, context, "team-b", write_request(series("team-b", 0, 1), 1.0, now())) == 200, 60)

        # Request limits: 413, whoever the tenant.
        too_many = post(routing, context, "team-b", write_request(series("team-b", 0, REQUEST_SERIES + 1), 1.0, now()))
        too_big = post(routing, context, "team-b", write_request(series("team-b", 0, 1, "x" * REQUEST_SIZE), 1.0, now()))
        assert (too_many, too_big) == (413, 413)

        counts = {"team-a": {}, "team-b": {}}
        written_a, first_refusal, rounds_after = 0, None, 0
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and rounds_after < 10:
            status = post(routing, context, "team-a", write_request(series("team-a", written_a, REQUEST_SERIES), 1.0, now()))
            counts["team-a"][status] = counts["team-a"].get(status, 0) + 1
            if status == 200:
                assert first_refusal is None, f"team-a accepted again after a 429: {counts}"
                written_a += REQUEST_SERIES
            elif status == 429:
                first_refusal = first_refusal or time.monotonic()
                rounds_after += 1
            status = post(routing, context, "team-b", write_request(series("team-b", 0, 50), 1.0, now()))
            counts["team-b"][status] = counts["team-b"].get(status, 0) + 1
            time.sleep(0.5 if written_a < 10 * HEAD_SERIES_A else 1.0)
        held = {t: metric_for(started, t) for t in ("team-a", "team-b")}
        limited = metric(routing, "thanos_receive_head_series_limited_requests_total")
        assert first_refusal is not None, f"team-a was never refused: {counts}, {routing.output()}"
        assert set(counts["team-a"]) == {200, 429} and counts["team-b"] == {200: sum(counts["team-b"].values())}, counts
        assert written_a >= HEAD_SERIES_A and held["team-a"] >= HEAD_SERIES_A and limited >= 10

        # A changed file is reloaded without a restart (as kubelet updates a mounted ConfigMap): team-a's limit
        # raised, its writes are accepted again by the same process.
        limits_file = harness.sandbox.volume_file(router, "/etc/thanos/limits/limits.yaml")
        raised = yaml.safe_load(limits_file.read_text())
        raised["write"]["tenants"]["team-a"]["head_series_limit"] = 100 * HEAD_SERIES_A
        limits_file.write_text(yaml.safe_dump(raised))
        changed = time.monotonic()
        eventually(lambda: post(routing, context, "team-a", write_request(series("team-a", written_a, REQUEST_SERIES),
                                                                          1.0, now())) == 200, 60, every=1)
        reload_seconds = time.monotonic() - changed
        assert routing.alive() and metric(routing, "thanos_receive_limits_config_reload_total") >= 1

        # Before limits: the same router without its limits file accepts team-a's new series in full.
        routing.args = [a for a in routing.args if not a.startswith("--receive.limits-config-file")]
        unlimited = harness.restart(routing)
        assert unlimited.wait_ready(READY_SECONDS) == "ready", unlimited.output()
        before = [post(unlimited, context, "team-a", write_request(series("team-a", written_a + k * REQUEST_SERIES,
                                                                           REQUEST_SERIES), 1.0, now()))
                  for k in range(10)]
        assert before == [200] * 10
    assert not harness.leftovers(), harness.leftovers()
    with capsys.disabled():
        print(f"\nreceive limits: 413 for {REQUEST_SERIES + 1} series and for {REQUEST_SIZE} bytes; team-a (head-series "
              f"limit {HEAD_SERIES_A}) requests {counts['team-a']}, {written_a} series accepted "
              f"({written_a / HEAD_SERIES_A:.1f}x its limit) before the limiter saw it, then refused; team-b requests "
              f"{counts['team-b']}; ingestor head series {held}; limited requests {limited:.0f}; team-a's limit "
              f"raised in the file: accepted again after {reload_seconds:.0f} s, no restart; "
              f"without the limits file team-a's next 10 requests of new series: {before.count(200)} accepted")


def metric_for(process, tenant: str) -> float:
    """prometheus_tsdb_head_series of one tenant on an ingestor's /metrics."""
    with urllib.request.urlopen(process.url("/metrics"), timeout=10) as response:
        lines = response.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines
               if line.startswith("prometheus_tsdb_head_series{") and f'tenant="{tenant}"' in line)


class _Exporter(http.server.ThreadingHTTPServer):
    """A stand-in workload on loopback serving `count` series on /metrics."""

    def __init__(self, count: int):
        body = "".join(f'limits_stand_in{{n="{i}"}} {i}\n' for i in range(count)).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def _pod_target(exporter: _Exporter, pod: str) -> dict:
    """What Kubernetes pod discovery gives for an annotated pod, as a file_sd target (the planned relabelling reads
    these labels)."""
    return {"targets": [f"127.0.0.1:{exporter.server_address[1]}"], "labels": {
        "__meta_kubernetes_pod_phase": "Running", "__meta_kubernetes_pod_name": pod,
        "__meta_kubernetes_namespace": "team-a-apps",
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
        "__meta_kubernetes_pod_annotation_prometheus_io_port": str(exporter.server_address[1]),
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": pod}}


def prometheus_query(port: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["data"]["result"]


def test_a_workload_over_its_sample_limit_fails_its_scrape_alone(planned, tmp_path, capsys):
    """The real Prometheus with the planned `kubernetes-pods` job (its limits and relabelling; file_sd with the pod
    discovery's labels stands in for the Kubernetes API): a pod exposing 10x the sample limit is `up == 0` and stores
    none of its series, the normal pod keeps its data; the same job without the limits (the plan before them) stores
    every series of the big one."""
    config = yaml.safe_load(Objects([o for c, o in planned if c == CLUSTER]).data(
        "ConfigMap", NAMESPACE, "thanos-prometheus")["prometheus.yml"])
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "kubernetes-pods")
    assert job["sample_limit"] == SAMPLE_LIMIT and job["label_limit"] and job["body_size_limit"]
    big, normal = _Exporter(10 * SAMPLE_LIMIT), _Exporter(10)
    targets = tmp_path / "pods.json"
    targets.write_text(json.dumps([_pod_target(big, "big"), _pod_target(normal, "normal")]))
    limited = {**{k: v for k, v in job.items() if k != "kubernetes_sd_configs"},
               "file_sd_configs": [{"files": [str(targets)]}]}
    before = {k: v for k, v in limited.items() if not k.endswith("_limit")}
    before["job_name"] = "kubernetes-pods-before-limits"
    before["relabel_configs"] = [*job["relabel_configs"], {"target_label": "job", "replacement": "before-limits"}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "2s"}, "scrape_configs": [limited, before]}))
    port = free_port()
    prometheus = subprocess.Popen(
        [str(tool("prometheus")), f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        def scraped() -> dict:
            ups = {(r["metric"]["job"], r["metric"]["pod"]): r["value"][1] for r in prometheus_query(port, "up")}
            return ups if len(ups) == 4 else {}
        ups = eventually(scraped, 60, every=1)
        time.sleep(4)  # two more scrapes
        stored = {r["metric"]["job"] + "/" + r["metric"]["pod"]: int(r["value"][1]) for r in prometheus_query(
            port, "count by (job, pod) (limits_stand_in)")}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            exceeded = next(float(line.split()[1]) for line in response.read().decode().splitlines()
                            if line.startswith("prometheus_target_scrapes_exceeded_sample_limit_total "))
        exposed = {r["metric"]["pod"]: int(r["value"][1]) for r in prometheus_query(
            port, 'scrape_samples_scraped{job="team-a-apps/big"}')}
    finally:
        prometheus.terminate()
        prometheus.wait(20)
        big.shutdown()
        normal.shutdown()
    assert ups[("team-a-apps/big", "big")] == "0" and ups[("team-a-apps/normal", "normal")] == "1", ups
    assert stored.get("team-a-apps/normal/normal") == 10 and "team-a-apps/big/big" not in stored, stored
    assert stored.get("before-limits/big") == 10 * SAMPLE_LIMIT, stored
    assert exceeded >= 1 and exposed == {"big": 10 * SAMPLE_LIMIT}
    with capsys.disabled():
        print(f"\nscrape limits: the pod exposing {10 * SAMPLE_LIMIT} series (sample_limit {SAMPLE_LIMIT}) is up 0, "
              f"{10 * SAMPLE_LIMIT} series cut, {exceeded:.0f} scrapes over the limit; the normal pod up 1 with its 10; "
              f"without the limits the big pod's {stored.get('before-limits/big')} series stored")


def test_the_query_frontend_refuses_a_range_longer_than_its_maximum(planned, tmp_path, capsys):
    """The planned query-frontend (its cache and its query started too): a range query of 3 days is refused with 400
    naming the limit; one of a day reaches the query and answers."""
    frontend = chicago_container(planned, "thanos-query-frontend-pods", "thanos-query-frontend")
    assert f"--query-range.max-query-length={MAX_QUERY_LENGTH}" in frontend.args
    query = chicago_container(planned, "thanos-query-pods", "thanos-query")
    cache = next(c for c in planned_containers("dev", planned) if (c.cluster, c.namespace) == (CLUSTER, NAMESPACE)
                 and c.workload == "thanos-memcached-query-results" and c.image.startswith("docker.io/library/memcached"))
    with Harness(tmp_path, planned, kubernetes=kubernetes_clusters("dev")) as harness:
        for container in (cache, query, frontend):
            harness.register(container)
        memcached = harness.start(cache)
        assert harness.wait_published(memcached, READY_SECONDS)
        querying = harness.start(query)
        assert querying.wait_ready(READY_SECONDS) == "ready", querying.output()
        assert harness.wait_published(querying, 10)
        front = harness.start(frontend)
        assert front.wait_ready(READY_SECONDS) == "ready", front.output()

        def ask(days: float) -> tuple[int, str]:
            end = time.time()
            url = front.url("/api/v1/query_range?" + urllib.parse.urlencode(
                {"query": "vector(1)", "start": end - days * 86400, "end": end, "step": 3600}))
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as err:
                return err.code, err.read().decode()
        long_code, long_body = ask(3)
        short_code, short_body = ask(1)
    assert not harness.leftovers(), harness.leftovers()
    assert long_code == 400 and "the query time range exceeds the limit" in long_body, (long_code, long_body)
    assert short_code == 200 and '"status":"success"' in short_body, (short_code, short_body)
    with capsys.disabled():
        print(f"\nquery-frontend max-query-length {MAX_QUERY_LENGTH}: 3d range -> {long_code} ({long_body.strip()[:120]}); "
              f"1d range -> {short_code}")
