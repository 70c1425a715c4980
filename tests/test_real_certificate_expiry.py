"""Certificate expiry judged by the real tools: dev's planned receive router (real Thanos) serving its planned
certificate, dev's planned TLS probe (the real blackbox exporter with the planned module and the writers' client
certificate) dialling it, and the real Prometheus evaluating the plan's own certificate rules over the probe's metrics.
A fresh certificate raises nothing; the same router serving a certificate signed the way the plan signs (the plan's CA,
key usages and names) with two days left makes both expiry alerts pend; an expired client certificate fails the
probe's handshake, as it fails the writers'."""

import json
import subprocess
import time
import urllib.parse

import yaml
from cryptography import x509

from components.global_view.certificates import USES
from components.observability import tls_probe
from preflight import tls_mocks
from tests.realtools import Harness
from tests.realtools.build import tool
from tests.realtools.kubernetes import free_port, wait_until
from tests.realtools.pods import Objects, planned_containers
from tests.realtools.plan import kubernetes_objects
from tests.test_real_node_exporter import get

CLUSTER, NAMESPACE = "chicago", "thanos-chicago"
SERVER_CA_KEY = "stack-ca-1-key"
"""The plan's server CA key resource (the mock engine derives a key from the resource name, as the plan signs)."""
WRITERS_CA_KEY = f"stack-writers-{CLUSTER}-ca-1-key"


def signed(pem_cert: bytes, ca_pem: str, ca_key_name: str, usage: str, hours: int) -> tuple[str, str]:
    """A certificate for the same names as `pem_cert`, signed by the plan's CA as the plan signs, valid `hours` from
    the start of today (0: expired since midnight); (certificate, key)."""
    names = []
    try:
        names = x509.load_pem_x509_certificate(pem_cert).extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        pass
    key = tls_mocks.private_key(f"expiry-test-{usage}-{hours}", {"algorithm": "ECDSA", "ecdsaCurve": "P256"})["privateKeyPem"]
    csr = tls_mocks.cert_request({"privateKeyPem": key, "dnsNames": names, "subject": {"commonName": "expiry-test"}})
    ca_key = tls_mocks.private_key(ca_key_name, {"algorithm": "ECDSA", "ecdsaCurve": "P384"})["privateKeyPem"]
    cert = tls_mocks.locally_signed_cert(f"expiry-test-{usage}-{hours}", {
        "certRequestPem": csr["certRequestPem"], "caCertPem": ca_pem, "caPrivateKeyPem": ca_key,
        "allowedUses": USES[usage], "validityPeriodHours": hours})["certPem"]
    return cert, key


def test_the_probe_sees_the_served_certificate_and_the_plans_rules_fire_on_it(tmp_path, capsys):
    started = time.monotonic()
    objects = kubernetes_objects("dev")
    chicago = Objects([o for c, o in objects if c == CLUSTER])
    planned_at = time.monotonic()
    prometheus_yml = yaml.safe_load(chicago.data("ConfigMap", NAMESPACE, "thanos-prometheus")["prometheus.yml"])
    job = next(j for j in prometheus_yml["scrape_configs"] if j["job_name"] == tls_probe.JOB)
    rules = yaml.safe_load(chicago.data("ConfigMap", NAMESPACE, "thanos-prometheus-rules")["platform.yaml"])
    group = next(g for g in rules["groups"] if g["name"] == f"{tls_probe.JOB}.alerts")
    bundle = chicago.data("Secret", NAMESPACE, "thanos-ca-bundle")
    server = chicago.data("Secret", NAMESPACE, "thanos-remote-write-tls")
    client = chicago.data("Secret", NAMESPACE, "thanos-remote-write-client-tls")

    containers = planned_containers("dev", objects)
    router = next(c for c in containers if (c.cluster, c.namespace) == (CLUSTER, NAMESPACE)
                  and c.name == "thanos-receive-router")
    probe = next(c for c in containers if (c.cluster, c.namespace) == (CLUSTER, NAMESPACE)
                 and c.name == "blackbox-exporter")
    with Harness(tmp_path, objects) as harness:
        router_process = harness.start(router)
        probe_process = harness.start(probe)
        assert router_process.wait_ready(60) == "ready", router_process.output()
        assert harness.wait_published(router_process, 30)
        assert probe_process.wait_ready(30) == "ready", probe_process.output()
        exporter = f"{probe_process.ip}:{probe_process.ports['--web.listen-address']}"

        # The planned job, but the exporter at its loopback address (the planned relabelling names it by Service).
        job = {**job, "scrape_interval": "1s", "scrape_timeout": "1s",
               "static_configs": [g for g in job["static_configs"] if g["labels"]["namespace"] == NAMESPACE],
               "relabel_configs": [r if r.get("target_label") != "__address__" or r.get("source_labels") != ["namespace"]
                                   else {"target_label": "__address__", "replacement": exporter}
                                   for r in job["relabel_configs"]]}
        (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{**group, "interval": "1s"}]}))
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules.yml")], "scrape_configs": [job]}))
        check = subprocess.run([str(tool("promtool")), "check", "config", str(tmp_path / "prometheus.yml")],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        port = free_port()
        prometheus = subprocess.Popen([str(tool("prometheus")), f"--config.file={tmp_path / 'prometheus.yml'}",
                                       f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        api = f"http://127.0.0.1:{port}/api/v1"

        def query(expr: str) -> list[dict]:
            code, body = get(f"{api}/query?query={urllib.parse.quote(expr)}")
            return json.loads(body)["data"]["result"] if code == 200 else []

        def alerts() -> dict[str, str]:
            code, body = get(f"{api}/alerts")
            return {a["labels"]["alertname"]: a["state"] for a in json.loads(body)["data"]["alerts"]} if code == 200 else {}

        def days_left() -> float | None:
            found = query(f'(probe_ssl_earliest_cert_expiry{{job="{tls_probe.JOB}"}} - time()) / 86400')
            return float(found[0]["value"][1]) if found else None

        try:
            # The planned certificate: 90 days (from the start of today), the probe passes, nothing pends.
            assert wait_until(lambda: (days_left() or 0) > 85, 30), (probe_process.output(), get(f"{api}/targets")[1])
            assert query(f'probe_success{{job="{tls_probe.JOB}"}}')[0]["value"][1] == "1"
            time.sleep(3)  # a few evaluations over the fresh certificate
            assert alerts() == {}, alerts()
            instance = query(f'probe_success{{job="{tls_probe.JOB}"}}')[0]["metric"]["instance"]
            assert instance == f"https://thanos-receive-router.{NAMESPACE}.svc.cluster.local:19291/api/v1/receive"

            # The router's Secret now holds a certificate with two days left (signed by the plan's server CA): the
            # router reads it again without a restart, the probe reports it, and both expiry alerts pend.
            short, short_key = signed(server["tls.crt"], bundle["ca.crt"].decode(), SERVER_CA_KEY, "server", 48)
            # Signed by the plan's own CA key (the mock engine's, derived from its resource name).
            x509.load_pem_x509_certificate(short.encode()).verify_directly_issued_by(
                x509.load_pem_x509_certificate(bundle["ca.crt"]))
            harness.sandbox.volume_file(router, "/etc/thanos/tls/tls.key").write_text(short_key)
            harness.sandbox.volume_file(router, "/etc/thanos/tls/tls.crt").write_text(short)
            assert wait_until(lambda: (days_left() or 99) < 2, 60), (router_process.output(), days_left())
            assert wait_until(lambda: alerts() == {"ThanosCertificateRenewalDue": "pending",
                                                   "ThanosCertificateExpiring": "pending"}, 30), alerts()
            assert query(f'probe_success{{job="{tls_probe.JOB}"}}')[0]["value"][1] == "1"

            # The writers' client certificate expired (its NotAfter is midnight): the router refuses the handshake
            # and the probe fails with it; its NotAfter was never visible, its refusal is.
            expired, expired_key = signed(client["tls.crt"], bundle["writers.crt"].decode(), WRITERS_CA_KEY, "client", 0)
            x509.load_pem_x509_certificate(expired.encode()).verify_directly_issued_by(
                x509.load_pem_x509_certificate(bundle["writers.crt"]))
            harness.sandbox.volume_file(probe, "/etc/thanos/tls/tls.key").write_text(expired_key)
            harness.sandbox.volume_file(probe, "/etc/thanos/tls/tls.crt").write_text(expired)
            assert wait_until(lambda: query(f'probe_success{{job="{tls_probe.JOB}"}}')[0]["value"][1] == "0", 30)
            assert wait_until(lambda: alerts().get("ThanosTlsProbeFailing") == "pending", 30), alerts()
        finally:
            prometheus.terminate()
            prometheus.wait(20)
    assert not harness.leftovers(), harness.leftovers()
    with capsys.disabled():
        print(f"\n  certificate expiry: planned in {planned_at - started:.1f} s, "
              f"real tools {time.monotonic() - planned_at:.1f} s")

