"""The global view: one query tier over every cluster's query, mTLS between them, DNS, authenticated entry points."""

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import Duration, Name, StrictModel, duration_seconds
from .thanos import (LEAF_STORE_RESPONSE_TIMEOUT, Autoscaling, MemcachedSpec, QueryFrontendSpec, QuerySpec, Resources,
                     RulerSpec, sized)

# Labels that tell data apart: deduplicating on one would merge different clusters' series into one.
IDENTITY_LABELS = ("cluster", "region")
GLOBAL_RULER_LABEL = "tier"
"""The name of the global ruler's one external label (`tier="global"`) besides its replica label."""
_HOST_RE = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"


class TlsSpec(StrictModel):
    """The stack's certificate authority and the certificates it issues (leaf servers, global client, routers, writers)."""

    issuer: Literal["pulumi-tls", "cert-manager"] = "pulumi-tls"
    """Who issues leaf certificates: `pulumi-tls` (in the Pulumi state, renewed by `pulumi up` inside the early-renewal
    window) or `cert-manager` (a CA Issuer per namespace built from the stack CA, renewed in the cluster without
    `pulumi up`; cert-manager must be installed); default pulumi-tls."""
    validity: Duration = "2160h"
    """Lifetime of every issued certificate; default 2160h (90 days)."""
    early_renewal: Duration = "720h"
    """Re-issue a certificate this long before it expires (on the next `pulumi up`, or by cert-manager); default 720h."""
    ca_validity: Duration = "87600h"
    """Lifetime of the stack CA; default 87600h (10 years)."""
    ca_generation: int = Field(default=1, ge=1)
    """The CA that signs certificates; raise it to rotate the CA (see docs/global-view.md); default 1."""
    trusted_ca_generations: list[int] = Field(default_factory=list)
    """CA generations every server and client trusts (a bundle); during a rotation list the old and the new one;
    default only ca-generation."""

    @property
    def trusted(self) -> list[int]:
        """The CA generations in every trust bundle, sorted."""
        return sorted(set(self.trusted_ca_generations or [self.ca_generation]))

    @model_validator(mode="after")
    def _consistent(self) -> "TlsSpec":
        problems = []
        if self.trusted_ca_generations and self.ca_generation not in self.trusted_ca_generations:
            problems.append(f"trusted-ca-generations {self.trusted_ca_generations} must include ca-generation "
                            f"{self.ca_generation}: nothing would trust the certificates it signs")
        if duration_seconds(self.early_renewal) >= duration_seconds(self.validity):
            problems.append(f"early-renewal {self.early_renewal} must be shorter than validity {self.validity}")
        if duration_seconds(self.validity) > duration_seconds(self.ca_validity):
            problems.append(f"validity {self.validity} exceeds ca-validity {self.ca_validity}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class DnsSpec(StrictModel):
    """DNS records in a private zone of the host region's cloud (Route53, Cloud DNS, Azure private DNS)."""

    zone: str = Field(pattern=_HOST_RE)
    """The zone, e.g. obs.example.internal: each leaf is `query.<cluster>.<zone>`, the SRV record
    `_grpc._tcp.thanos-query.<zone>`; required."""
    zone_id: str
    """Route53 hosted zone id, Cloud DNS managed zone name, or the resource group of the Azure private zone; required."""
    ttl: int = Field(default=60, ge=5, le=3600)
    """TTL of every record in seconds; default 60."""


class EntryTlsSpec(StrictModel):
    """Where the entry point's HTTPS certificate comes from. Never the stack's mTLS CAs: users who trust a CA for the
    entry point trust whoever holds its key for every site, and those keys also open the leaves and routers."""

    source: Literal["self-signed", "ca", "acme", "secret"] = "self-signed"
    """`self-signed` (one certificate for the host that is no CA: users trust exactly it, and its key can vouch for
    nothing else), `ca` (a CA of its own in the cluster, name-constrained to the host; its key never leaves the
    cluster; cert-manager >= 1.17), `acme` (a public or ACME issuer: cert-manager with `cluster-issuer`) or `secret`
    (an existing `kubernetes.io/tls` Secret, `secret-name`); default self-signed."""
    cluster_issuer: str | None = Field(default=None, pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
    """The cert-manager ClusterIssuer (e.g. Let's Encrypt) that issues the host's certificate; required with acme."""
    secret_name: str | None = Field(default=None, pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
    """An existing `kubernetes.io/tls` Secret for the host in the global namespace; required with secret."""

    @model_validator(mode="after")
    def _complete(self) -> "EntryTlsSpec":
        if self.source == "acme" and not self.cluster_issuer:
            raise ValueError("cluster-issuer is required with source acme (the ClusterIssuer that issues the host's "
                             "certificate)")
        if self.source == "secret" and not self.secret_name:
            raise ValueError("secret-name is required with source secret (the kubernetes.io/tls Secret for the host)")
        if self.cluster_issuer and self.source != "acme":
            raise ValueError(f"cluster-issuer is only read with source acme, not {self.source}")
        if self.secret_name and self.source != "secret":
            raise ValueError(f"secret-name is only read with source secret, not {self.source}")
        return self


class EntryPointSpec(StrictModel):
    """The authenticated HTTPS entry point of the global query-frontend (humans, Grafana)."""

    kind: Literal["gateway", "ingress"] = "gateway"
    """`gateway` (a Gateway API Gateway with an HTTPS listener and an HTTPRoute) or `ingress`; default gateway."""
    class_name: str = Field(alias="class")
    """GatewayClass or IngressClass name; required."""
    host: str = Field(pattern=_HOST_RE)
    """Host name users and Grafana reach, e.g. thanos.example.com; required."""
    auth: Literal["oauth2-proxy", "basic-auth"] = "oauth2-proxy"
    """`oauth2-proxy` (OIDC single sign-on) or `basic-auth` (bcrypt passwords: ingress-nginx checks them on an Ingress,
    the tenant gate on a Gateway, which has no portable basic auth); default oauth2-proxy."""
    oidc_issuer_url: str | None = Field(default=None, pattern=r"^https://\S+$")
    """OIDC issuer of oauth2-proxy; required with oauth2-proxy. The client secret is the secret config key
    `thanos:oauth2ClientSecret`."""
    oidc_client_id: str | None = None
    """OIDC client id of oauth2-proxy; required with oauth2-proxy."""
    email_domains: list[str] = Field(default_factory=list)
    """E-mail domains oauth2-proxy lets in (no wildcard); default none: give them or `allowed-groups`."""
    allowed_groups: list[str] = Field(default_factory=list)
    """IdP groups oauth2-proxy lets in (the groups claim); default none: give them or `email-domains`."""
    basic_auth_user: str = Field(default="thanos", pattern=r"^[A-Za-z0-9._-]+$")
    """User name of basic-auth when it is one shared user; default thanos. The password is the secret config key
    `thanos:basicAuthPassword`, or generated (read it with `pulumi stack output --show-secrets`)."""
    basic_auth_users: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9._@-]+$")]] = Field(default_factory=list)
    """People who sign in to basic-auth, each with a password generated for them (the secret stack output
    `globalBasicAuth.users`); set, they replace the shared user, so a password leaves with whoever leaves and one is
    rotated alone (`pulumi up --replace` on that person's password); default none (the shared user)."""
    replicas: int = Field(default=2, ge=1)
    """Replicas of the entry point's proxies (oauth2-proxy; the tenant gate, with tenants); default 2."""
    tls: EntryTlsSpec = Field(default_factory=EntryTlsSpec)
    """Where the host's HTTPS certificate comes from (never the stack's mTLS CAs); default self-signed."""
    controller_namespace: Name | None = None
    """Namespace of the gateway or ingress controller's proxies, the only peers allowed to reach the auth proxy;
    default envoy-gateway-system (gateway) or ingress-nginx (ingress)."""

    def gated(self, tenants: bool) -> bool:
        """Whether the tenant gate stands behind the entry point: with `tenants` (it sets each reader's tenant), or
        with basic auth on a Gateway (Gateway API has no portable basic auth: the gate checks the passwords)."""
        return tenants or (self.auth == "basic-auth" and self.kind == "gateway")

    @property
    def controller(self) -> str:
        """The controller namespace in effect."""
        return self.controller_namespace or ("envoy-gateway-system" if self.kind == "gateway" else "ingress-nginx")

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and ({"tls-secret", "tls_secret"} & set(data)):
            raise ValueError("tls-secret moved: write tls: {source: secret, secret-name: <Secret>} (the stack CA no "
                             "longer signs the entry point)")
        return data

    @model_validator(mode="after")
    def _auth_complete(self) -> "EntryPointSpec":
        if self.auth == "oauth2-proxy" and not (self.oidc_issuer_url and self.oidc_client_id):
            raise ValueError("auth oauth2-proxy needs oidc-issuer-url and oidc-client-id")
        if self.auth == "oauth2-proxy" and not (self.email_domains or self.allowed_groups):
            raise ValueError("auth oauth2-proxy needs email-domains or allowed-groups: who may sign in (everyone "
                             "the identity provider knows is not a safe default)")
        if any("*" in domain for domain in self.email_domains):
            raise ValueError("email-domains: list the domains that may sign in; a wildcard lets in every account "
                             "of the identity provider (use allowed-groups to narrow it instead)")
        if self.basic_auth_users and self.auth != "basic-auth":
            raise ValueError("basic-auth-users needs auth basic-auth")
        if self.basic_auth_users and "basic_auth_user" in self.model_fields_set:
            raise ValueError("set basic-auth-users (one password each) or basic-auth-user (one shared), not both")
        if len(set(self.basic_auth_users)) != len(self.basic_auth_users):
            raise ValueError(f"basic-auth-users lists someone twice: {self.basic_auth_users}")
        return self


class RulesQuerySpec(QuerySpec):
    """The query in front of the global ruler in distributed mode: it reads only the ruler's series, so it is small."""

    autoscaling: Autoscaling = Field(default_factory=lambda: Autoscaling(enabled=False))
    """HPA on CPU; default off."""
    resources: Resources = sized("50m", "64Mi", "256Mi")
    """Default 50m/64Mi requests, 256Mi limit."""


class GlobalRulerSpec(RulerSpec):
    """The global ruler: evaluates against the global query and aborts on partial data (alerts never fire on it)."""

    enabled: bool = True
    """Run it; default true."""
    query: RulesQuerySpec = Field(default_factory=RulesQuerySpec)
    """With `mode: distributed`, the query in front of the ruler (`thanos-query-rules`, the Query API the global query
    sends the ruler's fragments to); default 2 replicas, no HPA, 50m/64Mi requests, 256Mi limit."""

    @model_validator(mode="after")
    def _keeps_its_blocks(self) -> "GlobalRulerSpec":
        if self.stateless:
            raise ValueError("stateless: the global tier has no receive to write the rules' results to (its ruler "
                             "serves them over its StoreAPI)")
        return self


class GlobalViewSpec(StrictModel):
    """One deduplicated query across every cluster and region, secured end to end."""

    host_cluster: Name
    """Cluster that runs the global tier; required."""
    standby_cluster: Name | None = None
    """Cluster that runs a second copy of the global tier (DNS fails over to it); default none."""
    namespace: Name = "thanos-global"
    """Namespace of the global tier; default thanos-global."""
    leaf_service: Literal["load-balancer", "cluster-ip"] = "load-balancer"
    """How each cluster's query serves gRPC to the global tier: an internal L4 `load-balancer` (TLS passes through)
    or `cluster-ip` (every cluster is a namespace of one Kubernetes cluster, as in dev); default load-balancer."""
    network_cidrs: list[str] = Field(default_factory=list)
    """Private networks between the clusters: leaf load balancers accept gRPC only from them and the global query
    dials only into them; required with load-balancer."""
    discovery: Literal["dns-srv", "static"] | None = None
    """`dns-srv` also publishes one SRV name listing every leaf (needs dns), for queries outside the stack; `static`
    publishes none. The global query lists the stack's leaves by name and strict either way (a dead leaf is a
    warning); default dns-srv when dns is set, else static."""
    mode: Literal["local", "distributed"] = "local"
    """`--query.mode`: `distributed` pushes query execution to the leaves (opt-in; upgrade the global tier before
    the leaves; in Thanos v0.42.4 an instant query of a bare range selector answers empty, thanos-io/thanos#8078).
    It needs `query.promql-engine: thanos` (the only engine that distributes). A distributed query reads only
    endpoints serving the Query API and the global ruler serves only the StoreAPI, so with the ruler on the global
    query reads it through a query of its own (`ruler.query`), partitioned by the ruler's `tier` label; default local."""
    partition_labels: list[str] = Field(default_factory=lambda: ["cluster"])
    """`--query.partition-label` in distributed mode (with the global ruler on, `tier` is added: its series carry
    no `cluster` of their own); default ["cluster"]."""
    extra_replica_labels: list[str] = Field(default_factory=list)
    """Replica labels of producers outside this program that leaves serve; the global query deduplicates on them as
    well as on every replica label of the stack; default none."""
    store_response_timeout: Duration = "90s"
    """`--store.response-timeout` of the global query: a dead region becomes a warning after this; above the leaves'
    own (1m), so a leaf that waits on one slow store still answers; default 90s."""
    info_timeout: Duration = "15s"
    """`--endpoint.info-timeout` for cross-region leaves; default 15s."""
    query: QuerySpec = Field(default_factory=QuerySpec)
    """The global query; default 2 replicas, HPA on."""
    query_frontend: QueryFrontendSpec = Field(default_factory=QueryFrontendSpec)
    """The global query-frontend; default 2 replicas, HPA on."""
    cache: MemcachedSpec = Field(default_factory=lambda: MemcachedSpec(memory_mb=512))
    """Results cache of the global query-frontend; default 2 x 512 MiB."""
    ruler: GlobalRulerSpec = Field(default_factory=GlobalRulerSpec)
    """The global ruler; default on, 2 replicas."""
    dns: DnsSpec | None = None
    """DNS records for leaves, the SRV name and the entry point; default none (static discovery)."""
    entry_point: EntryPointSpec | None = None
    """The authenticated entry point; default none (the global query-frontend is reachable only in the cluster)."""

    @property
    def discovery_mode(self) -> str:
        """The discovery in effect."""
        return self.discovery or ("dns-srv" if self.dns else "static")

    @property
    def query_partition_labels(self) -> list[str]:
        """The global query's `--query.partition-label`s in distributed mode: the configured ones, and with the global
        ruler on its `tier`. The ruler's series carry `tier="global"` and no `cluster`: without a partition label of
        their own, Thanos' distributed optimizer (promql-engine logicalplan/distribute.go) counts the ruler's remote
        engine in no partition, pushes a join `on (cluster)` down whole to every engine, and each answers it alone
        over half of the data (empty, measured with the real Thanos v0.42.4)."""
        extra = [GLOBAL_RULER_LABEL] if self.ruler.enabled and GLOBAL_RULER_LABEL not in self.partition_labels else []
        return [*self.partition_labels, *extra]

    @field_validator("network_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                network = ipaddress.ip_network(cidr)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR (e.g. 10.0.0.0/8)") from None
            if network.prefixlen == 0:
                raise ValueError(f"{cidr} opens the leaf gRPC port to every address: list the private networks")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "GlobalViewSpec":
        problems = []
        if self.standby_cluster == self.host_cluster:
            problems.append("standby-cluster must differ from host-cluster")
        if self.leaf_service == "load-balancer" and not self.network_cidrs:
            problems.append("network-cidrs is required with leaf-service load-balancer (the only sources the leaf "
                            "gRPC port accepts)")
        if self.leaf_service == "load-balancer" and not self.dns:
            problems.append("leaf-service load-balancer needs dns: each leaf is dialled by a name its certificate "
                            "carries (query.<cluster>.<zone>), known before the load balancer exists")
        if self.discovery_mode == "dns-srv" and not self.dns:
            problems.append("discovery dns-srv needs dns (the zone holding the SRV record)")
        if self.dns and self.leaf_service == "cluster-ip":
            problems.append("dns records point at leaf load balancers: leaf-service cluster-ip has none")
        identity = sorted(set(self.extra_replica_labels) & set(IDENTITY_LABELS))
        if identity:
            problems.append(f"extra-replica-labels must not list {', '.join(identity)}: it tells clusters apart, and "
                            "deduplicating on it merges different clusters' series into one")
        if self.mode == "distributed":
            overlap = sorted(set(self.query_partition_labels) & set(self.extra_replica_labels))
            if overlap:
                problems.append(f"partition-labels and replica labels must be disjoint ({', '.join(overlap)})")
            if not self.partition_labels:
                problems.append("distributed mode needs at least one partition label (cluster)")
        if duration_seconds(self.store_response_timeout) <= duration_seconds(LEAF_STORE_RESPONSE_TIMEOUT):
            problems.append(f"store-response-timeout {self.store_response_timeout} must be above the leaves' "
                            f"--store.response-timeout ({LEAF_STORE_RESPONSE_TIMEOUT}): the global query would give up on "
                            "a leaf still waiting for one slow store, and drop that whole cluster")
        if duration_seconds(self.store_response_timeout) >= duration_seconds(self.query.timeout):
            problems.append(f"store-response-timeout {self.store_response_timeout} must be below query.timeout "
                            f"{self.query.timeout}, or one dead region fails every query instead of warning")
        if problems:
            raise ValueError("; ".join(problems))
        return self
