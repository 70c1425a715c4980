"""Thanos Receive: a router Deployment hashing remote writes over an ingestor StatefulSet (ketama hashring)."""

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.platform.common import (
    GRPC_PORT,
    HTTP_PORT,
    OBJSTORE_FLAG,
    RECEIVE_REPLICA_LABEL,
    REMOTE_WRITE_PORT,
    ZONE_KEY,
    container,
    downward_env,
    http_probes,
    objstore_mount,
    objstore_volume,
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
from config.thanos import ReceiveSpec

INGESTOR = names.RECEIVE
ROUTER = names.RECEIVE_ROUTER
HASHRING = "thanos-receive-hashring"
DATA_DIR = "/var/thanos/receive"
HASHRING_DIR = "/etc/thanos/hashring"


ZONE_LABEL = "thanos.io/zone"


def ingestor_endpoint(index: int, namespace: str, statefulset: str = INGESTOR) -> str:
    """The stable gRPC address of ingestor `index` of a StatefulSet: its pod DNS name under the headless Service."""
    return pod_address(statefulset, index, INGESTOR, namespace)


def zone_statefulsets(spec: ReceiveSpec, zones: tuple[str, ...]) -> list[tuple[str, str | None, int]]:
    """(StatefulSet name, zone, replicas) of the ingestors: one set without zones, else one per zone, the ingestors
    dealt out as evenly as the count allows (earlier zones get the remainder)."""
    if not zones:
        return [(INGESTOR, None, spec.ingestors)]
    base, extra = divmod(spec.ingestors, len(zones))
    return [(f"{INGESTOR}-{zone}", zone, base + (1 if i < extra else 0)) for i, zone in enumerate(zones)]


def hashring(spec: ReceiveSpec, namespace: str, zones: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """hashrings.json: one default ring over every ingestor, ketama (the endpoint count covers the factor); with
    zones each endpoint carries its `az`, and ketama places a series' copies in distinct zones."""
    endpoints: list[Any] = []
    for name, zone, count in zone_statefulsets(spec, zones):
        for i in range(count):
            address = ingestor_endpoint(i, namespace, name)
            endpoints.append({"address": address, "az": zone} if zone else address)
    return [{"hashring": "default", "tenants": [], "algorithm": "ketama", "endpoints": endpoints}]


def receive_endpoints(spec: ReceiveSpec, namespace: str, zones: tuple[str, ...] = ()) -> list[str]:
    """The StoreAPI of every ingestor, for Query (the hashring's addresses)."""
    return [ingestor_endpoint(i, namespace, name) for name, _, count in zone_statefulsets(spec, zones)
            for i in range(count)]


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
    """Router flags: the hashring file and the replication factor; no local endpoint, so it only routes. Remote
    write is mTLS: only a writer with a certificate from the stack CA gets in. With `tenants` the tenant is the
    certificate's Organization (a THANOS-TENANT header the writer sends is ignored; a certificate without one gets
    400)."""
    return thanos_args("receive", [
        *_common(ctx), f"--receive.hashrings-file={HASHRING_DIR}/hashrings.json",
        "--receive.hashrings-algorithm=ketama", f"--receive.replication-factor={spec.replication_factor}",
        *server_tls_flags("writers", "remote-write.server-tls"),
        *([f"--receive.tenant-certificate-field={TENANT_CERTIFICATE_FIELD}"] if tenants else [])])


def build_receive(ctx: ClusterContext, spec: ReceiveSpec, pod_labels: dict[str, str] | None = None,
                  trust: dict[str, str] | None = None, tenants: bool = False) -> list[dict[str, Any]]:
    """Hashring ConfigMap, ingestor StatefulSet (PVC, long grace to flush), router Deployment, Services, PDBs."""
    ports = thanos_ports(remote_write=True)
    ingestor_pod = pod_spec(service_name("receive"), [container(
        "thanos-receive", ctx.image, ingestor_args(ctx, spec), spec.resources, ports=ports, env=downward_env(),
        mounts=[{"name": "data", "mountPath": DATA_DIR}, objstore_mount()], probes=http_probes(startup_seconds=1800))],
        selector=ctx.selector("receive"), replicas=spec.ingestors, volumes=[objstore_volume()], grace_seconds=900,
        zone_spread=ctx.zone_spread, node_spread=ctx.node_spread)
    router_pod = pod_spec(service_name("receive-router"), [container(
        "thanos-receive-router", ctx.image, router_args(ctx, spec, tenants), spec.router_resources, ports=ports,
        mounts=[{"name": "hashring", "mountPath": HASHRING_DIR, "readOnly": True}, *cert_mounts()],
        probes=http_probes())], selector=ctx.selector("receive-router"), replicas=spec.router_replicas,
        zone_spread=ctx.zone_spread, node_spread=ctx.node_spread, volumes=[{"name": "hashring", "configMap": {"name": HASHRING}},
                                              *cert_volumes(REMOTE_WRITE_TLS_SECRET)], grace_seconds=60)
    objects = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(HASHRING, "receive-router"),
                "data": {"hashrings.json": json.dumps(hashring(spec, ctx.namespace, ctx.zones), indent=2,
                                                      sort_keys=True)}}]
    # A drain may take as many ingestors as the write quorum tolerates losing, and never none.
    objects += workload_objects(ctx, "receive", INGESTOR, kind="StatefulSet", replicas=spec.ingestors,
                                pod=ingestor_pod, ports=ports, claims=[volume_claim("data", spec.storage_size, None)],
                                max_unavailable=max(1, spec.replication_factor // 2), pod_labels=pod_labels)
    if ctx.zones:
        objects = [o for o in objects if o["kind"] != "StatefulSet"] + zoned_ingestors(
            ctx, spec, ingestor_pod, ports, pod_labels)
    objects += workload_objects(ctx, "receive-router", ROUTER, kind="Deployment", replicas=spec.router_replicas,
                                pod=router_pod, ports=ports, pod_annotations=trust)
    return objects


def zoned_ingestors(ctx: ClusterContext, spec: ReceiveSpec, pod: dict[str, Any], ports: list[dict[str, Any]],
                    pod_labels: dict[str, str] | None) -> list[dict[str, Any]]:
    """One ingestor StatefulSet per zone, pinned to it by node affinity, every pod under the one headless Service
    (so `--receive.local-endpoint` and the hashring addresses agree); the Service and PDB select all of them."""
    statefulsets = []
    for name, zone, count in zone_statefulsets(spec, ctx.zones):
        assert zone is not None  # ctx.zones is not empty here
        selector = {**ctx.selector("receive"), ZONE_LABEL: zone}
        pinned = copy.deepcopy(pod)
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
    tenants: bool = False
    """Tenants are configured: the routers take the tenant from the writer's certificate (default False)."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What each of its objects waits for, besides the objects it uses (default nothing)."""


class Receive(ManifestComponent):
    """Thanos Receive router and ingestors. Zoned ingestor StatefulSets roll out one after another: each depends on
    the one before, and the provider waits for a StatefulSet's rollout before touching the next, so an update never
    takes a pod down in two zones at once (with replication factor 3 that would lose the write quorum)."""

    def __init__(self, name: str, args: ReceiveArgs, opts: pulumi.ResourceOptions | None = None):
        objects = build_receive(args.ctx, args.spec, args.pod_labels, args.trust, args.tenants)
        zoned = [o for o in objects if o["kind"] == "StatefulSet"] if args.ctx.zones else []
        super().__init__("thanos:k8s:Receive", name, [o for o in objects if o not in zoned], opts, args.depends_on)
        previous = list(args.depends_on)
        for statefulset in zoned:
            created = register([statefulset], name, self, previous)
            self.objects.update(created)
            previous = [*args.depends_on, *created.values()]
