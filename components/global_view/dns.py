"""DNS for the global view in the host region's cloud: one record per leaf load balancer, the SRV record listing
every leaf, and the entry point's record (on AWS a failover pair, host then standby, each health-checked on the
unauthenticated readiness path)."""

from dataclasses import dataclass
from typing import Any

import pulumi

from components.global_view.entry_point import PING_PATH, READY_PATH
from components.global_view.leaves import leaf_host, srv_name
from components.platform.common import GRPC_PORT
from config.global_view import GlobalViewSpec


def srv_values(view: GlobalViewSpec, clusters: list[str]) -> list[tuple[int, int, int, str]]:
    """(priority, weight, port, target) of every leaf: equal priority and weight, the global query dials them all."""
    assert view.dns is not None
    return [(10, 10, GRPC_PORT, f"{leaf_host(cluster, view.dns.zone)}.") for cluster in clusters]


def address(status: Any, cloud: str) -> str:
    """The load balancer address a Service or Ingress status reports: a host name on AWS, an IP elsewhere."""
    def get(obj: Any, key: str, attr: str) -> Any:  # typed SDK outputs (attributes) or plain dicts
        if hasattr(obj, attr):
            return getattr(obj, attr)
        return obj.get(key) if isinstance(obj, dict) else None

    balancer = get(status, "loadBalancer", "load_balancer") or {}
    ingress = (get(balancer, "ingress", "ingress") or [{}])[0]
    return get(ingress, "hostname" if cloud == "aws" else "ip", "hostname" if cloud == "aws" else "ip") or ""


def gateway_address(status: Any, cloud: str) -> str:
    """The address a Gateway reports: its host name on AWS, its IP elsewhere."""
    wanted = "Hostname" if cloud == "aws" else "IPAddress"
    return next((a.get("value") for a in (status or {}).get("addresses") or [] if a.get("type") == wanted), "")


@dataclass(frozen=True)
class GlobalDnsArgs:
    """What the global view's records are made from."""

    view: GlobalViewSpec
    """The global view (its `dns` zone is where the records go)."""
    cloud: str
    """The host region's cloud, whose DNS service holds the zone."""
    provider: pulumi.ProviderResource
    """That cloud's provider."""
    leaves: dict[str, pulumi.Output[str]]
    """Each leaf's load balancer address by cluster."""
    entries: list[tuple[str, pulumi.Output[str]]]
    """(cluster, entry point address) of each global tier, host first."""


class GlobalDns(pulumi.ComponentResource):
    """The records of the global view in the host region's DNS zone."""

    def __init__(self, name: str, args: GlobalDnsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("thanos:global:Dns", name, {}, opts)
        view, leaves, entries = args.view, args.leaves, args.entries
        assert view.dns is not None
        self.view, self.dns, self.cloud, self.name = view, view.dns, args.cloud, name
        self.opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        for cluster, target in leaves.items():
            self._record(f"{name}-leaf-{cluster}", leaf_host(cluster, view.dns.zone), target)
        self._srv(f"{name}-srv", srv_values(view, list(leaves)))
        # The entry host gets a record only inside the zone; a public host name is the public zone's business.
        if view.entry_point and entries and view.entry_point.host.endswith(f".{view.dns.zone}"):
            self._entry(f"{name}-entry", view.entry_point.host, entries)
        self.register_outputs({"srv": srv_name(view.dns.zone)})

    def _record(self, name: str, fqdn: str, target: pulumi.Input[str]) -> None:
        dns, ttl = self.dns, self.dns.ttl
        if self.cloud == "aws":
            import pulumi_aws as aws

            aws.route53.Record(name, zone_id=dns.zone_id, name=fqdn, type="CNAME", ttl=ttl, records=[target], opts=self.opts)
        elif self.cloud == "gcp":
            import pulumi_gcp as gcp

            gcp.dns.RecordSet(name, managed_zone=dns.zone_id, name=f"{fqdn}.", type="A", ttl=ttl, rrdatas=[target],
                              opts=self.opts)
        else:
            import pulumi_azure_native as azure

            azure.privatedns.PrivateRecordSet(
                name, resource_group_name=dns.zone_id, private_zone_name=dns.zone, record_type="A",
                relative_record_set_name=fqdn.removesuffix(f".{dns.zone}"), ttl=ttl,
                a_records=[{"ipv4_address": target}], opts=self.opts)

    def _srv(self, name: str, values: list[tuple[int, int, int, str]]) -> None:
        dns, fqdn = self.dns, srv_name(self.dns.zone)
        if self.cloud == "aws":
            import pulumi_aws as aws

            aws.route53.Record(name, zone_id=dns.zone_id, name=fqdn, type="SRV", ttl=dns.ttl,
                               records=[" ".join(str(v) for v in value) for value in values], opts=self.opts)
        elif self.cloud == "gcp":
            import pulumi_gcp as gcp

            gcp.dns.RecordSet(name, managed_zone=dns.zone_id, name=f"{fqdn}.", type="SRV", ttl=dns.ttl,
                              rrdatas=[" ".join(str(v) for v in value) for value in values], opts=self.opts)
        else:
            import pulumi_azure_native as azure

            azure.privatedns.PrivateRecordSet(
                name, resource_group_name=dns.zone_id, private_zone_name=dns.zone, record_type="SRV",
                relative_record_set_name=fqdn.removesuffix(f".{dns.zone}"), ttl=dns.ttl,
                srv_records=[{"priority": p, "weight": w, "port": port, "target": target.rstrip(".")}
                             for p, w, port, target in values], opts=self.opts)

    def _entry(self, name: str, host: str, entries: list[tuple[str, pulumi.Output[str]]]) -> None:
        if self.cloud != "aws" or len(entries) == 1:
            self._record(name, host, entries[0][1])  # failover records are Route53's; elsewhere the host serves
            return
        import pulumi_aws as aws

        dns = self.dns
        # oauth2-proxy lets no upstream path through unauthenticated: the check probes the proxy's own ping.
        assert self.view.entry_point is not None
        health_path = PING_PATH if self.view.entry_point.auth == "oauth2-proxy" else READY_PATH
        for role, (cluster, target) in zip(("PRIMARY", "SECONDARY"), entries, strict=False):
            check = aws.route53.HealthCheck(
                f"{name}-{cluster}-health", type="HTTPS", fqdn=target, port=443, resource_path=health_path,
                failure_threshold=3, request_interval=30, tags={"Name": f"thanos-entry-{cluster}"}, opts=self.opts)
            aws.route53.Record(f"{name}-{cluster}", zone_id=dns.zone_id, name=host, type="CNAME", ttl=dns.ttl,
                               records=[target], set_identifier=cluster, health_check_id=check.id,
                               failover_routing_policies=[{"type": role}], opts=self.opts)
