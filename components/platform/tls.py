"""Where TLS material sits in a pod and how Thanos is told about it: the certificate Secret and the CA bundle as
volumes, the server and client flags, and the in-cluster names a certificate covers. Which CA signs what is
components/global_view/certificates.py's."""

from typing import Any, Literal

from components.platform.names import pod_host, service_host

CA_BUNDLE_SECRET = "thanos-ca-bundle"
Signer = Literal["servers", "readers", "writers"]
BUNDLE_FILES: dict[str, str] = {"servers": "ca.crt", "readers": "readers.crt", "writers": "writers.crt"}
"""The key (and file under CA_MOUNT) of each CA's bundle in the thanos-ca-bundle Secret."""
CERT_MOUNT = "/etc/thanos/tls"
CA_MOUNT = "/etc/thanos/ca"


def service_names(service: str, namespace: str, pods: bool = False) -> tuple[str, ...]:
    """The in-cluster names of a Service, and with `pods` of its pods behind a headless Service (what dnssrvnoa+
    yields)."""
    names = (service_host(service, namespace), f"{service}.{namespace}.svc")
    return (*names, pod_host("*", service, namespace)) if pods else names


def cert_volumes(secret: str) -> list[dict[str, Any]]:
    """The certificate Secret and the CA bundles (every file the namespace's bundle Secret holds) as read-only
    volumes."""
    return [{"name": "tls", "secret": {"secretName": secret, "defaultMode": 0o440,
                                       "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]}},
            {"name": "ca", "secret": {"secretName": CA_BUNDLE_SECRET, "defaultMode": 0o440}}]


def cert_mounts() -> list[dict[str, Any]]:
    """Where the certificate and the CA bundle are mounted."""
    return [{"name": "tls", "mountPath": CERT_MOUNT, "readOnly": True},
            {"name": "ca", "mountPath": CA_MOUNT, "readOnly": True}]


def server_tls_flags(clients: Literal["readers", "writers"], prefix: str = "grpc-server-tls") -> list[str]:
    """Server certificate, key and the one client CA it accepts: a peer without a certificate from that CA is
    refused."""
    return [f"--{prefix}-cert={CERT_MOUNT}/tls.crt", f"--{prefix}-key={CERT_MOUNT}/tls.key",
            f"--{prefix}-client-ca={CA_MOUNT}/{BUNDLE_FILES[clients]}"]


def client_tls_config() -> dict[str, Any]:
    """`tls_config` of an endpoint SD config: the client certificate and the CA that verifies the servers."""
    return {"cert_file": f"{CERT_MOUNT}/tls.crt", "key_file": f"{CERT_MOUNT}/tls.key",
            "ca_file": f"{CA_MOUNT}/ca.crt", "min_version": "1.3"}
