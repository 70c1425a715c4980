"""The TLS probe: a blackbox exporter per namespace that dials the namespace's mTLS endpoints with the client
certificate their real clients use, so Prometheus sees the certificates actually served (`probe_ssl_earliest_cert_
expiry`, their NotAfter) and every handshake a client would make (`probe_success`).

- A cluster namespace (receive on) probes its routers' HTTPS remote-write port with the writers' client certificate.
- The global tier's namespace probes every leaf query and global ruler over gRPC (the health service) with the global
  query's client certificate.
A client certificate's own expiry is not visible to a probe: the probe presents the same Secret the writers (or the
global query) present, so when that certificate expires or stops being trusted its handshake is refused and the
probe fails, as theirs do. Client and server certificates are issued together with the same validity (pulumi-tls in
one `pulumi up`, cert-manager with the same renewBefore), so the servers' days left stand for both."""

import hashlib
from typing import Any

import yaml

from components.platform.common import TLS_PROBE_PORT, container, pod_spec, service_name
from components.platform.kube import ClusterContext
from components.platform.names import service_address
from components.platform.tls import CA_MOUNT, CERT_MOUNT, cert_mounts, cert_volumes
from components.platform.workload import workload_objects
from config.observability import BLACKBOX_EXPORTER_IMAGE
from config.thanos import Compute, Resources

COMPONENT = "tls-probe"
NAME = service_name(COMPONENT)
CONFIG_DIR = "/etc/blackbox"
JOB = "tls-probe"
"""The scrape job of the probes (one series per probed endpoint); the exporter's own metrics are job thanos-tls-probe."""
WRITERS, READERS = "writers", "readers"
"""Modules: the writers' HTTPS remote-write handshake, the readers' gRPC (StoreAPI) handshake."""
REMOTE_WRITE_STATUS = 405
"""What a router answers a GET on /api/v1/receive after the handshake (it takes only POSTs): the answer that shows the
handshake passed. Any other answer, and no answer, fails the probe."""
RESOURCES = Resources(requests=Compute(cpu="10m", memory="20Mi"), limits=Compute(memory="64Mi"))
"""Measured: 19 MB resident while probing. dev's kind node has no room for more during a rolling update."""


def _tls_config() -> dict[str, Any]:
    """The client certificate mounted in the pod and the server CA (prometheus/common's tls_config)."""
    return {"cert_file": f"{CERT_MOUNT}/tls.crt", "key_file": f"{CERT_MOUNT}/tls.key",
            "ca_file": f"{CA_MOUNT}/ca.crt", "min_version": "TLS13"}


def blackbox_config(module: str) -> dict[str, Any]:
    """blackbox.yml with the one module a namespace needs: the handshake verifies the server for the name dialled
    (the target's host) with the client certificate."""
    if module == WRITERS:
        prober = {"prober": "http", "timeout": "5s", "http": {
            "method": "GET", "valid_status_codes": [REMOTE_WRITE_STATUS], "fail_if_not_ssl": True,
            "preferred_ip_protocol": "ip4", "tls_config": _tls_config()}}
    elif module == READERS:
        prober = {"prober": "grpc", "timeout": "5s", "grpc": {
            "tls": True, "service": "", "preferred_ip_protocol": "ip4", "tls_config": _tls_config()}}
    else:
        raise ValueError(f"tls probe: unknown module {module!r} ({WRITERS}, {READERS})")
    return {"modules": {module: prober}}


def build_tls_probe(ctx: ClusterContext, module: str, client_secret: str, image: str = BLACKBOX_EXPORTER_IMAGE
                    ) -> list[dict[str, Any]]:
    """The module's config, one blackbox exporter (a probe missed while it restarts is harmless: expiry is counted
    in days) with the client certificate `client_secret` and the CA bundle, its headless Service (scraped for its
    own health and dialled for probes)."""
    http = {"name": "http", "containerPort": TLS_PROBE_PORT, "protocol": "TCP"}
    probes = {"livenessProbe": {"httpGet": {"path": "/-/healthy", "port": "http"}, "periodSeconds": 30},
              "readinessProbe": {"httpGet": {"path": "/-/healthy", "port": "http"}, "periodSeconds": 10}}
    exporter = container("blackbox-exporter", image,
                         [f"--config.file={CONFIG_DIR}/blackbox.yml", f"--web.listen-address=:{TLS_PROBE_PORT}"],
                         RESOURCES, ports=[http], probes=probes,
                         mounts=[{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}, *cert_mounts()])
    pod = pod_spec(NAME, [exporter], selector=ctx.selector(COMPONENT), replicas=1, grace_seconds=30,
                   volumes=[{"name": "config", "configMap": {"name": NAME}}, *cert_volumes(client_secret)])
    text = yaml.safe_dump(blackbox_config(module), sort_keys=False)
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(NAME, COMPONENT),
              "data": {"blackbox.yml": text}}
    # The module changes only with the plan: a new pod reads it (no reloader beside it, whose CPU request would not
    # fit dev's kind node during a rollout). Certificates are read again at each probe.
    checksum = {"thanos.io/config-sha256": hashlib.sha256(text.encode()).hexdigest()}
    return [config, *workload_objects(ctx, COMPONENT, NAME, kind="Deployment", replicas=1, pod=pod, ports=[http],
                                      pod_annotations=checksum)]


def probe_scrape_job(groups: list[tuple[str, str, list[str]]]) -> dict[str, Any]:
    """The Prometheus job that has each namespace's exporter probe its targets: `groups` is (namespace, module,
    targets). Each series carries instance (the target), module and namespace. The exporter's address is fixed, so a
    dead exporter shows as `up == 0` of this job (TargetDown), never as a missing target."""
    return {"job_name": JOB, "metrics_path": "/probe",
            "static_configs": [{"targets": sorted(targets), "labels": {"__param_module": module, "namespace": namespace}}
                               for namespace, module, targets in groups],
            "relabel_configs": [
                {"source_labels": ["__address__"], "target_label": "__param_target"},
                {"source_labels": ["__param_target"], "target_label": "instance"},
                {"source_labels": ["__param_module"], "target_label": "module"},
                {"source_labels": ["namespace"], "target_label": "__address__",
                 "replacement": service_address(NAME, "$1", TLS_PROBE_PORT)}]}


