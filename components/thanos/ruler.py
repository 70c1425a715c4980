"""Thanos Ruler: evaluates rules against Query, HA by a per-pod replica label dropped from alerts."""

from dataclasses import dataclass, field
from typing import Any

import pulumi
import yaml

from components.platform.common import (
    GRPC_PORT,
    HTTP_PORT,
    OBJSTORE_FLAG,
    RULER_REPLICA_LABEL,
    config_reloader,
    container,
    downward_env,
    http_probes,
    inline_config,
    objstore_mount,
    objstore_volume,
    pod_spec,
    service_name,
    thanos_ports,
    volume_claim,
)
from components.platform.tls import CA_MOUNT, CERT_MOUNT, cert_mounts, cert_volumes, server_tls_flags
from components.observability.alertmanager import split_url
from components.platform.names import pod_address
from components.platform import names
from components.platform.kube import ClusterContext, ManifestComponent
from components.platform.workload import workload_objects
from components.thanos.flags import thanos_args
from config.global_view import GLOBAL_RULER_LABEL
from config.thanos import RulerSpec

NAME = names.RULER
DATA_DIR = "/var/thanos/rule"
RULES_DIR = "/etc/thanos/rules"


GLOBAL_TIER_LABEL = f'{GLOBAL_RULER_LABEL}="global"'
"""The global ruler's one external label besides the replica label."""


def ruler_endpoints(replicas: int, namespace: str) -> list[str]:
    """The StoreAPI of every ruler replica, by its pod name."""
    return [pod_address(NAME, i, NAME, namespace) for i in range(replicas)]

def ruler_labels(ctx: ClusterContext, *, global_tier: bool = False) -> list[str]:
    """`--label` values: cluster and region, plus the per-pod replica label (StatefulSet ordinal, so persistent).
    Thanos sets external labels over the labels of the alerts it sends, so the global ruler, whose alerts name the
    cluster they are about, carries neither `cluster` nor `region`: only `tier="global"`."""
    replica = f'{RULER_REPLICA_LABEL}="$(POD_NAME)"'
    if global_tier:
        return [GLOBAL_TIER_LABEL, replica]
    return [f'cluster="{ctx.cluster}"', f'region="{ctx.region}"', replica]


def remote_write_config(url: str) -> dict[str, Any]:
    """`--remote-write.config` of a stateless ruler: Prometheus' `remote_write` to the routers with the platform's
    writer certificate (mounted where cert_mounts puts it; the routers' server certificate is from the servers CA)."""
    return {"remote_write": [{"url": url, "name": "receive", "tls_config": {
        "cert_file": f"{CERT_MOUNT}/tls.crt", "key_file": f"{CERT_MOUNT}/tls.key", "ca_file": f"{CA_MOUNT}/ca.crt",
        "min_version": "TLS13"}}]}


def ruler_args(ctx: ClusterContext, spec: RulerSpec, query_address: str, *, uploads: bool = True,
               server_tls: bool = False, remote_write: str | None = None) -> list[str]:
    """Ruler flags: labels with the replica label, which is dropped from alerts so Alertmanager deduplicates. Without
    `uploads` (the global ruler) its blocks stay local and are served over its StoreAPI only. With `remote_write`
    (a stateless cluster ruler) the results go there with the same labels, and it keeps no TSDB."""
    storage = ([f"--remote-write.config={inline_config(remote_write_config(remote_write))}"] if remote_write else
               [f"--tsdb.retention={spec.retention}", "--tsdb.block-duration=2h"])
    flags = [f"--grpc-address=0.0.0.0:{GRPC_PORT}", f"--http-address=0.0.0.0:{HTTP_PORT}", "--log.format=logfmt",
             f"--data-dir={DATA_DIR}", *([OBJSTORE_FLAG] if uploads else []),
             *(server_tls_flags("readers") if server_tls else []),
             *(f"--label={label}" for label in ruler_labels(ctx, global_tier=not uploads and not remote_write)),
             f"--alert.label-drop={RULER_REPLICA_LABEL}", f"--rule-file={RULES_DIR}/*.yaml",
             f"--eval-interval={spec.evaluation_interval}", *storage, f"--query={query_address}"]
    if spec.alertmanagers:
        flags.append(f"--alertmanagers.config={inline_config(alertmanagers_config(spec.alertmanagers))}")
    return thanos_args("rule", flags)


def rules_file(spec: RulerSpec) -> str:
    """The rule file the ruler loads (its spec's groups: the caller fills in the defaults)."""
    return yaml.safe_dump({"groups": spec.rule_groups or []}, sort_keys=False)


def alertmanagers_config(urls: list[str]) -> dict[str, Any]:
    """`--alertmanagers.config` from Alertmanager URLs (`[dns+|dnssrv+]http[s]://host[:port][/prefix]`), always with
    API v2 (Alertmanager 0.27 removed v1)."""
    entries = []
    for url in urls:
        discovery, scheme, host, prefix = split_url(url)
        entry: dict[str, Any] = {"static_configs": [f"{discovery}+{host}" if discovery else host], "scheme": scheme,
                                 "api_version": "v2", "timeout": "10s"}
        if prefix:
            entry["path_prefix"] = prefix
        entries.append(entry)
    return {"alertmanagers": entries}


def build_ruler(ctx: ClusterContext, spec: RulerSpec, query_address: str, pod_labels: dict[str, str] | None = None,
                *, tls_secret: str | None = None, trust: dict[str, str] | None = None,
                remote_write: str | None = None, writer_secret: str | None = None) -> list[dict[str, Any]]:
    """Rules ConfigMap, StatefulSet with a PVC and the reloader, headless Service, PDB. With `tls_secret` (the global
    ruler): gRPC behind mTLS and no uploads (it has no bucket). With `remote_write` (a stateless cluster ruler): its
    results go to that URL with the client certificate of `writer_secret`, and it has no bucket either."""
    component = "ruler"
    uploads = tls_secret is None and remote_write is None
    storage_mounts = [objstore_mount()] if uploads else cert_mounts()
    ruler = container("thanos-ruler", ctx.image, ruler_args(ctx, spec, query_address, uploads=uploads,
                                                            server_tls=tls_secret is not None,
                                                            remote_write=remote_write), spec.resources,
                      ports=thanos_ports(), env=downward_env(), probes=http_probes(startup_seconds=300),
                      mounts=[{"name": "data", "mountPath": DATA_DIR}, *storage_mounts,
                              {"name": "rules", "mountPath": RULES_DIR, "readOnly": True}])
    volumes = ([objstore_volume()] if uploads else
               cert_volumes(tls_secret or writer_secret or ""))
    pod = pod_spec(service_name(component), [ruler, config_reloader("rules", RULES_DIR, HTTP_PORT)], selector=ctx.selector(component),
                   replicas=spec.replicas, zone_spread=ctx.zone_spread, node_spread=ctx.node_spread,
                   volumes=[*volumes, {"name": "rules", "configMap": {"name": f"{NAME}-rules"}}])
    objects = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(f"{NAME}-rules", component),
                "data": {"thanos.yaml": rules_file(spec)}}]
    return objects + workload_objects(ctx, component, NAME, kind="StatefulSet", replicas=spec.replicas, pod=pod,
                                      ports=thanos_ports(), claims=[volume_claim("data", spec.storage_size, None)],
                                      pod_labels=pod_labels, pod_annotations=trust)


@dataclass(frozen=True)
class RulerArgs:
    """What a ruler is registered from."""

    objects: list[dict[str, Any]]
    """Its Kubernetes objects (`build_ruler`)."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What each of its objects waits for, besides the objects it uses (default nothing)."""


class Ruler(ManifestComponent):
    """Thanos Ruler (a cluster's, or the global one)."""

    def __init__(self, name: str, args: RulerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:k8s:Ruler", name, args.objects, opts, args.depends_on)
