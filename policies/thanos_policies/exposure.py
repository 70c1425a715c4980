"""Exposure: what leaves the cluster is encrypted and authenticated, an entry point's CA signs nothing else, Prometheus
takes no monitors with file access from every namespace, and no HTTP port marks blocks for deletion. Thanos has no
authentication of its own: mTLS on gRPC, a proxy on HTTP."""

from ._register import resource_policy, stack_policy
from ._workloads import (PROMETHEUS_CR, WORKLOAD_TYPES, Unknown, _pod_labels, _selects, _version_text, containers, flag,
                         image_version, namespace_of, provider_of, secret_text, switch_on, thanos_containers)


SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
HTTPROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
ENTRY_COMMANDS = ("query", "query-frontend", "receive")
HEALTH_PATHS = {"/-/ready", "/-/healthy"}
GRPC_TLS = ("grpc-server-tls-cert", "grpc-server-tls-key", "grpc-server-tls-client-ca")
REMOTE_WRITE_TLS = ("remote-write.server-tls-cert", "remote-write.server-tls-key", "remote-write.server-tls-client-ca")
_NGINX_AUTH = "nginx.ingress.kubernetes.io/"
MARK_API_SINCE = (0, 24, 0)
"""The release whose bucket UI API (`POST /api/v1/blocks/mark`) first marked blocks for deletion or no compaction."""
ADMIN_SWITCH_SINCE = {"compact": (0, 33, 0), "tools bucket web": (0, 33, 0), "store": (0, 39, 0)}
"""The commands that serve that API, and the first release tag whose flags have --disable-admin-operations (#6646:
the CHANGELOG lists it under v0.32, but every v0.32 tag lacks it; #8284)."""


def _workloads_behind(resources, service) -> list:
    """Workloads in the Service's cluster and namespace whose pods its selector picks."""
    selector = (service.props.get("spec") or {}).get("selector") or {}
    return [r for r in resources if r.resource_type in WORKLOAD_TYPES and provider_of(r) == provider_of(service)
            and namespace_of(r) == namespace_of(service) and _selects(selector, _pod_labels(r))]


def _exposed(service) -> bool:
    spec = service.props.get("spec") or {}
    return spec.get("type") in ("LoadBalancer", "NodePort") or bool(spec.get("externalIPs"))


def _port_names(container: dict, port) -> set:
    """What a Service port targets in a container: its number and name, resolved both ways."""
    names = {port}
    for p in container.get("ports") or []:
        if port in (p.get("name"), p.get("containerPort")):
            names |= {p.get("name"), p.get("containerPort")}
    return names


def validate_exposed_grpc(args, report):
    """Refuses a Service exposing Thanos gRPC or remote-write without mTLS, or query HTTP: anyone reads every series."""
    for service in args.resources:
        if service.resource_type != SERVICE or not _exposed(service):
            continue
        ports = [p.get("targetPort", p.get("port")) for p in (service.props.get("spec") or {}).get("ports") or []]
        name = (service.props.get("metadata") or {}).get("name")
        for workload in _workloads_behind(args.resources, service):
            for container, command, flags in thanos_containers(workload.props):
                targets = set().union(*(_port_names(container, p) for p in ports)) if ports else set()
                if targets & {"grpc", 10901} and not all(flag(flags, f) for f in GRPC_TLS):
                    report(f"Service {name} exposes the gRPC StoreAPI of thanos {command} outside the cluster without "
                           "server mTLS: set --grpc-server-tls-cert, --grpc-server-tls-key and "
                           "--grpc-server-tls-client-ca (anyone who reaches it reads every series).", service.urn)
                if command == "receive" and targets & {"remote-write", 19291} \
                        and not all(flag(flags, f) for f in REMOTE_WRITE_TLS):
                    report(f"Service {name} exposes remote-write outside the cluster without a client CA: set "
                           "--remote-write.server-tls-cert, -key and -client-ca, or put an authenticating proxy in "
                           "front (anyone could write or overwrite series).", service.urn)
                if command in ("query", "query-frontend") and targets & {"http", 10902}:
                    report(f"Service {name} exposes the HTTP API of thanos {command} outside the cluster: Thanos has "
                           "no authentication; expose an authenticating proxy behind TLS instead.", service.urn)


def _service_pods(resources, owner, service_name: str) -> list:
    service = next((r for r in resources if r.resource_type == SERVICE and provider_of(r) == provider_of(owner)
                    and namespace_of(r) == namespace_of(owner)
                    and (r.props.get("metadata") or {}).get("name") == service_name), None)
    return _workloads_behind(resources, service) if service else []


def _reaches_thanos(workloads) -> str:
    """"direct" when a backend runs Thanos query/query-frontend/receive, "proxy" when it proxies to Thanos."""
    for workload in workloads:
        if any(command in ENTRY_COMMANDS for _, command, _ in thanos_containers(workload.props)):
            return "direct"
        for c in containers(workload.props):
            if any(str(a).startswith("--upstream=") and "thanos" in str(a) for a in c.get("args") or []):
                return "proxy"
    return ""


def _ingress_backends(props) -> list[tuple[str, set]]:
    """(Service name, paths) of every backend of an Ingress."""
    found = []
    for rule in (props.get("spec") or {}).get("rules") or []:
        for path in ((rule.get("http") or {}).get("paths") or []):
            service = ((path.get("backend") or {}).get("service") or {}).get("name")
            if service:
                found.append((service, {path.get("path") if path.get("pathType") == "Exact" else "*"}))
    return found


def _gateway_listeners_tls(resources, route) -> bool:
    """Whether every parent Gateway listener the route attaches to terminates TLS (unknown Gateways count as TLS:
    they are not in this stack)."""
    for ref in (route.props.get("spec") or {}).get("parentRefs") or []:
        gateway = next((r for r in resources if r.resource_type == GATEWAY and provider_of(r) == provider_of(route)
                        and (r.props.get("metadata") or {}).get("name") == ref.get("name")), None)
        if gateway is None:
            continue
        listeners = [li for li in (gateway.props.get("spec") or {}).get("listeners") or []
                     if ref.get("sectionName") in (None, li.get("name"))]
        if any(li.get("protocol") not in ("HTTPS", "TLS") for li in listeners):
            return False
    return True


def _skips_auth_on_client_headers(container: dict) -> bool:
    """oauth2-proxy as a reverse proxy with skip-auth routes and every client trusted as a proxy: the routes are
    matched against the client's own X-Forwarded-Uri (GHSA-7x63-xv5r-3p2x; oauth2-proxy#3506)."""
    if "oauth2-proxy" not in (container.get("image") or ""):
        return False
    flags = [*(container.get("command") or []), *(container.get("args") or [])]
    env = {e.get("name") for e in container.get("env") or []}
    reverse = "--reverse-proxy" in flags or "--reverse-proxy=true" in flags or "OAUTH2_PROXY_REVERSE_PROXY" in env
    skips = any(f.startswith(("--skip-auth-route", "--skip-auth-regex")) for f in flags) or \
        bool(env & {"OAUTH2_PROXY_SKIP_AUTH_ROUTES", "OAUTH2_PROXY_SKIP_AUTH_REGEX"})
    trusted = bool(flag(flags, "trusted-proxy-ip")) or "OAUTH2_PROXY_TRUSTED_PROXY_IPS" in env
    return reverse and skips and not trusted


def _lets_everyone_in(container: dict) -> bool:
    """oauth2-proxy letting in every e-mail domain with no group to narrow it: every account of the IdP."""
    if "oauth2-proxy" not in (container.get("image") or ""):
        return False
    flags = [*(container.get("command") or []), *(container.get("args") or [])]
    env = {e.get("name"): e.get("value") for e in container.get("env") or []}
    domains = flag(flags, "email-domain") or ([env["OAUTH2_PROXY_EMAIL_DOMAINS"]] if "OAUTH2_PROXY_EMAIL_DOMAINS" in env else [])
    groups = flag(flags, "allowed-group") or "OAUTH2_PROXY_ALLOWED_GROUPS" in env
    return "*" in domains and not groups


def validate_entry_points(args, report):
    """Refuses an Ingress or HTTPRoute to Thanos without TLS or authentication (Thanos has none), or an open oauth2-proxy."""
    for r in args.resources:
        name = (r.props.get("metadata") or {}).get("name")
        if r.resource_type in WORKLOAD_TYPES and any(_lets_everyone_in(c) for c in containers(r.props)):
            report(f"oauth2-proxy {name} lets in every account of the identity provider (--email-domain=* and no "
                   "--allowed-group): name the e-mail domains or groups that may query Thanos.", r.urn)
        if r.resource_type in WORKLOAD_TYPES and any(_skips_auth_on_client_headers(c) for c in containers(r.props)):
            report(f"oauth2-proxy {name} skips authentication for routes it matches against the client's own "
                   "X-Forwarded-Uri (--reverse-proxy, skip-auth routes, no --trusted-proxy-ip: GHSA-7x63-xv5r-3p2x): "
                   "any request can claim a skipped path. Drop the skip-auth routes and probe oauth2-proxy's own "
                   "/ping, or set --trusted-proxy-ip to the proxies that strip the header.", r.urn)
        if r.resource_type == INGRESS:
            backends = _ingress_backends(r.props)
            reach = {s: _reaches_thanos(_service_pods(args.resources, r, s)) for s, _ in backends}
            if not any(reach.values()):
                continue
            hosts = {rule.get("host") for rule in (r.props.get("spec") or {}).get("rules") or []}
            covered = {h for t in (r.props.get("spec") or {}).get("tls") or [] for h in t.get("hosts") or []}
            if not (r.props.get("spec") or {}).get("tls") or not hosts <= covered:
                report(f"Ingress {name} serves Thanos without TLS for every host: add spec.tls with a certificate "
                       "(credentials and queries would cross the network in clear text).", r.urn)
            annotations = (r.props.get("metadata") or {}).get("annotations") or {}
            authenticated = (annotations.get(_NGINX_AUTH + "auth-type") == "basic"
                             and annotations.get(_NGINX_AUTH + "auth-secret")) or annotations.get(_NGINX_AUTH + "auth-url")
            health_only = all(paths <= HEALTH_PATHS for s, paths in backends if reach[s] == "direct")
            if any(v == "direct" for v in reach.values()) and not authenticated and not health_only:
                report(f"Ingress {name} routes to Thanos with no authentication: route to an authenticating proxy "
                       "(oauth2-proxy) or set nginx basic auth (auth-type, auth-secret); Thanos has none.", r.urn)
        elif r.resource_type == HTTPROUTE:
            routes = [(ref.get("name"), rule) for rule in (r.props.get("spec") or {}).get("rules") or []
                      for ref in rule.get("backendRefs") or []]
            reach = {s: _reaches_thanos(_service_pods(args.resources, r, s)) for s, _ in routes}
            if not any(reach.values()):
                continue
            if not _gateway_listeners_tls(args.resources, r):
                report(f"HTTPRoute {name} serves Thanos on a Gateway listener without TLS: use an HTTPS listener.",
                       r.urn)
            for service, rule in routes:
                paths = {(m.get("path") or {}).get("value") if (m.get("path") or {}).get("type") == "Exact" else "*"
                         for m in rule.get("matches") or [{}]}
                if reach[service] == "direct" and not paths <= HEALTH_PATHS:
                    report(f"HTTPRoute {name} routes to Thanos ({service}) directly: Gateway API has no portable "
                           "authentication; route to an authenticating proxy (oauth2-proxy) instead.", r.urn)


CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
ISSUER = "kubernetes:cert-manager.io/v1:Issuer"
SECRET = "kubernetes:core/v1:Secret"
_PEM_END = "-----END CERTIFICATE-----"


def _entry_tls_secrets(r) -> list[str]:
    """The Secrets an Ingress or a Gateway's HTTPS listeners serve."""
    spec = r.props.get("spec") or {}
    if r.resource_type == INGRESS:
        return [t.get("secretName") for t in spec.get("tls") or [] if t.get("secretName")]
    if r.resource_type == GATEWAY:
        return [ref.get("name") for li in spec.get("listeners") or [] for ref in (li.get("tls") or {}).get("certificateRefs") or []
                if ref.get("name") and ref.get("kind", "Secret") == "Secret"]
    return []


def _pems(text) -> set[str]:
    """The certificates of a PEM bundle, one normalised string each (nothing when unknown at preview)."""
    if not isinstance(text, str) or isinstance(text, Unknown):
        return set()
    return {"".join(block.split()) + _PEM_END for block in text.split(_PEM_END) if "BEGIN CERTIFICATE" in block}


def validate_entry_point_ca(args, report):
    """Users trust the entry point's issuer: a CA that also signs the stack's other certificates (its mTLS) would
    make them trust whoever holds that key, and that key opens the leaves and routers. Read where the objects show
    it: a cert-manager CA Issuer (by its keypair Secret) that issues another Certificate too, or a Secret whose
    `ca.crt` holds a CA another Secret of the stack carries."""
    resources = args.resources

    def beside(owner, resource_type: str) -> list:
        return [x for x in resources if x.resource_type == resource_type and provider_of(x) == provider_of(owner)
                and namespace_of(x) == namespace_of(owner)]

    def named(items: list, name: str | None):
        return next((x for x in items if (x.props.get("metadata") or {}).get("name") == name), None)

    for r in resources:
        for secret in _entry_tls_secrets(r):
            kind = "Ingress" if r.resource_type == INGRESS else "Gateway"
            name = (r.props.get("metadata") or {}).get("name")
            certificates = beside(r, CERTIFICATE)
            issuers = beside(r, ISSUER)
            cert = next((c for c in certificates if (c.props.get("spec") or {}).get("secretName") == secret), None)
            ref = ((cert.props.get("spec") or {}).get("issuerRef") or {}) if cert else {}
            issuer = named(issuers, ref.get("name")) if cert and ref.get("kind", "Issuer") == "Issuer" else None
            keypair = ((issuer.props.get("spec") or {}).get("ca") or {}).get("secretName") if issuer else None
            if keypair:
                same_ca = {(i.props.get("metadata") or {}).get("name") for i in issuers
                           if ((i.props.get("spec") or {}).get("ca") or {}).get("secretName") == keypair}
                others = sorted(filter(None, ((c.props.get("spec") or {}).get("secretName") for c in certificates
                                              if c is not cert and ((c.props.get("spec") or {}).get("issuerRef") or {})
                                              .get("name") in same_ca)))
                if others:
                    report(f"{kind} {name} serves {secret}, issued by the CA in Secret {keypair}, which also signs "
                           f"{', '.join(others)}: users who trust the entry point's CA would trust whoever holds the "
                           "key of those certificates' CA for every site. Issue the entry point from a CA of its own "
                           "(name-constrained to the host), an ACME issuer or a Secret of yours"
                           + " (config: global-view.entry-point.tls).", r.urn)
            own = named(beside(r, SECRET), secret)
            carried = _pems(secret_text(own.props, "ca.crt")) if own else set()
            if carried:
                shared = sorted(filter(None, ((x.props.get("metadata") or {}).get("name") for x in resources
                                              if x.resource_type == SECRET and x is not own and any(
                                                  carried & _pems(secret_text(x.props, key))
                                                  for key in set((x.props.get("stringData") or {}))
                                                  | set((x.props.get("data") or {}))))))
                if shared:
                    report(f"{kind} {name} serves {secret}, whose ca.crt is a CA that Secrets "
                           f"{', '.join(shared)} carry too: the stack's mTLS CA would sign the entry point, and users "
                           "who trust it would trust whoever holds its key for every site. Issue the entry point from "
                           "a CA of its own (name-constrained to the host), an ACME issuer or a Secret of yours"
                           + " (config: global-view.entry-point.tls).", r.urn)


MONITOR_KINDS = ("serviceMonitor", "podMonitor", "probe", "scrapeConfig")
"""The prometheus-operator objects a Prometheus selects scrape targets from (`<kind>Selector`,
`<kind>NamespaceSelector`)."""


def validate_monitor_file_access(args, report):
    """A Prometheus resource that selects monitors from every namespace (an empty namespace selector) without
    `arbitraryFSAccessThroughSMs.deny`: anyone who may create a ServiceMonitor in any namespace can make Prometheus
    send a file it reads (its service account or workload identity token, the bucket writer's) to any endpoint."""
    if args.resource_type != PROMETHEUS_CR:
        return
    spec = args.props.get("spec") or {}
    if (spec.get("arbitraryFSAccessThroughSMs") or {}).get("deny") is True:
        return
    # A null selector selects no monitors; an empty namespace selector selects every namespace.
    open_kinds = [kind for kind in MONITOR_KINDS if spec.get(f"{kind}Selector") is not None
                  and spec.get(f"{kind}NamespaceSelector") == {}]
    if open_kinds:
        name = (args.props.get("metadata") or {}).get("name")
        report(f"{name}: Prometheus selects {', '.join(k + 's' for k in open_kinds)} from every namespace and allows them arbitrary "
               "file access: a ServiceMonitor from any namespace can send its token files (bucket write access) "
               "anywhere. Select your own namespaces (e.g. matchLabels kubernetes.io/metadata.name) and set "
               "arbitraryFSAccessThroughSMs.deny: true.")


def validate_admin_api(args, report):
    """Refuses a compactor, store or bucket web serving the block-marking API: anyone on its port can delete blocks."""
    if args.resource_type not in WORKLOAD_TYPES:
        return
    name = (args.props.get("metadata") or {}).get("name")
    for c, command, flags in thanos_containers(args.props):
        since, version = ADMIN_SWITCH_SINCE.get(command), image_version(c.get("image") or "")
        if since is None or switch_on(flags, "disable-admin-operations") or (version and version < MARK_API_SINCE):
            continue
        if switch_on(flags, "web.disable") or (command == "compact" and not switch_on(flags, "wait")):
            continue  # no block viewer, so no API: a compactor serves it only while it waits
        risk = (f"{name}: thanos {command} lets anyone who reaches its HTTP port mark every block for deletion "
                "(POST /api/v1/blocks/mark), and the compactor then deletes them")
        if version and version < since:
            report(f"{risk}; {_version_text(version)} cannot turn that off: upgrade to {_version_text(since)} or "
                   "later and set --disable-admin-operations.")
        else:
            report(f"{risk}: set --disable-admin-operations.")


POLICIES = [
    stack_policy("thanos-exposure-grpc-mtls", "A Service that exposes Thanos gRPC or remote-write outside the cluster "
                 "requires mTLS on its pods.", validate_exposed_grpc),
    stack_policy("thanos-exposure-entry-point-auth", "An Ingress or HTTPRoute to query, query-frontend or receive has TLS "
                 "and an authenticating backend.", validate_entry_points),
    stack_policy("thanos-exposure-entry-point-ca", "An entry point's certificate never comes from a CA that signs the "
                 "stack's other certificates (its mTLS): users trust the entry point's CA.", validate_entry_point_ca),
    resource_policy("thanos-exposure-monitor-file-access", "A Prometheus resource never takes monitors from every "
                    "namespace with arbitrary file access: they could send its token files anywhere.",
                    validate_monitor_file_access),
    resource_policy("thanos-exposure-admin-api-off", "Compactors, store gateways and bucket webs run with "
                    "--disable-admin-operations: no one can mark blocks for deletion over HTTP.", validate_admin_api),
]
