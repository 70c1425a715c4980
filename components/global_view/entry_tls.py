"""The entry point's HTTPS certificate, from anywhere but the stack's mTLS CAs: users asked to trust a CA for the
entry point trust whoever holds its key for every site they visit, and those keys also open the leaves and routers.

- `self-signed`: one certificate for the host that is no CA (pulumi-tls), once per stack so host and standby serve
  the same; users trust exactly it, and its key can vouch for nothing but the host.
- `ca`: a CA of its own, made by cert-manager in the tier's namespace and name-constrained (critical) to the host,
  so its key (which never leaves the cluster, nor enters the Pulumi state) can mint nothing another site would pass
  with. pulumi-tls cannot write name constraints (its certificate resources have no such field), hence cert-manager.
- `acme`: cert-manager and the user's ClusterIssuer (a public or ACME CA).
- `secret`: the user's own `kubernetes.io/tls` Secret."""

from typing import Any

import pulumi
import pulumi_tls as tls

from components.global_view.certificates import USES, hours
from components.platform.kube import ClusterContext
from config.global_view import EntryPointSpec, TlsSpec

ENTRY_TLS_SECRET = "thanos-entry-point-tls"
ENTRY_CA = "thanos-entry-point-ca"
"""The `ca` source's Issuer, and the Secret holding its CA (tls.crt is what users trust)."""
ENTRY_CA_ROOT = "thanos-entry-point-selfsigned"
"""The Issuer that self-signs the entry CA (it signs nothing else)."""
ENTRY_CA_VALIDITY = "8760h"
"""The entry CA's life (one year; cert-manager renews it 30 days before, with the same key)."""


def entry_tls_secret(spec: EntryPointSpec) -> str:
    """The Secret the Gateway listener or Ingress serves."""
    return spec.tls.secret_name if spec.tls.source == "secret" else ENTRY_TLS_SECRET  # type: ignore[return-value]


def self_signed_pair(name: str, spec: EntryPointSpec, validity: TlsSpec, environment: str,
                     parent: pulumi.Resource) -> dict[str, pulumi.Output] | None:
    """With source self-signed, the host's certificate and key (ECDSA P-256, not a CA), renewed by `pulumi up` inside
    the early-renewal window like the stack's other certificates; otherwise None."""
    if spec.tls.source != "self-signed":
        return None
    provider = tls.Provider(f"{name}-entry-tls", opts=pulumi.ResourceOptions(parent=parent))
    opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    key = tls.PrivateKey(f"{name}-entry-point-key", algorithm="ECDSA", ecdsa_curve="P256", opts=opts)
    cert = tls.SelfSignedCert(
        f"{name}-entry-point-cert", private_key_pem=key.private_key_pem, is_ca_certificate=False,
        allowed_uses=USES["server"], dns_names=[spec.host],
        subject={"common_name": spec.host, "organization": f"thanos {environment} entry point"},
        validity_period_hours=hours(validity.validity), early_renewal_hours=hours(validity.early_renewal), opts=opts)
    return {"tls.crt": cert.cert_pem, "tls.key": key.private_key_pem}


def _certificate(ctx: ClusterContext, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": ctx.metadata(name, "entry-point"),
            "spec": {"privateKey": {"algorithm": "ECDSA", "size": 256}, **spec}}


def entry_tls_objects(ctx: ClusterContext, spec: EntryPointSpec, validity: TlsSpec,
                      pair: dict[str, pulumi.Output] | None) -> list[dict[str, Any]]:
    """What the tier's namespace needs for the host's certificate: the self-signed Secret, the name-constrained CA
    and its Certificate, or the ACME Certificate (none for a user's Secret)."""
    source = spec.tls.source
    host = {"secretName": ENTRY_TLS_SECRET, "commonName": spec.host, "dnsNames": [spec.host],
            "duration": f"{hours(validity.validity)}h", "renewBefore": f"{hours(validity.early_renewal)}h",
            "usages": [u.replace("_", " ") for u in USES["server"]]}
    if source == "self-signed":
        assert pair is not None
        return [{"apiVersion": "v1", "kind": "Secret", "metadata": ctx.metadata(ENTRY_TLS_SECRET, "entry-point"),
                 "type": "kubernetes.io/tls", "stringData": dict(pair)}]
    if source == "acme":
        return [_certificate(ctx, ENTRY_TLS_SECRET, {**host, "issuerRef": {
            "name": spec.tls.cluster_issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"}})]
    if source == "ca":
        def issuer(name: str, issuer_spec: dict[str, Any]) -> dict[str, Any]:
            return {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": ctx.metadata(name, "entry-point"),
                    "spec": issuer_spec}
        return [
            issuer(ENTRY_CA_ROOT, {"selfSigned": {}}),
            _certificate(ctx, ENTRY_CA, {
                "isCA": True, "secretName": ENTRY_CA, "commonName": f"thanos entry point CA for {spec.host}",
                "duration": ENTRY_CA_VALIDITY, "renewBefore": "720h", "usages": ["cert sign", "crl sign", "digital signature"],
                # Critical: a verifier that cannot read the extension must refuse the chain rather than ignore it.
                "nameConstraints": {"critical": True, "permitted": {"dnsDomains": [spec.host]}},
                "issuerRef": {"name": ENTRY_CA_ROOT, "kind": "Issuer", "group": "cert-manager.io"}}),
            issuer(ENTRY_CA, {"ca": {"secretName": ENTRY_CA}}),
            _certificate(ctx, ENTRY_TLS_SECRET, {**host, "issuerRef": {"name": ENTRY_CA, "kind": "Issuer",
                                                                        "group": "cert-manager.io"}}),
        ]
    return []
