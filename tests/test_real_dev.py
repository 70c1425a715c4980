"""The dev stack's data path, run for real: chicago and seattle, then the global tier, every process started from
the plan's own args and files, against the planned MinIO servers: tests/realtools/devstack.py starts it (the `dev`
fixture, shared with the fault runs in tests/test_real_faults.py)."""

import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.config import Config

from tests.realtools.devstack import (CLUSTERS, GLOBAL_NAMESPACE, REPLICA_LABEL, eventually, http_json, metric,
                                      planned_external_labels, query, ruler_replica, s3_client)
from tests.realtools.pods import Objects, planned_containers
from tests.realtools.remote_write import label_fields, write_request

pytestmark = pytest.mark.xdist_group("real-dev")


def test_thanos_runs_as_a_minio_user_scoped_to_its_buckets(dev):
    """The planned objstore config names the user the planned Job created with the real mc, not the root user: it
    reads and writes its bucket, and can neither make a bucket nor touch another namespace's."""
    from botocore.exceptions import ClientError

    minio = dev.process("chicago", CLUSTERS["chicago"], "thanos-minio")
    chicago = Objects([o for c, o in dev.objects if c == "chicago"])
    config = yaml.safe_load(chicago.data("Secret", CLUSTERS["chicago"], "thanos-objstore")["objstore.yml"])["config"]
    assert config["access_key"] == "thanos-blocks" != minio.container.env["MINIO_ROOT_USER"]
    blocks = boto3.client("s3", endpoint_url=f"http://{minio.ip}:{minio.ports['--address']}",
                          aws_access_key_id=config["access_key"], aws_secret_access_key=config["secret_key"],
                          region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
    assert blocks.list_objects_v2(Bucket="thanos-chicago", MaxKeys=1)["KeyCount"] == 1
    s3_client(minio).create_bucket(Bucket="thanos-outside")  # a bucket of this server outside the user's policy
    for refused in (lambda: blocks.create_bucket(Bucket="thanos-anything"),
                    lambda: blocks.list_objects_v2(Bucket="thanos-outside"),
                    lambda: blocks.put_object(Bucket="thanos-outside", Key="x", Body=b"x")):
        with pytest.raises(ClientError) as error:
            refused()
        assert error.value.response["Error"]["Code"] == "AccessDenied", error.value.response


def test_the_history_carries_the_labels_the_plan_writes_and_deduplicates_on(dev):
    """The prepared blocks stand for the planned Prometheus' uploads: its external labels, and a replica label the
    planned global query deduplicates on."""
    for cluster, namespace in CLUSTERS.items():
        assert planned_external_labels(dev.objects, cluster, namespace)["cluster"] == cluster
    query_args = next(c.args for c in planned_containers("dev", dev.objects)
                      if c.namespace == GLOBAL_NAMESPACE and c.workload == "thanos-query-pods")
    assert f"--query.replica-label={REPLICA_LABEL}" in query_args


def test_the_store_gateways_load_the_uploaded_blocks(dev):
    for cluster, namespace in CLUSTERS.items():
        store = dev.process(cluster, namespace, "thanos-store")
        expected = dev.blocks[f"thanos-{cluster}"]
        # The compactor works on the same blocks meanwhile: what it replaced is still served (deletion marks wait).
        def loaded(store=store, expected=expected, cluster=cluster):
            count = metric(store, "thanos_bucket_store_blocks_loaded")
            assert count >= expected // 4, f"{cluster}: {count} blocks loaded of {expected} uploaded"
            return count

        eventually(loaded, 60)


def test_the_compactor_compacts_and_downsamples_the_history(dev):
    for cluster, namespace in CLUSTERS.items():
        compactor = dev.process(cluster, namespace, "thanos-compactor")
        for name in ("thanos_compact_group_compactions_total", "thanos_compact_downsample_total"):
            eventually(lambda name=name, compactor=compactor: metric(compactor, name) > 0, 180, every=5)
        assert metric(compactor, "thanos_compact_halted") == 0, compactor.output()


def test_the_global_query_frontend_shows_both_clusters_and_each_series_once(dev):
    frontend = dev.process("chicago", GLOBAL_NAMESPACE, "thanos-query-frontend-pods")
    def clusters():
        seen = {r["metric"].get("cluster") for r in query(frontend, "count by (cluster) (up)")}
        return seen if seen >= set(CLUSTERS) else None

    eventually(clusters, 120)
    start, end = dev.window
    result = query(frontend, "harness_history", start=start / 1000 + 3600, end=end / 1000 - 3600, step="300")
    keys = sorted((r["metric"]["cluster"], r["metric"]["instance"]) for r in result)
    # Two HA replicas per cluster, deduplicated on prometheus_replica: each series once, no replica label left.
    assert keys == sorted((c, i) for c in CLUSTERS for i in ("a", "b")), keys
    assert all(REPLICA_LABEL not in r["metric"] for r in result)


def _tls_secret(dev, cluster: str, namespace: str, name: str) -> dict[str, bytes]:
    return Objects([o for c, o in dev.objects if c == cluster]).data("Secret", namespace, name)


def _client_files(dev, tmp_path, cluster: str, namespace: str, secret: str) -> tuple[Path, Path]:
    """A planned client certificate and key as files."""
    pair = _tls_secret(dev, cluster, namespace, secret)
    cert, key = tmp_path / f"{cluster}-{secret}.crt", tmp_path / f"{cluster}-{secret}.key"
    cert.write_bytes(pair["tls.crt"])
    key.write_bytes(pair["tls.key"])
    return cert, key


def test_the_leaves_accept_only_the_global_query_certificate(dev, tmp_path):
    """The global query's certificate opens a leaf's gRPC port (the leaf's certificate verified for the name the
    global query dials); a client without one, and a remote writer's certificate (another CA), are refused."""
    reader = _client_files(dev, tmp_path, "chicago", GLOBAL_NAMESPACE, "thanos-global-client-tls")
    writer = _client_files(dev, tmp_path, "chicago", CLUSTERS["chicago"], "thanos-remote-write-client-tls")
    ca_pem = _tls_secret(dev, "chicago", GLOBAL_NAMESPACE, "thanos-ca-bundle")["ca.crt"].decode()
    for cluster, namespace in CLUSTERS.items():
        leaf = dev.process(cluster, namespace, "thanos-query-pods")
        address = (leaf.ip, leaf.ports["--grpc-address"])
        name = f"thanos-query-grpc.{namespace}.svc.cluster.local"

        def handshake(certificate, address=address, name=name) -> bytes:
            context = ssl.create_default_context(cadata=ca_pem)
            context.set_alpn_protocols(["h2"])
            if certificate:
                context.load_cert_chain(*certificate)
            with socket.create_connection(address, timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname=name) as tls:
                    tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000"))
                    return tls.recv(64)

        assert handshake(reader)  # the server's HTTP/2 SETTINGS: gRPC is served
        for refused in (None, writer):
            # TLS 1.3: the server refuses the client certificate after the client's handshake is done, on the read
            # (the writer's certificate has the reader's key usages: only its CA differs).
            with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
                handshake(refused)


def test_bucket_verify_runs_over_the_uploaded_blocks_on_a_read_only_root(dev):
    jobs = [c for c in planned_containers("dev", dev.objects) if c.workload == "thanos-bucket-verify"]
    assert jobs
    for job in jobs:
        process = dev.harness.start(job)
        assert process.wait_exit(120) == 0, process.output()
        assert "verify" in process.output().lower()
    # Without the planned /tmp it fails: the read-only root filesystem refuses the index download.
    job = jobs[0]
    job.mounts = [m for m in job.mounts if m.path != "/tmp"]
    process = dev.harness.start(job)
    assert process.wait_exit(120) != 0
    assert "read-only file system" in process.output() or "no such file" in process.output()


def test_the_post_deploy_validation_passes_and_names_a_stopped_leaf(dev, tmp_path):
    validations = [c for c in planned_containers("dev", dev.objects) if c.workload.startswith("thanos-validate-")]
    assert {c.namespace for c in validations} == {*CLUSTERS.values(), GLOBAL_NAMESPACE}
    for job in validations:
        process = dev.harness.start(job)
        assert process.wait_exit(300) == 0, process.output()
        assert "deployment valid" in process.output()
    # One leaf down: the global validation fails and names it (attempts cut to 2: the checks run unchanged).
    seattle = dev.process("seattle", "thanos-seattle", "thanos-query-pods")
    seattle.stop()
    assert dev.harness.wait_unpublished(seattle, 5)  # not ready: out of its Services' answers
    job = next(c for c in validations if c.namespace == GLOBAL_NAMESPACE)
    plan_file = next(m for m in job.mounts if m.volume.files and "plan.json" in m.volume.files)
    plan = json.loads(plan_file.volume.files["plan.json"][0])
    plan.update(attempts=2, interval=1)
    plan_file.volume.files["plan.json"] = (json.dumps(plan).encode(), plan_file.volume.files["plan.json"][1])
    process = dev.harness.start(job)
    assert process.wait_exit(120) == 1, process.output()
    failures = [line for line in process.output().splitlines() if line.startswith("FAIL")]
    assert any("seattle" in line for line in failures), process.output()


def test_remote_write_needs_the_planned_client_certificate(dev, tmp_path):
    """A writer with the cluster's remote-write client certificate is ingested by receive (its sample comes back
    through the leaf query); one without a certificate, or with a certificate of another CA, is refused at the
    handshake."""
    from cryptography import x509

    namespace = CLUSTERS["chicago"]
    router = dev.process("chicago", namespace, "thanos-receive-router")
    writer = _client_files(dev, tmp_path, "chicago", namespace, "thanos-remote-write-client-tls")
    reader = _client_files(dev, tmp_path, "chicago", GLOBAL_NAMESPACE, "thanos-global-client-tls")
    seattle_writer = _client_files(dev, tmp_path, "seattle", CLUSTERS["seattle"], "thanos-remote-write-client-tls")
    server = _tls_secret(dev, "chicago", namespace, "thanos-remote-write-tls")
    ca_pem = _tls_secret(dev, "chicago", namespace, "thanos-ca-bundle")["ca.crt"].decode()
    names = x509.load_pem_x509_certificate(server["tls.crt"]).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    url = f"https://{router.ip}:{router.ports['--remote-write.address']}/api/v1/receive"
    now = int(time.time() * 1000)
    body = write_request([label_fields({"__name__": "harness_remote_write", "writer": "harness"})], 42.0, now)

    def post(certificate) -> int:
        context = ssl.create_default_context(cadata=ca_pem)
        context.check_hostname = False  # the router's SANs are its Service names: checked below, not by address
        if certificate:
            context.load_cert_chain(*certificate)
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0"})
        with urllib.request.urlopen(request, context=context, timeout=20) as response:
            return response.status

    assert any(n.startswith("thanos-receive-router") for n in names), names
    assert eventually(lambda: post(writer) == 200, 60)
    # No certificate, the global query's (it reads, never writes) and another cluster's writer: all refused.
    for refused in (None, reader, seattle_writer):
        with pytest.raises((ssl.SSLError, ConnectionResetError, urllib.error.URLError)):
            post(refused)
    leaf = dev.process("chicago", namespace, "thanos-query-pods")
    result = eventually(lambda: query(leaf, 'harness_remote_write{writer="harness"}', time=now / 1000), 60)
    assert float(result[0]["value"][1]) == 42.0
    assert result[0]["metric"]["cluster"] == "chicago"  # receive's external labels


def test_a_global_ruler_alert_reaches_alertmanager_with_the_cluster_it_is_about(dev):
    """The planned global ruler (a second replica of it, whose rule file holds one alert that fires at once: the
    planned alerts wait 15m) sends to the planned Alertmanagers, and the alert keeps its own `cluster` label: Thanos
    sets external labels over alert labels, so the global ruler must carry no `cluster` of its own."""
    ruler = next(c for c in planned_containers("dev", dev.objects, all_replicas=True)
                 if c.namespace == GLOBAL_NAMESPACE and c.workload == "thanos-ruler" and c.name == "thanos-ruler")
    probe = ruler_replica(ruler, "thanos-ruler-1", [
        {"name": "harness", "interval": "5s", "partial_response_strategy": "abort",
         "rules": [{"alert": "HarnessClusterAlert", "expr": "vector(1)",
                    "labels": {"severity": "critical", "cluster": "seattle"}}]}])
    dev.harness.start(probe)
    alertmanager = dev.process("chicago", CLUSTERS["chicago"], "thanos-alertmanager")

    def received():
        alerts = [a for a in http_json(alertmanager.url("/api/v2/alerts"))
                  if a["labels"].get("alertname") == "HarnessClusterAlert"]
        return alerts

    alert = eventually(received, 90)[0]
    assert alert["labels"]["cluster"] == "seattle", alert["labels"]
    assert alert["labels"].get("tier") == "global" and "rule_replica" not in alert["labels"], alert["labels"]


def test_a_stateless_ruler_writes_its_results_through_receive_and_keeps_no_tsdb(dev):
    """chicago's ruler planned with `thanos.ruler.stateless` (its StatefulSet from that plan, beside dev's Secrets, as a
    second replica with one recording rule): its series arrive through the real routers with the ruler's labels and
    receive's, chicago's query answers them, and its data directory holds only the write-ahead log of what it sends
    (no head, no block to upload)."""
    from tests.realtools.plan import kubernetes_objects

    namespace = CLUSTERS["chicago"]
    def is_ruler(cluster: str, obj: dict) -> bool:
        return (cluster == "chicago" and obj["kind"] == "StatefulSet" and obj["metadata"]["name"] == "thanos-ruler"
                and obj["metadata"].get("namespace") == namespace)
    stateless = next(o for c, o in kubernetes_objects("dev", {"thanos": {"ruler": {"stateless": True}}}) if is_ruler(c, o))
    objects = [(c, stateless if is_ruler(c, o) else o) for c, o in dev.objects]
    ruler = next(c for c in planned_containers("dev", objects, all_replicas=True)
                 if c.namespace == namespace and c.workload == "thanos-ruler" and c.name == "thanos-ruler")
    assert any(a.startswith("--remote-write.config=") for a in ruler.args), ruler.args
    probe = ruler_replica(ruler, "thanos-ruler-1", [{"name": "harness", "interval": "5s", "rules": [
        {"record": "harness:stateless_ruler:one", "expr": "vector(1)"}]}])
    process = dev.harness.start(probe)
    try:
        assert process.wait_ready(60) == "ready", process.output()
        leaf = dev.process("chicago", namespace, "thanos-query-pods")
        series = eventually(lambda: query(leaf, 'harness:stateless_ruler:one{rule_replica="thanos-ruler-1"}',
                                          dedup="false"), 120, every=3)
        labels = series[0]["metric"]
        assert labels["cluster"] == "chicago" and labels.get("receive_replica"), labels  # written through receive
        assert metric(process, "prometheus_remote_storage_samples_total") > 0
        data = dev.harness.sandbox.volume_file(probe, "/var/thanos/rule")
        assert (data / "wal").is_dir() and not (data / "chunks_head").exists(), sorted(p.name for p in data.iterdir())
    finally:
        process.stop()


def test_the_mixin_alerts_load_and_evaluate_on_the_planned_labels(dev):
    """chicago's real Prometheus loads the planned rule file, the Thanos mixin's groups with it, and evaluates every
    rule without an error. The mixin's sidecar alert joins a sidecar to a Prometheus that finished replaying its WAL
    on (namespace, pod): the planned DNS-discovered targets carry no pod label (a sidecar's SRV target under its own
    Service is its dashed address), so the join matches within the namespace, and finds every running sidecar."""
    from components.observability.mixin import mixin_alerts

    namespace = CLUSTERS["chicago"]
    prometheus = dev.process("chicago", namespace, "thanos-prometheus", "prometheus")

    def evaluated() -> list[dict] | None:
        groups = http_json(prometheus.url("/api/v1/rules"))["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return groups if rules and all(r.get("lastEvaluation", "").startswith("2") and r["health"] != "unknown"
                                       for r in rules) else None

    groups = eventually(evaluated, 120, every=5)
    broken = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert not broken, broken
    loaded = {r["name"] for g in groups for r in g["rules"]}
    expected = {r["alert"] for component in ("thanos-sidecar", "thanos-query", "thanos-store", "thanos-compactor",
                                             "thanos-ruler", "thanos-receive") for r in mixin_alerts()[component]}
    assert expected <= loaded, expected - loaded
    joined = eventually(lambda: query(prometheus, 'thanos_sidecar_prometheus_up{job="thanos-sidecar"} '
                                                  "and on (namespace, pod) prometheus_tsdb_data_replay_duration_seconds"),
                        120, every=5)
    sidecars = query(prometheus, 'thanos_sidecar_prometheus_up{job="thanos-sidecar"}')
    assert sidecars and len(joined) == len(sidecars), (joined, sidecars)


def test_every_connection_the_real_processes_made_is_allowed_by_the_planned_network_policies(dev):
    """Runs last in this module: every connection one started pod opened to another during the tests above that the
    kernel's socket table showed (sampled each second; the shortest may pass unseen) is one the planned
    NetworkPolicies allow, evaluated with Kubernetes'
    semantics (tests/network_policies.py; no CNI enforces them here). A policy that forgot a flow fails here."""
    from tests.network_policies import reachable

    policies = [o for _, o in dev.objects if o["kind"] == "NetworkPolicy"]
    containers = {p.container.id: p.container for p in dev.harness.sandbox.processes}
    seen, refused = set(), []
    with dev.flows_lock:
        connections = sorted(dev.flows)
    for client_id, server_id, port in connections:
        client, server = containers[client_id], containers[server_id]
        flow = (client.namespace, client.labels.get("app.kubernetes.io/name"), server.namespace,
                server.labels.get("app.kubernetes.io/name"), port)
        seen.add(flow)
        if not reachable(policies, {"ns": client.namespace, "labels": client.labels},
                         {"ns": server.namespace, "labels": server.labels}, port):
            refused.append(flow)
    print(f"{len(connections)} connections, {len(seen)} distinct flows:", *sorted(seen), sep="\n  ")
    assert not sorted(set(refused)), sorted(set(refused))
    # The flows every start-up opens and keeps are seen (so the sampling works): the queries' StoreAPIs, the
    # stores reaching MinIO and the routers' meta-monitoring queries to Prometheus (their head-series limits; the
    # setup Jobs' short ones are checked when seen).
    names = {(flow[1], flow[3]) for flow in seen}
    assert {("thanos-query", "thanos-store"), ("thanos-query", "thanos-prometheus"),
            ("thanos-store", "thanos-minio")} <= names, sorted(names)
    assert ("thanos-receive-router", "thanos-prometheus", 9090) in {
        (flow[1], flow[3], flow[4]) for flow in seen if flow[0] == flow[2]}, sorted(seen)
