"""Tenants on dev's real data path (the `dev` fixture: every process started from the plan): each tenant writes with
its own planned certificate and lands in its tenant whatever header it sends, reads through the global query-frontend
see only the tenant the THANOS-TENANT header names, the operators' path (the global query) and the global ruler see
every tenant; and the real Prometheus, with the planned workload job's relabelling, labels a scraped series with the
tenant owning the target's namespace, whatever the target exposes."""

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest
import yaml

from tests.realtools.build import tool
from tests.realtools.devstack import CLUSTERS, GLOBAL_NAMESPACE, eventually, http_json, query, ruler_replica
from tests.realtools.kubernetes import free_port
from tests.realtools.pods import Objects, planned_containers
from tests.realtools.plan import kubernetes_objects
from tests.realtools.remote_write import label_fields, write_request

pytestmark = pytest.mark.xdist_group("real-dev")

TENANTS = ("team-a", "team-b")
NAMESPACE = CLUSTERS["chicago"]
METRIC = "harness_tenant"


def _secret(dev, cluster: str, namespace: str, name: str) -> dict[str, bytes]:
    return Objects([o for c, o in dev.objects if c == cluster]).data("Secret", namespace, name)


def _client(dev, tmp_path: Path, cluster: str, secret: str) -> tuple[str, str]:
    pair = _secret(dev, cluster, CLUSTERS[cluster], secret)
    cert, key = tmp_path / f"{cluster}-{secret}.crt", tmp_path / f"{cluster}-{secret}.key"
    cert.write_bytes(pair["tls.crt"])
    key.write_bytes(pair["tls.key"])
    return str(cert), str(key)


class Writer:
    """Remote writes to chicago's router with one client certificate; counts what the router accepted or refused."""

    def __init__(self, dev, certificate: tuple[str, str] | None):
        router = dev.process("chicago", NAMESPACE, "thanos-receive-router")
        self.url = f"https://{router.ip}:{router.ports['--remote-write.address']}/api/v1/receive"
        self.context = ssl.create_default_context(
            cadata=_secret(dev, "chicago", NAMESPACE, "thanos-ca-bundle")["ca.crt"].decode())
        self.context.check_hostname = False  # the router's names are its Service's (tests/test_real_dev.py checks them)
        if certificate:
            self.context.load_cert_chain(*certificate)

    def post(self, labels: dict[str, str], value: float, stamp: int, tenant_header: str | None = None) -> int:
        """The router's status, or 0 when the TLS handshake was refused."""
        headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                   "X-Prometheus-Remote-Write-Version": "0.1.0", **({"THANOS-TENANT": tenant_header} if tenant_header else {})}
        request = urllib.request.Request(self.url, data=write_request([label_fields(labels)], value, stamp),
                                         method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=20) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code
        except (ssl.SSLError, ConnectionResetError, urllib.error.URLError):
            return 0


def _read(url: str, expr: str, at: float, tenant: str | None = None, **ranged) -> list[dict]:
    """An instant query at `at`, or with `end` and `step` a range query from `at`."""
    params = {"query": expr, **({"start": at, **ranged} if ranged else {"time": at})}
    path = "query_range" if ranged else "query"
    request = urllib.request.Request(f"{url}/api/v1/{path}?{urllib.parse.urlencode(params)}",
                                     headers={"THANOS-TENANT": tenant} if tenant else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def _writers(result: list[dict]) -> dict[str, str]:
    """writer -> tenant_id of each series of a result."""
    return {r["metric"]["writer"]: r["metric"].get("tenant_id", "") for r in result}


def test_each_tenant_writes_with_its_certificate_and_reads_only_its_own(dev, tmp_path, capsys):
    """team-a's and team-b's planned certificates write into their tenants; team-a's certificate claiming team-b by
    header still writes into team-a; the default writer's certificate writes into default-tenant. Through the global
    query-frontend each tenant reads its own series only (its own matcher on tenant_id is replaced), no header reads
    default-tenant, and the global query (operators, the global ruler) reads them all."""
    stamp = int(time.time() * 1000) - 180_000  # older than the frontend's max freshness (1m): its ranges get cached
    counts: dict[str, dict[str, int]] = {}

    def write(name: str, secret: str, cluster: str = "chicago", header: str | None = None, times: int = 1) -> int:
        """`times` writes of one sample each (`stamp` last); the last one's status."""
        writer = Writer(dev, _client(dev, tmp_path, cluster, secret) if secret else None)
        row = counts.setdefault(name, {"accepted": 0, "refused": 0})
        for k in range(times):
            status = writer.post({"__name__": METRIC, "writer": name}, 1.0, stamp - (times - 1 - k) * 1000, header)
            row["accepted" if status == 200 else "refused"] += 1
        return status

    assert eventually(lambda: write("warm-up", "thanos-remote-write-client-team-a") == 200, 60)
    counts.clear()  # the router is up: count from here (each writer's samples in order: an older one would get 409)
    assert write("team-a", "thanos-remote-write-client-team-a", times=10) == 200
    assert write("team-b", "thanos-remote-write-client-team-b", times=10) == 200
    assert write("team-a-claims-b", "thanos-remote-write-client-team-a", header="team-b", times=10) == 200
    assert write("default", "thanos-remote-write-client-tls", times=10) == 200
    # Refused at the handshake: no certificate, and team-a's certificate of another cluster (seattle's writers CA).
    assert write("anonymous", "", times=3) == 0
    assert write("team-a-of-seattle", "thanos-remote-write-client-team-a", cluster="seattle", times=3) == 0
    assert all(row["refused"] == 0 for name, row in counts.items() if name not in ("anonymous", "team-a-of-seattle"))

    frontend = dev.process("chicago", GLOBAL_NAMESPACE, "thanos-query-frontend-pods").url()
    operators = dev.process("chicago", GLOBAL_NAMESPACE, "thanos-query-pods").url()
    at = stamp / 1000
    everything = eventually(lambda: len(seen := _writers(_read(operators, METRIC, at))) == 5 and seen, 90)
    assert everything == {"warm-up": "team-a", "team-a": "team-a", "team-b": "team-b", "team-a-claims-b": "team-a",
                          "default": "default-tenant"}, everything
    # The enforcing query reaches the global query through its endpoint set, which another test's restarts may have
    # left reconnecting: a read answers once it holds any series.
    team_a, team_b, no_header = (eventually(lambda t=tenant: _writers(_read(frontend, METRIC, at, t)), 60)
                                 for tenant in ("team-a", "team-b", None))
    assert team_a == {"warm-up": "team-a", "team-a": "team-a", "team-a-claims-b": "team-a"}, team_a
    assert team_b == {"team-b": "team-b"}, team_b
    assert no_header == {"default": "default-tenant"}, no_header
    # A tenant's own matcher on the tenant label is replaced by its own (prom-label-proxy's enforcer).
    assert _writers(_read(frontend, f'{METRIC}{{tenant_id="team-a"}}', at, "team-b")) == {"team-b": "team-b"}
    # The results cache (range queries) is keyed by tenant: the same range asked by team-a, then team-b, answers each
    # its own series.
    ranged = {tenant: _writers(_read(frontend, METRIC, at, tenant, end=at + 30, step=15)) for tenant in TENANTS}
    assert ranged == {"team-a": team_a, "team-b": team_b}, ranged
    with capsys.disabled():
        print("\nremote writes to chicago's router, by writer (accepted/refused):",
              ", ".join(f"{w} {c['accepted']}/{c['refused']}" for w, c in counts.items()))
        print(f"read through the global query-frontend: team-a {sorted(team_a)}, team-b {sorted(team_b)}, "
              f"no header {sorted(no_header)}; the global query: {sorted(everything)}")


def test_the_global_ruler_reads_every_tenant(dev, tmp_path):
    """A replica of the planned global ruler (its queries carry no tenant) whose one alert fires when it sees series
    of both tenants: it reads through the global query, which does not enforce."""
    stamp = int(time.time() * 1000)
    for tenant in TENANTS:
        writer = Writer(dev, _client(dev, tmp_path, "chicago", f"thanos-remote-write-client-{tenant}"))
        assert eventually(lambda w=writer, t=tenant: w.post({"__name__": "harness_ruler_input", "writer": t}, 1.0,
                                                             stamp) == 200, 60)
    ruler = next(c for c in planned_containers("dev", dev.objects, all_replicas=True)
                 if c.namespace == GLOBAL_NAMESPACE and c.workload == "thanos-ruler" and c.name == "thanos-ruler")
    probe = ruler_replica(ruler, "thanos-ruler-2", [{"name": "harness-tenants", "interval": "5s", "rules": [
        {"alert": "HarnessBothTenants", "expr": "count(count by (tenant_id) (harness_ruler_input)) == 2",
         "labels": {"severity": "none"}}]}])
    process = dev.harness.start(probe)
    try:
        assert process.wait_ready(60) == "ready", process.output()
        def rule() -> dict | None:
            groups = http_json(process.url("/api/v1/rules"))["data"]["groups"]
            found = [r for g in groups for r in g["rules"] if r["name"] == "HarnessBothTenants"]
            return found[0] if found and found[0]["state"] == "firing" else None

        firing = eventually(rule, 90)
        assert firing["health"] == "ok", firing
    finally:
        process.stop()


class _Target(BaseHTTPRequestHandler):
    """A scrape target that claims a tenant of its own in what it exposes."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b'harness_scraped{tenant_id="team-b"} 1\n'
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_scraped_series_carries_the_tenant_of_its_namespace(tmp_path):
    """The real Prometheus with dev's planned `kubernetes-pods` job (its relabelling, discovery replaced by static
    targets carrying the labels Kubernetes discovery gives a pod): a pod of team-a's namespace is team-a's, one of
    another namespace default-tenant's, and the target's own `tenant_id` is kept only as exported_tenant_id."""
    chicago = Objects([o for c, o in kubernetes_objects("dev") if c == "chicago"])
    config = yaml.safe_load(chicago.data("ConfigMap", NAMESPACE, "thanos-prometheus")["prometheus.yml"])
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "kubernetes-pods")
    assert not job.get("honor_labels"), job
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    Thread(target=server.serve_forever, daemon=True).start()
    target = f"127.0.0.1:{server.server_address[1]}"

    def pod(namespace: str) -> dict:
        return {"targets": [target], "labels": {
            "__meta_kubernetes_namespace": namespace, "__meta_kubernetes_pod_phase": "Running",
            "__meta_kubernetes_pod_name": f"app-{namespace}",
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
            "__meta_kubernetes_pod_label_app_kubernetes_io_name": "app"}}

    scraped = {**{k: v for k, v in job.items() if k != "kubernetes_sd_configs"},
               "static_configs": [pod("team-a"), pod("elsewhere")], "scrape_interval": "1s"}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({"scrape_configs": [scraped]}))
    port = free_port()
    prometheus = subprocess.Popen(
        [str(tool("prometheus")), f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        def series():
            result = _read(f"http://127.0.0.1:{port}", "harness_scraped", time.time())
            return {r["metric"]["namespace"]: r["metric"] for r in result} if len(result) == 2 else None

        found = eventually(series, 30, every=1)
    finally:
        prometheus.terminate()
        prometheus.wait(20)
        server.shutdown()
    assert found["team-a"]["tenant_id"] == "team-a", found
    assert found["elsewhere"]["tenant_id"] == "default-tenant", found
    assert {m["exported_tenant_id"] for m in found.values()} == {"team-b"}, found


def _basic_auth_passwords(tmp_path) -> dict[str, str]:
    """dev's planned basic-auth users and the passwords generated for them (the secret stack output globalBasicAuth)."""
    from tests.support.stacks import run_probe

    proc = run_probe(tmp_path, (
        "plan = plan_stack('dev')\n"
        "users = {r.name.rsplit('-basic-auth-', 1)[1]: r.outputs['result'] for r in plan.resources\n"
        "         if r.type == 'random:index/randomPassword:RandomPassword' and '-basic-auth-' in r.name\n"
        "         and not r.name.endswith('-salt-key')}\n"
        "print(json.dumps(users))\n"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_each_basic_auth_user_reads_its_tenant_through_the_gate(dev, tmp_path, capsys):
    """dev's entry point with tenants: the planned tenant gate (the real Caddy) checks each basic-auth user's password
    and sets the user's tenant towards the real global query-frontend, whatever THANOS-TENANT the client sends; the
    operator (thanos) reads every tenant through the real global query; a wrong password gets 401, and a tenant's
    reader asking for Grafana 403."""
    import base64

    stamp = int(time.time() * 1000) - 180_000
    for tenant in TENANTS:
        writer = Writer(dev, _client(dev, tmp_path, "chicago", f"thanos-remote-write-client-{tenant}"))
        assert eventually(lambda w=writer, t=tenant: w.post({"__name__": "harness_gate", "writer": t}, 1.0,
                                                             stamp) == 200, 60)
    passwords = _basic_auth_passwords(tmp_path)
    assert sorted(passwords) == ["team-a", "team-b", "thanos"], sorted(passwords)
    gate = dev.process("chicago", GLOBAL_NAMESPACE, "thanos-tenant-gate-pods")

    def ask(user: str, password: str, path: str, forged: str = "team-b") -> tuple[int, dict | None]:
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(gate.url(path), headers={
            "Authorization": f"Basic {credentials}", "THANOS-TENANT": forged})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, None

    at = stamp / 1000
    path = f"/api/v1/query?{urllib.parse.urlencode({'query': 'harness_gate', 'time': at})}"

    def writers(user: str) -> dict[str, str]:
        code, body = ask(user, passwords[user], path)
        assert code == 200 and body is not None, (user, code)
        return _writers(body["data"]["result"])

    seen = {user: eventually(lambda u=user: writers(u), 90) for user in ("team-a", "team-b")}
    seen["thanos"] = eventually(lambda: len(w := writers("thanos")) == 2 and w, 90)
    assert seen == {"team-a": {"team-a": "team-a"}, "team-b": {"team-b": "team-b"},
                    "thanos": {"team-a": "team-a", "team-b": "team-b"}}, seen
    assert ask("team-a", "not-the-password", path)[0] == 401
    assert ask("nobody", passwords["team-a"], path)[0] == 401
    assert ask("team-a", passwords["team-a"], "/grafana/")[0] == 403
    with capsys.disabled():
        print(f"\nthrough the tenant gate: {seen}")


def test_the_host_clusters_prometheus_scrapes_the_enforcing_query(dev):
    """chicago's real Prometheus (the planned config) finds the global tier's enforcing query through its SRV record
    and scrapes it under the query's job, so the query alerts and the planned-replicas rule watch it."""
    prometheus = dev.process("chicago", CLUSTERS["chicago"], "thanos-prometheus", "prometheus")
    planned = next(o for c, o in dev.objects if c == "chicago" and o["kind"] == "Deployment"
                   and o["metadata"]["name"] == "thanos-query-tenants-pods")["spec"]["replicas"]
    selector = f'job="thanos-query", namespace="{GLOBAL_NAMESPACE}", service="thanos-query-tenants-pods"'
    up = eventually(lambda: len(r := query(prometheus, f"up{{{selector}}}")) == planned and r, 150, every=5)
    assert [r["value"][1] for r in up] == ["1"] * planned, up
    # The enforcing query's own metrics arrive: it is scraped, not merely discovered.
    assert eventually(lambda: query(prometheus, f"thanos_query_concurrent_gate_queries_max{{{selector}}}"), 60)
