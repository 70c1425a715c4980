"""Thanos Receive: a router Deployment hashing remote writes over an ingestor StatefulSet (ketama hashring).

The hashring follows its pods by the deployment order itself (no thanos-receive-controller or thanos-operator: their
images cannot be had here, and the controller filters unready pods only with `--allow-dynamic-scaling`):
- the ring ConfigMap waits for the ingestor StatefulSets, whose rollout the provider awaits (every replica ready), so
  a grown ring is published only once its new ingestors are ready;
- the routers carry the ring's hash as a pod annotation and wait for the ConfigMap, so a ring change restarts them
  right after it, one at a time (surge 1, none unavailable), each new router starting on the new ring. Left to
  itself a router would read the changed file only at `--receive.hashrings-file-refresh-interval` (5m) plus the
  kubelet's ConfigMap sync (1-2 min): fsnotify misses the ConfigMap's symlink swap (thanos-io/thanos#6491);
- a shrink takes two steps, since one static order cannot put the ring first when shrinking and last when growing:
  `draining: N` drops the N ingestors a scale-down would remove from the ring (their pods keep running and answer
  queries), then lowering `ingestors` removes pods no router writes to. `preflight --baseline` refuses the one-step
  shrink (preflight/hashring.py). A ring listing a pod that is gone makes the writes of its share miss quorum.

A tenant with ingestors of its own (`tenancy.tenants[].dedicated-ingestors`) gets a ring of its own, listed before the
default ring, over StatefulSets `thanos-receive-<tenant>[-<zone>]` that follow the same order and drain the same way
(`dedicated-draining`)."""

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import yaml

from components.platform.common import (
    GRPC_PORT,
    HTTP_PORT,
    OBJSTORE_FLAG,
    PROMETHEUS_PORT,
    RECEIVE_REPLICA_LABEL,
    REMOTE_WRITE_PORT,
    ZONE_KEY,
    container,
    downward_env,
    http_probes,
    objstore_mount,
    objstore_volume,
    pdb_spec,
    pod_spec,
    service_name,
    thanos_ports,
    volume_claim,
)
from components.platform.tls import cert_mounts, cert_volumes, server_tls_flags
from components.platform import names
from components.platform.kube import ClusterContext, ManifestComponent, register
from components.platform.names import pod_address, pod_host, service_url
from components.platform.workload import workload_objects
from components.thanos.flags import thanos_args
from config.limits import ResolvedLimits, resolve
from config.tenancy import Tenant
from config.thanos import ReceiveSpec

INGESTOR = names.RECEIVE
ROUTER = names.RECEIVE_ROUTER
HASHRING = "thanos-receive-hashring"
DATA_DIR = "/var/thanos/receive"
HASHRING_DIR = "/etc/thanos/hashring"
LIMITS = "thanos-receive-limits"
LIMITS_DIR = "/etc/thanos/limits"
HEAD_SERIES_LIMITING = "thanos.io/head-series-limiting"
"""Router pod annotation, on or off: receive starts its meta-monitoring query only if head-series limits exist at
start, so turning them on or off must restart the routers (every other limit change is reloaded from the file)."""
HASHRING_ANNOTATION = "thanos.io/hashring-sha256"
"""The routers' pod annotation holding the hash of hashrings.json: a ring change restarts them."""


ZONE_LABEL = "thanos.io/zone"


def ingestor_endpoint(index: int, namespace: str, statefulset: str = INGESTOR) -> str:
    """The stable gRPC address of ingestor `index` of a StatefulSet: its pod DNS name under the headless Service."""
    return pod_address(statefulset, index, INGESTOR, namespace)


def zone_statefulsets(spec: ReceiveSpec, zones: tuple[str, ...], count: int | None = None,
                      name: str = INGESTOR) -> list[tuple[str, str | None, int]]:
    """(StatefulSet name, zone, replicas) of the ingestors: one set without zones, else one per zone, the ingestors
    dealt out as evenly as the count allows (earlier zones get the remainder). `count`: deal that many instead (the
    ring's members: fewer never gives a zone more); `name`: the sets' name (a dedicated ring's)."""
    count = spec.ingestors if count is None else count
    if not zones:
        return [(name, None, count)]
    base, extra = divmod(count, len(zones))
    return [(f"{name}-{zone}", zone, base + (1 if i < extra else 0)) for i, zone in enumerate(zones)]


RING_LABEL = "thanos.io/hashring"
"""Pod and selector label of a dedicated ring's ingestors: the tenant (the shared ones carry none)."""


@dataclass(frozen=True)
class Ring:
    """One hashring and the ingestor StatefulSet(s) it spreads over."""

    name: str
    """The ring's name: `default`, or the tenant it is dedicated to."""
    tenants: tuple[str, ...]
    """The tenants it takes (none: every tenant no earlier ring takes)."""
    statefulset: str
    """The name of its StatefulSet (the prefix of its zones' StatefulSets)."""
    ingestors: int
    """Its ingestors."""
    draining: int
    """Those kept running out of the ring."""

    @property
    def in_ring(self) -> int:
        return self.ingestors - self.draining

    def statefulsets(self, spec: ReceiveSpec, zones: tuple[str, ...], members: bool = False) -> list[tuple[str, str | None, int]]:
        """(StatefulSet name, zone, replicas) of its ingestors; `members`: of the ring's members only."""
        return zone_statefulsets(spec, zones, self.in_ring if members else self.ingestors, self.statefulset)


def rings(spec: ReceiveSpec, dedicated: Sequence[Tenant] = ()) -> list[Ring]:
    """Each dedicated tenant's ring, then the default ring: a router takes the first ring whose `tenants` hold the
    writer's tenant, and a ring without tenants holds every tenant, so the default ring must come last."""
    return [*(Ring(t.name, (t.name,), f"{INGESTOR}-{t.name}", t.dedicated_ingestors, t.dedicated_draining)
              for t in dedicated),
            Ring("default", (), INGESTOR, spec.ingestors, spec.draining)]


def hashring(spec: ReceiveSpec, namespace: str, zones: tuple[str, ...] = (),
             dedicated: Sequence[Tenant] = ()) -> list[dict[str, Any]]:
    """hashrings.json: each dedicated tenant's ring (exact match on its name), then the default ring over the shared
    ingestors, every one ketama (the endpoint count covers the factor); with zones each endpoint carries its `az`,
    and ketama places a series' copies in distinct zones. Draining ingestors are left out."""
    configs = []
    for ring in rings(spec, dedicated):
        endpoints: list[Any] = []
        for name, zone, count in ring.statefulsets(spec, zones, members=True):
            for i in range(count):
                address = ingestor_endpoint(i, namespace, name)
                endpoints.append({"address": address, "az": zone} if zone else address)
        config: dict[str, Any] = {"hashring": ring.name, "tenants": list(ring.tenants), "algorithm": "ketama",
                                  "endpoints": endpoints}
        if ring.tenants:
            config["tenant_matcher_type"] = "exact"
        configs.append(config)
    return configs


def receive_endpoints(spec: ReceiveSpec, namespace: str, zones: tuple[str, ...] = (),
                      dedicated: Sequence[Tenant] = ()) -> list[str]:
    """The StoreAPI of every ingestor, shared and dedicated, for Query (the hashrings' addresses, and the draining
    ingestors' until they go: they hold the samples written before the drain)."""
    *own, shared = rings(spec, dedicated)
    return [ingestor_endpoint(i, namespace, name) for ring in (shared, *own)
            for name, _, count in ring.statefulsets(spec, zones) for i in range(count)]


REMOTE_WRITE_TLS_SECRET = "thanos-remote-write-tls"
REMOTE_WRITE_CLIENT_SECRET = "thanos-remote-write-client-tls"
TENANT_CERTIFICATE_FIELD = "organization"
"""Where the routers read a writer's tenant with tenants configured: its certificate's Subject O (never a header)."""


def tenant_client_secret(tenant: str) -> str:
    """The Secret of a tenant's remote-write client certificate (Subject O = the tenant)."""
    return f"thanos-remote-write-client-{tenant}"


def remote_write_url(namespace: str) -> str:
    """Where Prometheus servers remote-write to (the routers, HTTPS with a client certificate)."""
    return service_url("https", ROUTER, namespace, REMOTE_WRITE_PORT, "/api/v1/receive")


def meta_monitoring_query(namespace: str, replication_factor: int) -> str:
    """Each tenant's distinct active series: the ingestors' head series (per tenant, the `tenant` label receive's
    limiter reads) as this cluster's Prometheus scrapes them, over the replication factor (each series is held that
    many times)."""
    return (f'sum by (tenant) (prometheus_tsdb_head_series{{job="{names.RECEIVE}",namespace="{namespace}"}})'
            f" / {replication_factor}")


def limits_config(ctx: ClusterContext, spec: ReceiveSpec, limits: ResolvedLimits) -> dict[str, Any]:
    """Receive's limits file: the concurrency gate; head series counted by the cluster's own Prometheus (the one
    that scrapes the ingestors); the default limits and every tenant's, each fully resolved (0: none)."""
    write: dict[str, Any] = {
        "global": {"max_concurrency": spec.write_concurrency,
                   "meta_monitoring_url": service_url("http", names.PROMETHEUS, ctx.namespace, PROMETHEUS_PORT),
                   "meta_monitoring_limit_query": meta_monitoring_query(ctx.namespace, spec.replication_factor)},
        "default": limits.default.as_file()}
    if limits.tenants:
        write["tenants"] = {name: tenant.as_file() for name, tenant in sorted(limits.tenants.items())}
    return {"write": write}


def _common(ctx: ClusterContext) -> list[str]:
    return [f"--grpc-address=0.0.0.0:{GRPC_PORT}", f"--http-address=0.0.0.0:{HTTP_PORT}", "--log.format=logfmt",
            f"--remote-write.address=0.0.0.0:{REMOTE_WRITE_PORT}",
            f'--label=cluster="{ctx.cluster}"', f'--label=region="{ctx.region}"']


def ingestor_args(ctx: ClusterContext, spec: ReceiveSpec) -> list[str]:
    """Ingestor flags: a TSDB on a PVC, uploads, a per-pod replica label and its own stable local endpoint."""
    return thanos_args("receive", [
        *_common(ctx), f'--label={RECEIVE_REPLICA_LABEL}="$(POD_NAME)"', f"--tsdb.path={DATA_DIR}",
        f"--tsdb.retention={spec.retention}", OBJSTORE_FLAG,
        f"--receive.local-endpoint={pod_host('$(POD_NAME)', INGESTOR, '$(POD_NAMESPACE)')}:{GRPC_PORT}"])


def router_args(ctx: ClusterContext, spec: ReceiveSpec, tenants: bool = False) -> list[str]:
    """Router flags: the hashring file, the replication factor and the limits file (a file, so a change is reloaded
    without a restart); no local endpoint, so it only routes. Remote write is mTLS: only a writer with a certificate
    from the stack CA gets in. With `tenants` the tenant is the certificate's Organization (a THANOS-TENANT header the
    writer sends is ignored; a certificate without one gets 400)."""
    return thanos_args("receive", [
        *_common(ctx), f"--receive.hashrings-file={HASHRING_DIR}/hashrings.json",
        "--receive.hashrings-algorithm=ketama", f"--receive.replication-factor={spec.replication_factor}",
        f"--receive.limits-config-file={LIMITS_DIR}/limits.yaml",
        *server_tls_flags("writers", "remote-write.server-tls"),
        *([f"--receive.tenant-certificate-field={TENANT_CERTIFICATE_FIELD}"] if tenants else [])])


def build_receive(ctx: ClusterContext, spec: ReceiveSpec, pod_labels: dict[str, str] | None = None,
                  trust: dict[str, str] | None = None, limits: ResolvedLimits | None = None,
                  tenants: bool = False, dedicated: Sequence[Tenant] = ()) -> list[dict[str, Any]]:
    """Hashring and limits ConfigMaps, ingestor StatefulSets (PVC, long grace to flush; the shared ones, then each
    `dedicated` tenant's), router Deployment, Services, PDBs; `limits` default to the spec's own, without tenants."""
    limits = limits or resolve(spec)
    ports = thanos_ports(remote_write=True)
    ring = json.dumps(hashring(spec, ctx.namespace, ctx.zones, dedicated), indent=2, sort_keys=True)
    ingestor_pod = pod_spec(service_name("receive"), [container(
        "thanos-receive", ctx.image, ingestor_args(ctx, spec), spec.resources, ports=ports, env=downward_env(),
        mounts=[{"name": "data", "mountPath": DATA_DIR}, objstore_mount()], probes=http_probes(startup_seconds=1800))],
        # Spread rules even for one ingestor: the template must not change with the count, or scaling 1 -> 3 would
        # restart the ingestor the ring lists while the new ones start.
        selector=ctx.selector("receive"), replicas=max(2, spec.ingestors), volumes=[objstore_volume()], grace_seconds=900,
        zone_spread=ctx.zone_spread, node_spread=ctx.node_spread)
    router_pod = pod_spec(service_name("receive-router"), [container(
        "thanos-receive-router", ctx.image, router_args(ctx, spec, tenants), spec.router_resources, ports=ports,
        mounts=[{"name": "hashring", "mountPath": HASHRING_DIR, "readOnly": True},
                {"name": "limits", "mountPath": LIMITS_DIR, "readOnly": True}, *cert_mounts()],
        probes=http_probes())], selector=ctx.selector("receive-router"), replicas=spec.router_replicas,
        zone_spread=ctx.zone_spread, node_spread=ctx.node_spread, volumes=[{"name": "hashring", "configMap": {"name": HASHRING}},
                                              {"name": "limits", "configMap": {"name": LIMITS}},
                                              *cert_volumes(REMOTE_WRITE_TLS_SECRET)], grace_seconds=60)
    objects = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(HASHRING, "receive-router"),
                "data": {"hashrings.json": ring}},
               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(LIMITS, "receive-router"),
                "data": {"limits.yaml": yaml.safe_dump(limits_config(ctx, spec, limits), sort_keys=False)}}]
    # A drain may take as many ingestors as the write quorum tolerates losing, and never none.
    objects += workload_objects(ctx, "receive", INGESTOR, kind="StatefulSet", replicas=spec.ingestors,
                                pod=ingestor_pod, ports=ports, claims=[volume_claim("data", spec.storage_size, None)],
                                max_unavailable=max(1, spec.replication_factor // 2), pod_labels=pod_labels)
    *own, shared = rings(spec, dedicated)
    if ctx.zones:
        objects = [o for o in objects if o["kind"] != "StatefulSet"] + ring_ingestors(
            ctx, spec, shared, ingestor_pod, ports, pod_labels)
    for tenant_ring in own:
        objects += ring_ingestors(ctx, spec, tenant_ring, ingestor_pod, ports, pod_labels)
    if own and spec.ingestors == 1:  # the shared ingestors' PDB, which covers every ingestor, needs more than one
        objects.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                        "metadata": ctx.metadata(INGESTOR, "receive"),
                        "spec": pdb_spec(ctx.selector("receive"), max(1, spec.replication_factor // 2))})
    objects += workload_objects(ctx, "receive-router", ROUTER, kind="Deployment", replicas=spec.router_replicas,
                                pod=router_pod, ports=ports, pod_annotations={
                                    **(trust or {}), HEAD_SERIES_LIMITING: "on" if limits.head_series_limited else "off",
                                    HASHRING_ANNOTATION: ring_hash(ring)})
    return objects


def ring_hash(text: str) -> str:
    """The hash of a hashrings.json the routers' pods carry."""
    return hashlib.sha256(text.encode()).hexdigest()


def ring_ingestors(ctx: ClusterContext, spec: ReceiveSpec, ring: Ring, pod: dict[str, Any],
                   ports: list[dict[str, Any]], pod_labels: dict[str, str] | None) -> list[dict[str, Any]]:
    """A ring's ingestor StatefulSets: one per zone, pinned to it by node affinity (one without zones), a dedicated
    ring's carrying its tenant in RING_LABEL; every pod under the one headless Service (so `--receive.local-endpoint`
    and the hashring addresses agree), and the Service and the PDB select all of them. The pod is the shared
    ingestors' own: the same args, and anti-affinity with every ingestor."""
    statefulsets = []
    for name, zone, count in ring.statefulsets(spec, ctx.zones):
        selector = {**ctx.selector("receive"), **({RING_LABEL: ring.name} if ring.tenants else {}),
                    **({ZONE_LABEL: zone} if zone else {})}
        pinned = copy.deepcopy(pod)
        if zone:
            pinned.setdefault("affinity", {})["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": ZONE_KEY, "operator": "In", "values": [zone]}]}]}}
        workload = next(o for o in workload_objects(
            ctx, "receive", name, kind="StatefulSet", replicas=count, pod=pinned, ports=ports, selector=selector,
            claims=[volume_claim("data", spec.storage_size, None)], pod_labels=pod_labels) if o["kind"] == "StatefulSet")
        workload["spec"]["serviceName"] = INGESTOR
        statefulsets.append(workload)
    return statefulsets


@dataclass(frozen=True)
class ReceiveArgs:
    """What the receive router and ingestors are built from."""

    ctx: ClusterContext
    """The cluster they run in (its zones spread the ingestors)."""
    spec: ReceiveSpec
    """Their settings."""
    pod_labels: dict[str, str] | None = None
    """Labels its pods carry for the bucket's workload identity (default none)."""
    trust: dict[str, str] | None = None
    """The routers' pod annotation naming the CA generations they trust: a change restarts them (default none)."""
    limits: ResolvedLimits | None = None
    """The write limits, every tenant's (default the spec's own, without tenants)."""
    tenants: bool = False
    """Tenants are configured: the routers take the tenant from the writer's certificate (default False)."""
    dedicated: tuple[Tenant, ...] = ()
    """Tenants with ingestors and a hashring of their own (default none)."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What each of its objects waits for, besides the objects it uses (default nothing)."""


class Receive(ManifestComponent):
    """Thanos Receive router and ingestors, in the order that keeps the hashring on ready pods: the ingestor
    StatefulSets, then the ring ConfigMap (after every ingestor's rollout), then the routers (restarted on a new ring).
    Zoned and dedicated ingestor StatefulSets roll out one after another: each depends on the one before, and the provider waits
    for a StatefulSet's rollout before touching the next, so an update never takes a pod down in two zones at once
    (with replication factor 3 that would lose the write quorum)."""

    def __init__(self, name: str, args: ReceiveArgs, opts: pulumi.ResourceOptions | None = None):
        objects = build_receive(args.ctx, args.spec, args.pod_labels, args.trust, args.limits, args.tenants,
                                args.dedicated)
        ingestors = [o for o in objects if o["kind"] == "StatefulSet"]
        ring = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == HASHRING]
        routers = [o for o in objects if o["kind"] == "Deployment"]
        super().__init__("thanos:k8s:Receive", name, [o for o in objects if o not in ingestors + ring + routers], opts,
                         args.depends_on)
        previous = list(args.depends_on)
        for statefulset in ingestors:
            created = register([statefulset], name, self, previous)
            self.objects.update(created)
            previous = [*args.depends_on, *created.values()]
        self.objects.update(register(ring, name, self, [*args.depends_on, *(
            self.objects[f"StatefulSet/{o['metadata']['name']}"] for o in ingestors)]))
        # The routers wait for the ConfigMap their pods mount (register finds it).
        self.objects.update(register(routers, name, self, args.depends_on))
