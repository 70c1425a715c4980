"""The authenticated HTTPS entry point of the global query-frontend: a Gateway API Gateway + HTTPRoute (or an
Ingress) in front of oauth2-proxy (OIDC), or basic auth with bcrypt passwords that stay the same across `pulumi up`
runs (checked by ingress-nginx on an Ingress, by the tenant gate on a Gateway). Passwords and client secrets only
ever travel as Pulumi secrets into Secrets."""

from typing import Any

import pulumi
import pulumi_random as random

from components.global_view.entry_tls import entry_tls_objects, entry_tls_secret
from components.global_view.tenant_gate import build_tenant_gate, config_text, gate_config, gate_url
from components.observability.grafana import NAME as GRAFANA_NAME
from components.observability.grafana import SUB_PATH, grafana_url
from components.platform.common import GRAFANA_PORT, HTTP_PORT, container, pod_spec, service_name, stable_bcrypt
from components.platform.kube import ClusterContext, register
from components.platform.names import QUERY, QUERY_FRONTEND, service_address
from components.platform.namespace import OAUTH2_PROXY_PORT
from components.platform.workload import workload_objects
from components.thanos.query_frontend import query_frontend_url
from config.global_view import EntryPointSpec, TlsSpec
from config.tenancy import TENANT_HEADER, TenancySpec
from config.thanos import Compute, Resources

OAUTH2_PROXY_IMAGE = "quay.io/oauth2-proxy/oauth2-proxy:v7.15.6"
OAUTH2_PROXY_SECRET = "thanos-oauth2-proxy"
BASIC_AUTH_SECRET = "thanos-basic-auth"
ENTRY_NAME = "thanos"
READY_PATH = "/-/ready"  # the query-frontend's readiness: basic auth's health checks probe it past nginx's auth
PING_PATH = "/ping"  # oauth2-proxy's own, unauthenticated: what health checks probe in front of it
SESSION_REFRESH = "1h"  # how long a sign-in is trusted before the identity provider is asked again
SESSION_EXPIRE = "12h"  # a working day: then the user signs in again
# Client headers oauth2-proxy reads as a reverse proxy (or its upstreams trust): the Gateway drops them, so only
# oauth2-proxy itself sets them.
FORWARDED_HEADERS = ["X-Forwarded-Uri", "X-Forwarded-Host", "X-Forwarded-Email", "X-Forwarded-User",
                     "X-Forwarded-Groups", "X-Forwarded-Preferred-Username", "X-Forwarded-Access-Token", TENANT_HEADER]


GATEWAY_ADDRESSED = "jsonpath={.status.addresses[0].value}"
"""What `pulumi up` waits for on the Gateway (pulumi-kubernetes' waitFor annotation): an address to point DNS at."""


def htpasswd_line(user: str, password: str, salt_key: str) -> str:
    """`user:$2b$10$...`: bcrypt with a stable salt (see stable_bcrypt), so the same password gives the same line on
    every `pulumi up`."""
    if len(password.encode()) > 72:
        raise ValueError("the basic-auth password is longer than 72 bytes, which bcrypt cannot hash")
    return f"{user}:{stable_bcrypt(f'thanos-basic-auth/{user}', password, salt_key)}"


def oauth2_proxy_args(spec: EntryPointSpec, namespace: str, grafana: bool = False, gated: bool = False) -> list[str]:
    """OIDC login in front of the query-frontend (and Grafana under /grafana/, told who signed in through
    X-Forwarded-Email). No path of the upstreams passes without it: a skip-auth route is matched against the
    client's X-Forwarded-Uri under --reverse-proxy (GHSA-7x63-xv5r-3p2x, and oauth2-proxy#3506: every client is a
    trusted proxy until --trusted-proxy-ip is set), so health checks probe oauth2-proxy's own /ping. Every
    SESSION_REFRESH a session is refreshed at the identity provider (a revoked or removed account is signed out) or,
    without a refresh token, its ID token verified again; none outlives SESSION_EXPIRE (oauth2-proxy's default: 168h,
    never revalidated). `gated` (tenants configured): everything goes to the tenant gate, which picks the tenant and
    the upstream from the user's groups (passed as X-Forwarded-Groups)."""
    upstreams = [gate_url(namespace)] if gated else [query_frontend_url(namespace), *([grafana_url(namespace)] if grafana else [])]
    return ["--provider=oidc", f"--oidc-issuer-url={spec.oidc_issuer_url}", f"--client-id={spec.oidc_client_id}",
            f"--http-address=0.0.0.0:{OAUTH2_PROXY_PORT}", *(f"--upstream={u}" for u in upstreams),
            # Groups alone: every domain, narrowed to the groups (oauth2-proxy lets no one in without a domain).
            *(f"--email-domain={d}" for d in spec.email_domains or ["*"]), *(f"--allowed-group={g}" for g in spec.allowed_groups),
            "--reverse-proxy", "--cookie-secure=true", f"--cookie-refresh={SESSION_REFRESH}",
            f"--cookie-expire={SESSION_EXPIRE}", "--skip-provider-button", "--silence-ping-logging"]


def build_oauth2_proxy(ctx: ClusterContext, spec: EntryPointSpec, grafana: bool = False,
                       gated: bool = False) -> list[dict[str, Any]]:
    """oauth2-proxy: hardened, secrets from its Secret as environment."""
    component = "oauth2-proxy"
    env = [{"name": f"OAUTH2_PROXY_{key.upper().replace('-', '_')}",
            "valueFrom": {"secretKeyRef": {"name": OAUTH2_PROXY_SECRET, "key": key}}}
           for key in ("client-secret", "cookie-secret")]
    port = {"name": "http", "containerPort": OAUTH2_PROXY_PORT, "protocol": "TCP"}
    probes = {"livenessProbe": {"httpGet": {"path": "/ping", "port": "http"}, "periodSeconds": 30},
              "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 10}}
    resources = Resources(requests=Compute(cpu="50m", memory="64Mi"), limits=Compute(memory="128Mi"))
    pod = pod_spec(service_name(component), [container(
        "oauth2-proxy", OAUTH2_PROXY_IMAGE, oauth2_proxy_args(spec, ctx.namespace, grafana, gated), resources, ports=[port], env=env,
        probes=probes)], selector=ctx.selector(component), replicas=spec.replicas, zone_spread=ctx.zone_spread,
        node_spread=ctx.node_spread, grace_seconds=30)
    return workload_objects(ctx, component, service_name(component), kind="Deployment", replicas=spec.replicas, pod=pod,
                            ports=[port])


def gateway_objects(ctx: ClusterContext, spec: EntryPointSpec, tls_secret: str, backend: str,
                    port: int, ready_path: str = PING_PATH) -> list[dict[str, Any]]:
    """A Gateway with one HTTPS listener (TLS ends here) and two HTTPRoutes: the host to the authenticating proxy
    (oauth2-proxy, or the tenant gate with basic auth), and the proxy's unauthenticated `ready_path` on any host name
    (health checks dial the load balancer's own name). Both drop the client's forwarded headers."""
    ref = [{"name": ENTRY_NAME, "sectionName": "https"}]
    backend_refs = [{"name": backend, "port": port}]
    drop = [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"remove": FORWARDED_HEADERS}}]
    return [
        # The provider does not await custom resources on its own: without waitFor, the DNS record would read the
        # Gateway's status before its controller assigned an address.
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": ctx.metadata(
            ENTRY_NAME, "entry-point", annotations={"pulumi.com/waitFor": GATEWAY_ADDRESSED}),
         "spec": {"gatewayClassName": spec.class_name, "listeners": [
             {"name": "https", "protocol": "HTTPS", "port": 443,
              "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": tls_secret}]},
              "allowedRoutes": {"namespaces": {"from": "Same"}}}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": ctx.metadata(ENTRY_NAME, "entry-point"),
         "spec": {"parentRefs": ref, "hostnames": [spec.host],
                  "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "filters": drop,
                             "backendRefs": backend_refs}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
         "metadata": ctx.metadata(f"{ENTRY_NAME}-ready", "entry-point"),
         "spec": {"parentRefs": ref, "rules": [{"matches": [{"path": {"type": "Exact", "value": ready_path}}],
                                                "filters": drop, "backendRefs": backend_refs}]}},
    ]


def ingress_objects(ctx: ClusterContext, spec: EntryPointSpec, tls_secret: str,
                    grafana: bool = False, gated: bool = False) -> list[dict[str, Any]]:
    """An Ingress for the host (TLS) to oauth2-proxy, or to the query-frontend (and Grafana under /grafana) behind
    nginx basic auth; with basic auth, a second Ingress serves only the readiness path without it. With basic auth
    and tenants (`gated`), everything goes to the tenant gate, which checks the passwords itself."""
    basic = spec.auth == "basic-auth"
    backend = {"service": {"name": QUERY_FRONTEND if basic else service_name("oauth2-proxy"),
                           "port": {"number": HTTP_PORT if basic else OAUTH2_PROXY_PORT}}}
    if basic and gated:
        backend = {"service": {"name": service_name("tenant-gate"), "port": {"number": HTTP_PORT}}}
        grafana = False  # the gate routes /grafana/ for operators

    def ingress(name: str, path: str, path_type: str, annotations: dict[str, str]) -> dict[str, Any]:
        metadata = ctx.metadata(name, "entry-point")
        if annotations:
            metadata["annotations"] = annotations
        paths = [{"path": path, "pathType": path_type, "backend": backend}]
        if basic and grafana and path == "/":
            paths.insert(0, {"path": SUB_PATH.rstrip("/"), "pathType": "Prefix",
                             "backend": {"service": {"name": GRAFANA_NAME, "port": {"number": GRAFANA_PORT}}}})
        return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata,
                "spec": {"ingressClassName": spec.class_name, "tls": [{"hosts": [spec.host], "secretName": tls_secret}],
                         "rules": [{"host": spec.host, "http": {"paths": paths}}]}}

    auth = {"nginx.ingress.kubernetes.io/auth-type": "basic", "nginx.ingress.kubernetes.io/auth-secret": BASIC_AUTH_SECRET,
            "nginx.ingress.kubernetes.io/auth-secret-type": "auth-file",
            "nginx.ingress.kubernetes.io/auth-realm": "Thanos"} if basic and not gated else {}
    objects = [ingress(ENTRY_NAME, "/", "Prefix", auth)]
    if basic:
        objects.append(ingress(f"{ENTRY_NAME}-ready", READY_PATH, "Exact", {}))
    return objects


def entry_credentials(name: str, spec: EntryPointSpec, parent: pulumi.Resource) -> dict[str, pulumi.Output]:
    """The entry point's secrets, once per stack (host and standby share them): oauth2-proxy's client secret (config)
    and cookie secret (generated), or the basic-auth password (config, or generated)."""
    config = pulumi.Config("thanos")
    provider = random.Provider(f"{name}-random", opts=pulumi.ResourceOptions(parent=parent))
    generated = pulumi.ResourceOptions(parent=parent, provider=provider)
    if spec.auth == "oauth2-proxy":
        cookie = random.RandomPassword(f"{name}-cookie-secret", length=32, special=False, opts=generated)
        return {"client-secret": config.require_secret("oauth2ClientSecret"),
                "cookie-secret": pulumi.Output.secret(cookie.result)}
    salt_key: pulumi.Output[str] = pulumi.Output.secret(random.RandomPassword(f"{name}-basic-auth-salt-key", length=32, special=False,
                                                          opts=generated).result)
    if spec.basic_auth_users:  # one generated password per person
        passwords = {user: random.RandomPassword(f"{name}-basic-auth-{user}", length=32, special=False,
                                                 opts=generated).result for user in spec.basic_auth_users}
        return {"users": pulumi.Output.secret(pulumi.Output.all(**passwords)), "salt-key": salt_key}
    password = config.get_secret("basicAuthPassword") or pulumi.Output.secret(random.RandomPassword(
        f"{name}-basic-auth-password", length=32, special=False, opts=generated).result)
    return {"password": password, "salt-key": salt_key}


class EntryPoint:
    """The entry point of one global tier: the certificate it needs (issued with the tier's others) and its objects."""

    def __init__(self, name: str, ctx: ClusterContext, spec: EntryPointSpec, credentials: dict[str, pulumi.Output],
                 grafana: bool = False, validity: TlsSpec | None = None, tls_pair: dict[str, pulumi.Output] | None = None,
                 tenancy: TenancySpec | None = None):
        """`validity`: the lifetimes of issued certificates; `tls_pair`: the stack's self-signed certificate and key
        (see entry_tls); `tenancy`: with tenants, a tenant gate sits behind the authentication (see tenant_gate)."""
        self.name, self.ctx, self.spec, self.credentials, self.grafana = name, ctx, spec, credentials, grafana
        self.validity, self.tls_pair = validity or TlsSpec(), tls_pair
        self.tls_secret = entry_tls_secret(spec)
        self.tenancy = tenancy if tenancy and tenancy.enabled else None
        self.gated = spec.gated(self.tenancy is not None)

    def _htpasswd(self) -> pulumi.Output[str]:
        """`user:bcrypt` lines of every basic-auth user."""
        key = self.credentials["salt-key"]
        if "users" in self.credentials:
            return pulumi.Output.all(self.credentials["users"], key).apply(
                lambda v: "".join(htpasswd_line(user, v[0][user], v[1]) + "\n" for user in sorted(v[0])))
        user = self.spec.basic_auth_user
        return pulumi.Output.all(self.credentials["password"], key).apply(
            lambda v: htpasswd_line(user, v[0], v[1]) + "\n")

    def _secret(self) -> dict[str, Any]:
        if self.spec.auth == "oauth2-proxy":
            return {"apiVersion": "v1", "kind": "Secret", "metadata": self.ctx.metadata(OAUTH2_PROXY_SECRET, "oauth2-proxy"),
                    "type": "Opaque", "stringData": dict(self.credentials)}
        return {"apiVersion": "v1", "kind": "Secret", "metadata": self.ctx.metadata(BASIC_AUTH_SECRET, "entry-point"),
                "type": "Opaque", "stringData": {"auth": self._htpasswd()}}

    def _gate(self) -> list[dict[str, Any]]:
        """The tenant gate: tenants' readers to the query-frontend with their tenant, operators to the global query
        (and Grafana); with basic auth it checks the passwords (the same bcrypt lines nginx would). Without tenants
        (basic auth on a Gateway) everyone who signs in is an operator, and reads through the query-frontend."""
        ns = self.ctx.namespace
        tenants, operators = service_address(QUERY_FRONTEND, ns, HTTP_PORT), service_address(QUERY, ns, HTTP_PORT)
        tenancy = self.tenancy
        if tenancy is None:
            users = self.spec.basic_auth_users or [self.spec.basic_auth_user]
            tenancy, operators = TenancySpec(operators=users), tenants
        grafana = service_address(GRAFANA_NAME, ns, GRAFANA_PORT) if self.grafana else None
        if self.spec.auth == "oauth2-proxy":
            return build_tenant_gate(self.ctx, config_text(gate_config(
                tenancy, tenants_upstream=tenants, operators_upstream=operators, grafana_upstream=grafana)),
                self.spec.replicas)
        text = self._htpasswd().apply(lambda lines: config_text(gate_config(
            tenancy, tenants_upstream=tenants, operators_upstream=operators, grafana_upstream=grafana, accounts=[
                {"username": user, "password": digest}
                for user, digest in (line.split(":", 1) for line in lines.splitlines() if line)])))
        return build_tenant_gate(self.ctx, pulumi.Output.secret(text), self.spec.replicas)

    def register(self, parent: pulumi.Resource, depends_on: list[pulumi.Resource]) -> pulumi.CustomResource:
        """Register the entry point's objects; returns the Gateway or Ingress whose address DNS points at."""
        spec, ctx, gated = self.spec, self.ctx, self.gated
        basic = spec.auth == "basic-auth"
        manifests = entry_tls_objects(ctx, spec, self.validity, self.tls_pair)
        if not (gated and basic):  # there the gate holds the password hashes
            manifests.insert(0, self._secret())
        if gated:
            manifests += self._gate()
        if spec.auth == "oauth2-proxy":
            manifests += build_oauth2_proxy(ctx, spec, self.grafana, gated)
        if spec.kind == "gateway":
            manifests += (gateway_objects(ctx, spec, self.tls_secret, service_name("tenant-gate"), HTTP_PORT, READY_PATH)
                          if basic else
                          gateway_objects(ctx, spec, self.tls_secret, service_name("oauth2-proxy"), OAUTH2_PROXY_PORT,
                                          PING_PATH))
        else:
            manifests += ingress_objects(ctx, spec, self.tls_secret, self.grafana, gated)
        created = register(manifests, self.name, parent, depends_on)
        return created[f"Gateway/{ENTRY_NAME}" if spec.kind == "gateway" else f"Ingress/{ENTRY_NAME}"]
