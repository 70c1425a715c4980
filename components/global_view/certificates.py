"""The stack CA and the certificates it issues, as `kubernetes.io/tls` Secrets every TLS endpoint mounts.

One CA per stack (clusters trust each other through it). Servers read their certificate and key again when the files
change, but read the CA bundle only at start: a CA rotation trusts old and new together first, then rolls pods (see
docs/global-view.md)."""

from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_tls as tls

from components.platform.kube import ClusterContext, register
from config.base import duration_seconds
from config.global_view import TlsSpec

CA_BUNDLE_SECRET = "thanos-ca-bundle"
CA_KEYPAIR_SECRET = "thanos-ca-keypair"
CA_ISSUER = "thanos-ca"
CERT_MOUNT = "/etc/thanos/tls"
CA_MOUNT = "/etc/thanos/ca"
TRUST_ANNOTATION = "thanos.io/trusted-ca-generations"
USES = {"server": ["digital_signature", "key_encipherment", "server_auth"],
        "client": ["digital_signature", "key_encipherment", "client_auth"]}


@dataclass(frozen=True)
class Certificate:
    """A certificate a workload needs: the Secret it lands in, its names and what it may be used for."""

    secret: str
    """Name of the `kubernetes.io/tls` Secret (keys tls.crt, tls.key, ca.crt)."""
    common_name: str
    """Subject CN."""
    dns_names: tuple[str, ...]
    """Subject alternative names the peer verifies (exactly the names clients dial)."""
    usage: Literal["server", "client"]
    """Extended key usage."""


def service_names(service: str, namespace: str, pods: bool = False) -> tuple[str, ...]:
    """The in-cluster names of a Service, and with `pods` of its pods behind a headless Service (what dnssrvnoa+
    yields)."""
    names = (f"{service}.{namespace}.svc.cluster.local", f"{service}.{namespace}.svc")
    return (*names, f"*.{service}.{namespace}.svc.cluster.local") if pods else names


def cert_volumes(secret: str) -> list[dict[str, Any]]:
    """The certificate Secret and the CA bundle as read-only volumes."""
    return [{"name": "tls", "secret": {"secretName": secret, "defaultMode": 0o440,
                                       "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]}},
            {"name": "ca", "secret": {"secretName": CA_BUNDLE_SECRET, "defaultMode": 0o440,
                                      "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]


def cert_mounts() -> list[dict[str, Any]]:
    """Where the certificate and the CA bundle are mounted."""
    return [{"name": "tls", "mountPath": CERT_MOUNT, "readOnly": True},
            {"name": "ca", "mountPath": CA_MOUNT, "readOnly": True}]


def server_tls_flags(prefix: str = "grpc-server-tls") -> list[str]:
    """Server certificate, key and the client CA: a peer without a certificate from the stack CA is refused."""
    return [f"--{prefix}-cert={CERT_MOUNT}/tls.crt", f"--{prefix}-key={CERT_MOUNT}/tls.key",
            f"--{prefix}-client-ca={CA_MOUNT}/ca.crt"]


def client_tls_config() -> dict[str, Any]:
    """`tls_config` of an endpoint SD config: the client certificate and the CA that verifies the servers."""
    return {"cert_file": f"{CERT_MOUNT}/tls.crt", "key_file": f"{CERT_MOUNT}/tls.key",
            "ca_file": f"{CA_MOUNT}/ca.crt", "min_version": "1.3"}


def hours(duration: str) -> int:
    """Whole hours of a duration (pulumi-tls counts in hours)."""
    return int(duration_seconds(duration) // 3600)


def certificate_resource(ctx: ClusterContext, cert: Certificate, spec: TlsSpec) -> dict[str, Any]:
    """A cert-manager Certificate issued by the namespace's CA Issuer (the stack CA)."""
    return {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": ctx.metadata(cert.secret, "tls"),
            "spec": {"secretName": cert.secret, "commonName": cert.common_name, "dnsNames": list(cert.dns_names),
                     "duration": f"{hours(spec.validity)}h", "renewBefore": f"{hours(spec.early_renewal)}h",
                     "usages": [u.replace("_", " ") for u in USES[cert.usage]],
                     "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                     "issuerRef": {"name": CA_ISSUER, "kind": "Issuer", "group": "cert-manager.io"}}}


class StackAuthority(pulumi.ComponentResource):
    """The stack's CA generations (ECDSA P-384), the trust bundle, and the issuing of certificates in a namespace."""

    provider: tls.Provider
    """The explicit tls provider (default providers are disabled for every package)."""
    bundle: pulumi.Output[str]
    """PEM of every trusted CA generation."""

    def __init__(self, name: str, environment: str, spec: TlsSpec, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:tls:StackAuthority", name, {}, opts)
        self.spec = spec
        self.provider = tls.Provider(f"{name}-tls", opts=pulumi.ResourceOptions(parent=self))
        self._opts = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.cas: dict[int, tuple[tls.PrivateKey, tls.SelfSignedCert]] = {}
        for generation in sorted(set(spec.trusted) | {spec.ca_generation}):
            key = tls.PrivateKey(f"{name}-ca-{generation}-key", algorithm="ECDSA", ecdsa_curve="P384", opts=self._opts)
            cert = tls.SelfSignedCert(
                f"{name}-ca-{generation}", private_key_pem=key.private_key_pem, is_ca_certificate=True,
                allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
                subject={"common_name": f"thanos {environment} CA {generation}", "organization": "thanos"},
                validity_period_hours=hours(spec.ca_validity), early_renewal_hours=hours(spec.ca_validity) // 10,
                opts=self._opts)
            self.cas[generation] = (key, cert)
        self.bundle = pulumi.Output.all(*(self.cas[g][1].cert_pem for g in spec.trusted)).apply("".join)
        self.trust_annotation = {TRUST_ANNOTATION: ",".join(str(g) for g in spec.trusted)}
        self.register_outputs({"caCertificate": self.bundle})

    def _signed(self, prefix: str, cert: Certificate, parent: pulumi.Resource) -> tuple[pulumi.Output, pulumi.Output]:
        opts = pulumi.ResourceOptions(parent=parent, provider=self.provider)
        key = tls.PrivateKey(f"{prefix}-{cert.secret}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=opts)
        request = tls.CertRequest(f"{prefix}-{cert.secret}-csr", private_key_pem=key.private_key_pem,
                                  dns_names=list(cert.dns_names), subject={"common_name": cert.common_name}, opts=opts)
        ca_key, ca_cert = self.cas[self.spec.ca_generation]
        signed = tls.LocallySignedCert(
            f"{prefix}-{cert.secret}", cert_request_pem=request.cert_request_pem, ca_cert_pem=ca_cert.cert_pem,
            ca_private_key_pem=ca_key.private_key_pem, allowed_uses=USES[cert.usage],
            validity_period_hours=hours(self.spec.validity), early_renewal_hours=hours(self.spec.early_renewal),
            opts=opts)
        return signed.cert_pem, key.private_key_pem

    def issue(self, prefix: str, ctx: ClusterContext, certs: list[Certificate], parent: pulumi.Resource,
              depends_on: list[pulumi.Resource]) -> dict[str, pulumi.CustomResource]:
        """The CA bundle Secret and one `kubernetes.io/tls` Secret per certificate in the context's namespace:
        signed here (pulumi-tls) or by cert-manager from a CA Issuer holding the stack CA."""
        bundle = {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(CA_BUNDLE_SECRET, "tls"),
                  "type": "Opaque", "stringData": {"ca.crt": self.bundle}}
        manifests: list[dict[str, Any]] = [bundle]
        if self.spec.issuer == "cert-manager":
            ca_key, ca_cert = self.cas[self.spec.ca_generation]
            manifests += [
                {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(CA_KEYPAIR_SECRET, "tls"),
                 "type": "kubernetes.io/tls", "stringData": {"tls.crt": ca_cert.cert_pem, "tls.key": ca_key.private_key_pem}},
                {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": ctx.metadata(CA_ISSUER, "tls"),
                 "spec": {"ca": {"secretName": CA_KEYPAIR_SECRET}}},
                *(certificate_resource(ctx, cert, self.spec) for cert in certs)]
        else:
            for cert in certs:
                pem, key = self._signed(prefix, cert, parent)
                manifests.append({"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(cert.secret, "tls"),
                                  "type": "kubernetes.io/tls",
                                  "stringData": {"tls.crt": pem, "tls.key": key, "ca.crt": self.bundle}})
        return register(manifests, f"{prefix}-tls", parent, depends_on)
