"""The stack's CAs and the certificates they issue, as `kubernetes.io/tls` Secrets every TLS endpoint mounts.

One CA per trust relationship, so a certificate opens only what it is for:
- the server CA signs every server certificate; every client verifies servers against it (`ca.crt`);
- the readers CA signs the global query's client certificate; the StoreAPI servers (each leaf query, the global
  ruler) accept only it (`readers.crt`): a remote writer's certificate cannot read series;
- each cluster's writers CA signs that cluster's remote-write client certificate; only that cluster's routers accept
  it (`writers.crt`): the global query's certificate cannot write, nor one cluster's writer into another.

Servers read their certificate and key again when the files change, but read a CA bundle only at start: a CA rotation
trusts old and new together first, then rolls pods (see docs/global-view.md); every CA rotates with the same
generations."""

from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_tls as tls

from components.platform.kube import ClusterContext, register
from components.platform.tls import BUNDLE_FILES, CA_BUNDLE_SECRET, Signer
from config.base import duration_seconds
from config.global_view import TlsSpec

CA_KEYPAIR_SECRET = "thanos-ca-keypair"
CA_ISSUER = "thanos-ca"
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
    signed_by: Signer = "servers"
    """The CA that signs it: servers for server certificates, readers or writers for client certificates."""
    organization: str = ""
    """Subject O (default none): a remote writer's tenant, which the routers read as `organization`."""

    def __post_init__(self):
        if (self.usage == "server") != (self.signed_by == "servers"):
            raise ValueError(f"certificate {self.secret}: a {self.usage} certificate cannot be signed by the "
                             f"{self.signed_by} CA")


def hours(duration: str) -> int:
    """Whole hours of a duration (pulumi-tls counts in hours)."""
    return int(duration_seconds(duration) // 3600)


def subject(cert: Certificate) -> tls.CertRequestSubjectArgs:
    """The certificate request's subject: its CN, and O where it has one."""
    return tls.CertRequestSubjectArgs(common_name=cert.common_name, organization=cert.organization or None)


def issuer_name(signer: Signer) -> str:
    """The cert-manager Issuer (and `<issuer>-keypair` Secret) of a CA in a namespace."""
    return CA_ISSUER if signer == "servers" else f"thanos-{signer}-ca"


def certificate_resource(ctx: ClusterContext, cert: Certificate, spec: TlsSpec) -> dict[str, Any]:
    """A cert-manager Certificate issued by the namespace's Issuer of the certificate's CA."""
    return {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": ctx.metadata(cert.secret, "tls"),
            "spec": {"secretName": cert.secret, "commonName": cert.common_name, "dnsNames": list(cert.dns_names),
                     "duration": f"{hours(spec.validity)}h", "renewBefore": f"{hours(spec.early_renewal)}h",
                     "usages": [u.replace("_", " ") for u in USES[cert.usage]],
                     "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                     "issuerRef": {"name": issuer_name(cert.signed_by), "kind": "Issuer", "group": "cert-manager.io"},
                     **({"subject": {"organizations": [cert.organization]}} if cert.organization else {})}}


@dataclass(frozen=True)
class StackAuthorityArgs:
    """What the stack's CAs are made from."""

    environment: str
    """The stack's environment, named in every CA's common name."""
    spec: TlsSpec
    """CA and certificate lifetimes, generations, and the issuer."""


class StackAuthority(pulumi.ComponentResource):
    """The stack's CAs (ECDSA P-384, one generation each per trusted generation), their trust bundles, and the
    issuing of certificates in a namespace."""

    provider: tls.Provider
    """The explicit tls provider (default providers are disabled for every package)."""
    bundle: pulumi.Output[str]
    """PEM of every trusted generation of the server CA (what clients verify servers against)."""

    def __init__(self, name: str, args: StackAuthorityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:tls:StackAuthority", name, {}, opts)
        self.name, self.environment, self.spec = name, args.environment, args.spec
        self.provider = tls.Provider(f"{name}-tls", opts=pulumi.ResourceOptions(parent=self))
        self._opts = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self._cas: dict[tuple[Signer, str], dict[int, tuple[tls.PrivateKey, tls.SelfSignedCert]]] = {}
        self.bundle = self._bundle("servers", "")
        self.trust_annotation = {TRUST_ANNOTATION: ",".join(str(g) for g in args.spec.trusted)}
        self.register_outputs({"caCertificate": self.bundle})

    def _generations(self, signer: Signer, cluster: str) -> dict[int, tuple[tls.PrivateKey, tls.SelfSignedCert]]:
        """Every generation of one CA, created on first use (a writers CA per cluster, by the name it was created
        with, so a renamed cluster keeps its CA)."""
        key = (signer, cluster if signer == "writers" else "")
        if key not in self._cas:
            prefix = {"servers": self.name, "readers": f"{self.name}-readers",
                      "writers": f"{self.name}-writers-{cluster}"}[signer]
            what = {"servers": "CA", "readers": "readers CA", "writers": f"{cluster} writers CA"}[signer]
            self._cas[key] = {}
            for generation in sorted(set(self.spec.trusted) | {self.spec.ca_generation}):
                ca_key = tls.PrivateKey(f"{prefix}-ca-{generation}-key", algorithm="ECDSA", ecdsa_curve="P384",
                                        opts=self._opts)
                cert = tls.SelfSignedCert(
                    f"{prefix}-ca-{generation}", private_key_pem=ca_key.private_key_pem, is_ca_certificate=True,
                    allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
                    subject={"common_name": f"thanos {self.environment} {what} {generation}", "organization": "thanos"},
                    validity_period_hours=hours(self.spec.ca_validity),
                    early_renewal_hours=hours(self.spec.ca_validity) // 10, opts=self._opts)
                self._cas[key][generation] = (ca_key, cert)
        return self._cas[key]

    def _bundle(self, signer: Signer, cluster: str) -> pulumi.Output[str]:
        generations = self._generations(signer, cluster)
        return pulumi.Output.all(*(generations[g][1].cert_pem for g in self.spec.trusted)).apply("".join)

    def _signing(self, signer: Signer, cluster: str) -> tuple[tls.PrivateKey, tls.SelfSignedCert]:
        return self._generations(signer, cluster)[self.spec.ca_generation]

    def _signed(self, prefix: str, cert: Certificate, cluster: str,
                parent: pulumi.Resource) -> tuple[pulumi.Output, pulumi.Output]:
        opts = pulumi.ResourceOptions(parent=parent, provider=self.provider)
        key = tls.PrivateKey(f"{prefix}-{cert.secret}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=opts)
        request = tls.CertRequest(f"{prefix}-{cert.secret}-csr", private_key_pem=key.private_key_pem,
                                  dns_names=list(cert.dns_names), subject=subject(cert), opts=opts)
        ca_key, ca_cert = self._signing(cert.signed_by, cluster)
        signed = tls.LocallySignedCert(
            f"{prefix}-{cert.secret}", cert_request_pem=request.cert_request_pem, ca_cert_pem=ca_cert.cert_pem,
            ca_private_key_pem=ca_key.private_key_pem, allowed_uses=USES[cert.usage],
            validity_period_hours=hours(self.spec.validity), early_renewal_hours=hours(self.spec.early_renewal),
            opts=opts)
        return signed.cert_pem, key.private_key_pem

    def issue(self, prefix: str, ctx: ClusterContext, certs: list[Certificate], parent: pulumi.Resource,
              depends_on: list[pulumi.Resource],
              accepts: tuple[Literal["readers", "writers"], ...] = ()) -> dict[str, pulumi.CustomResource]:
        """The CA bundle Secret (the server CA, and the client CAs the namespace's servers `accept`) and one
        `kubernetes.io/tls` Secret per certificate in the context's namespace: signed here (pulumi-tls) or by
        cert-manager from an Issuer per CA holding that CA. A writers CA is the context's cluster's."""
        cluster = ctx.instance_label
        files = {BUNDLE_FILES["servers"]: self.bundle,
                 **{BUNDLE_FILES[signer]: self._bundle(signer, cluster) for signer in accepts}}
        bundle = {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(CA_BUNDLE_SECRET, "tls"),
                  "type": "Opaque", "stringData": files}
        manifests: list[dict[str, Any]] = [bundle]
        if self.spec.issuer == "cert-manager":
            for signer in sorted({cert.signed_by for cert in certs}):
                ca_key, ca_cert = self._signing(signer, cluster)
                keypair = CA_KEYPAIR_SECRET if signer == "servers" else f"{issuer_name(signer)}-keypair"
                manifests += [
                    {"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(keypair, "tls"),
                     "type": "kubernetes.io/tls",
                     "stringData": {"tls.crt": ca_cert.cert_pem, "tls.key": ca_key.private_key_pem}},
                    {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": ctx.metadata(issuer_name(signer), "tls"),
                     "spec": {"ca": {"secretName": keypair}}}]
            manifests += [certificate_resource(ctx, cert, self.spec) for cert in certs]
        else:
            for cert in certs:
                pem, key = self._signed(prefix, cert, cluster, parent)
                manifests.append({"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(cert.secret, "tls"),
                                  "type": "kubernetes.io/tls",
                                  "stringData": {"tls.crt": pem, "tls.key": key, "ca.crt": self.bundle}})
        return register(manifests, f"{prefix}-tls", parent, depends_on)
