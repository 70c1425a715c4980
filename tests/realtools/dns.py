"""A stand-in for a cluster's DNS (CoreDNS with the kubernetes plugin), answering from the plan's Services and the
pods the harness started: only what Kubernetes' DNS specification says for those names, following readiness.

A Service's endpoints are the selected pods that are ready (`set_ready`, which the harness' prober calls), or every
selected pod that has an address when the Service sets `publishNotReadyAddresses`.
- `<service>.<namespace>.svc.cluster.local` A: a headless Service (`clusterIP: None`) answers its endpoints, and is
  NXDOMAIN without any (as CoreDNS). A ClusterIP Service always answers: its endpoints' addresses when it has any
  (standing in for kube-proxy, which sends the virtual IP's traffic to them), else its virtual IP, a loopback
  address on which nothing listens (a virtual IP without endpoints refuses connections);
- `<endpoint>.<service>.<namespace>.svc.cluster.local` A: an endpoint's own name, its pod's hostname when the pod
  is a StatefulSet's under its governing Service, else its address with dashes;
- `_<port>._<proto>.<service>.<namespace>.svc.cluster.local` SRV: one record per endpoint, with the endpoint's name
  as target and the port the named target port resolves to; a ClusterIP Service without endpoints answers what
  CoreDNS answers, its own name (its virtual IP) and the Service's port;
- anything else: NXDOMAIN (AAAA for a known name: no data).
It listens on one loopback address, port 53, for one cluster, and only while a test runs."""

import socketserver
import threading
from dataclasses import dataclass
from typing import Any

from dnslib import AAAA, QTYPE, RCODE, RR, SRV, A, DNSRecord

DOMAIN = "svc.cluster.local"
TTL = 5


@dataclass
class Pod:
    """A started pod as DNS sees it."""

    name: str
    namespace: str
    ip: str
    labels: dict[str, str]
    ports: dict[str, int]
    """containerPort name -> number."""
    subdomain: str | None = None
    """The governing Service of a StatefulSet pod."""


class ClusterDNS:
    """The DNS of one cluster: the plan's Services, and pods registered as they start, published as they get ready.
    `virtual_ips`: (namespace, name) -> the virtual IP of each ClusterIP Service."""

    def __init__(self, address: str, services: list[dict[str, Any]],
                 virtual_ips: dict[tuple[str, str], str] | None = None):
        self.address = address
        self.services = services
        self.virtual_ips = virtual_ips or {}
        missing = [f"{s['metadata']['namespace']}/{s['metadata']['name']}" for s in services
                   if not headless(s) and (s["metadata"]["namespace"], s["metadata"]["name"]) not in self.virtual_ips]
        if missing:
            raise ValueError(f"ClusterIP Services without a virtual IP: {missing}")
        self.pods: list[Pod] = []
        self.ready: set[tuple[str, str]] = set()
        """(namespace, name) of every ready pod."""
        self._lock = threading.Lock()
        self._server: socketserver.UDPServer | None = None

    def add_pod(self, pod: Pod) -> None:
        """Register a pod (or replace its record); its readiness stays as it was (a new pod is not ready)."""
        with self._lock:
            self.pods = [p for p in self.pods if (p.namespace, p.name) != (pod.namespace, pod.name)] + [pod]

    def remove_pod(self, namespace: str, name: str) -> None:
        """Forget a pod, as when it is deleted."""
        with self._lock:
            self.pods = [p for p in self.pods if (p.namespace, p.name) != (namespace, name)]
            self.ready.discard((namespace, name))

    def set_ready(self, namespace: str, name: str, ready: bool) -> None:
        """Mark a pod ready or not (what its readiness probes say)."""
        with self._lock:
            if ready and any((p.namespace, p.name) == (namespace, name) for p in self.pods):
                self.ready.add((namespace, name))
            else:
                self.ready.discard((namespace, name))

    def registered(self) -> list[Pod]:
        """The registered pods, now."""
        with self._lock:
            return list(self.pods)

    def selected(self, service: dict[str, Any]) -> list[Pod]:
        """The registered pods the Service's selector matches."""
        selector = (service.get("spec") or {}).get("selector") or {}
        namespace = service["metadata"]["namespace"]
        return [p for p in self.pods if p.namespace == namespace and selector
                and all(p.labels.get(k) == v for k, v in selector.items())]

    def endpoints(self, service: dict[str, Any]) -> list[Pod]:
        """The selected pods the Service's endpoints hold: the ready ones, or with `publishNotReadyAddresses` every
        one that has an address."""
        pods = self.selected(service)
        if (service.get("spec") or {}).get("publishNotReadyAddresses"):
            return [p for p in pods if p.ip]
        return [p for p in pods if (p.namespace, p.name) in self.ready]

    def lookup(self, name: str, qtype: str) -> tuple[list[Any], bool]:
        """(records, name exists) for one question."""
        name = name.rstrip(".").lower()
        with self._lock:
            for service in self.services:
                svc, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
                base = f"{svc}.{namespace}.{DOMAIN}"
                if name != base and not name.endswith("." + base):
                    continue
                endpoints = self.endpoints(service)
                vip = None if headless(service) else self.virtual_ips[(namespace, svc)]
                if name == base:
                    addresses = [p.ip for p in endpoints] or ([vip] if vip else [])
                    return ([A(ip) for ip in addresses] if qtype == "A" else []), bool(addresses)
                for pod in endpoints:
                    if name == f"{endpoint_name(pod, svc)}.{base}":
                        return ([A(pod.ip)] if qtype == "A" else []), True
                for port in (service.get("spec") or {}).get("ports") or []:
                    if not port.get("name") or name != f"_{port['name']}._{port.get('protocol', 'TCP').lower()}.{base}":
                        continue
                    target = port.get("targetPort", port["port"])
                    numbers = [(pod, pod.ports.get(target) if isinstance(target, str) else target) for pod in endpoints]
                    numbers = [(pod, number) for pod, number in numbers if number is not None]
                    records = [SRV(priority=0, weight=100 // len(numbers), port=number,
                                   target=f"{endpoint_name(pod, svc)}.{base}.") for pod, number in numbers]
                    if not records and vip:
                        records = [SRV(priority=0, weight=100, port=port["port"], target=base + ".")]
                    return (records if qtype == "SRV" else []), bool(records)
        return [], False

    def answer(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        reply = request.reply()
        for question in request.questions:
            qname, qtype = str(question.qname), QTYPE[question.qtype]
            records, exists = self.lookup(qname, qtype)
            if not exists:
                reply.header.rcode = RCODE.NXDOMAIN
            for record in records:
                rtype = {A: QTYPE.A, SRV: QTYPE.SRV, AAAA: QTYPE.AAAA}[type(record)]
                reply.add_answer(RR(qname, rtype, rdata=record, ttl=TTL))
                if isinstance(record, SRV):
                    target_records, _ = self.lookup(str(record.target), "A")
                    for extra in target_records:
                        reply.add_ar(RR(str(record.target), QTYPE.A, rdata=extra, ttl=TTL))
        return reply.pack()

    def start(self) -> None:
        dns = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                try:
                    sock.sendto(dns.answer(data), self.client_address)
                except Exception:  # a malformed packet: drop it, as a resolver would time out
                    pass

        self._server = socketserver.ThreadingUDPServer((self.address, 53), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def headless(service: dict[str, Any]) -> bool:
    """`clusterIP: None`: DNS answers the endpoints themselves."""
    return (service.get("spec") or {}).get("clusterIP") == "None"


def endpoint_name(pod: Pod, service: str) -> str:
    """An endpoint's first label under a Service: the pod's hostname under its governing Service, else its address
    with dashes (CoreDNS' endpointHostname)."""
    return pod.name if pod.subdomain == service else pod.ip.replace(".", "-")
