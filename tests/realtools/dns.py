"""A stand-in for a cluster's DNS (CoreDNS with the kubernetes plugin), answering from the plan's Services and the
pods the harness started: only what Kubernetes' DNS specification says for those names.

- `<service>.<namespace>.svc.cluster.local` A: the addresses of the started pods the Service selects (headless
  Services answer so in Kubernetes; a ClusterIP Service would answer its virtual IP, which leads to the same pods);
- `<hostname>.<service>.<namespace>.svc.cluster.local` A: a StatefulSet pod under its governing Service;
- `_<port>._<proto>.<service>.<namespace>.svc.cluster.local` SRV: one record per selected pod, with the pod's
  own name as target and the port the named target port resolves to;
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
    """The DNS of one cluster: the plan's Services, and pods registered as they start."""

    def __init__(self, address: str, services: list[dict[str, Any]]):
        self.address = address
        self.services = services
        self.pods: list[Pod] = []
        self._lock = threading.Lock()
        self._server: socketserver.UDPServer | None = None

    def add_pod(self, pod: Pod) -> None:
        with self._lock:
            self.pods = [p for p in self.pods if (p.namespace, p.name) != (pod.namespace, pod.name)] + [pod]

    def remove_pod(self, namespace: str, name: str) -> None:
        with self._lock:
            self.pods = [p for p in self.pods if (p.namespace, p.name) != (namespace, name)]

    def _selected(self, service: dict[str, Any]) -> list[Pod]:
        selector = (service.get("spec") or {}).get("selector") or {}
        namespace = service["metadata"]["namespace"]
        return [p for p in self.pods if p.namespace == namespace and selector
                and all(p.labels.get(k) == v for k, v in selector.items())]

    def lookup(self, name: str, qtype: str) -> tuple[list[Any], bool]:
        """(records, name exists) for one question."""
        name = name.rstrip(".").lower()
        with self._lock:
            for service in self.services:
                svc, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
                base = f"{svc}.{namespace}.{DOMAIN}"
                pods = self._selected(service)
                if name == base:
                    return ([A(p.ip) for p in pods] if qtype == "A" else []), True
                for pod in pods:
                    if pod.subdomain == svc and name == f"{pod.name}.{base}":
                        return ([A(pod.ip)] if qtype == "A" else []), True
                for port in (service.get("spec") or {}).get("ports") or []:
                    if not port.get("name"):
                        continue
                    srv = f"_{port['name']}._{port.get('protocol', 'TCP').lower()}.{base}"
                    if name != srv:
                        continue
                    records = []
                    for pod in pods:
                        target = port.get("targetPort", port["port"])
                        number = pod.ports.get(target) if isinstance(target, str) else target
                        if number is None:
                            continue
                        host = f"{pod.name}.{base}" if pod.subdomain == svc else \
                            f"{pod.ip.replace('.', '-')}.{base}"
                        records.append(SRV(priority=0, weight=100 // max(len(pods), 1), port=number, target=host + "."))
                    return (records if qtype == "SRV" else []), True
                for pod in pods:
                    if name == f"{pod.ip.replace('.', '-')}.{base}":
                        return ([A(pod.ip)] if qtype == "A" else []), True
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
