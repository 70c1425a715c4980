"""The entry point: start planned containers with the real binaries, on a loopback pod network with cluster DNS."""

import os
import socket
import threading
from pathlib import Path
from typing import Any

from . import loopback
from .connections import established, socket_inodes
from .build import tool
from .dns import ClusterDNS, Pod
from .pods import POD_IP_VARIABLE, PlannedContainer
from .sandbox import Process, Sandbox, image_repository

BINARIES = {"quay.io/thanos/thanos": "thanos", "quay.io/prometheus/prometheus": "prometheus",
            "quay.io/prometheus/alertmanager": "alertmanager", "docker.io/library/memcached": "memcached",
            "quay.io/minio/minio": "minio", "docker.io/library/python": "python",
            "quay.io/prometheus/node-exporter": "node-exporter", "quay.io/minio/mc": "mc"}
"""Image repository -> the tool that stands for it (python: this interpreter's own installation)."""


class Harness:
    """Starts planned containers of one plan under `workdir` and stops them all (and its DNS servers) on `close`.

    Every pod gets an address 127.<B>.<C>.<D>, where B is this harness' own (so concurrent test processes never
    share an address) and C its Kubernetes cluster; each Kubernetes cluster's DNS listens on 127.<B>.<C>.1 and
    answers for every planned cluster on it (`kubernetes`: planned cluster -> Kubernetes cluster; default one each)."""

    def __init__(self, workdir: Path, objects: list[tuple[str, dict[str, Any]]], *, filesystem_buckets: bool = True,
                 kubernetes: dict[str, str] | None = None):
        self.sandbox = Sandbox(workdir / "pods", workdir / "buckets")
        self.filesystem_buckets = filesystem_buckets
        """Point bucket configs at FILESYSTEM folders (for clouds); off, they stay as planned (dev's S3 servers)."""
        self.objects = objects
        self.kubernetes = {c: (kubernetes or {}).get(c, c) for c, _ in objects}
        self.clusters = sorted(set(self.kubernetes.values()))
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        self.block = 20 + 100 * (int(worker.removeprefix("gw") or 0) % 2) + os.getpid() % 100
        self.dns: dict[str, ClusterDNS] = {}
        self.pod_ips: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()
        self.stopped: list[Process] = []
        """What `close` stopped (for `leftovers`)."""

    def __enter__(self) -> "Harness":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        self.stopped = list(self.sandbox.processes)
        self.sandbox.stop_all()
        for dns in self.dns.values():
            dns.stop()
        self.dns.clear()

    def leftovers(self) -> list[str]:
        """After `close`: every process it started that still runs, or port still open on a pod address."""
        found = []
        for process in self.stopped:
            if process.alive():
                found.append(f"{process.container.id} still runs")
            for flag, port in process.ports.items():
                with socket.socket() as probe:
                    probe.settimeout(1)
                    if probe.connect_ex((process.ip, port)) == 0:
                        found.append(f"{process.container.id}: {process.ip}:{port} ({flag}) still open")
        return found

    def connections(self) -> set[tuple[str, str, int]]:
        """What the running processes dial now: (client container id, server container id, server port) for every
        established connection from one started pod to a planned port of another (a pod's containers talk over
        localhost: not a flow)."""
        processes = [p for p in self.sandbox.processes if p.alive()]
        listeners = {(p.ip, port): p for p in processes for port in {*p.container.ports.values(), *p.ports.values()}}
        sockets = established()
        found = set()
        for process in processes:
            for inode in socket_inodes(process.popen.pid) & sockets.keys():
                _, remote = sockets[inode]
                server = listeners.get(remote)
                if server is not None and server.ip != process.ip:
                    found.add((process.container.id, server.container.id, remote[1]))
        return found

    def cluster_dns(self, cluster: str) -> ClusterDNS:
        """The DNS of the Kubernetes cluster a planned cluster is on."""
        group = self.kubernetes[cluster]
        with self._lock:
            if group not in self.dns:
                services = [o for c, o in self.objects if self.kubernetes[c] == group and o["kind"] == "Service"]
                dns = ClusterDNS(f"127.{self.block}.{10 * self.clusters.index(group)}.1", services)
                dns.start()
                self.dns[group] = dns
            return self.dns[group]

    def pod_ip(self, container: PlannedContainer) -> str:
        """The pod's loopback address (its containers share it)."""
        group = self.kubernetes[container.cluster]
        key = (group, container.namespace, container.pod)
        with self._lock:
            if key not in self.pod_ips:
                n = sum(1 for g, _, _ in self.pod_ips if g == group)
                self.pod_ips[key] = f"127.{self.block}.{10 * self.clusters.index(group) + n // 200}.{n % 200 + 10}"
            return self.pod_ips[key]

    def register(self, container: PlannedContainer) -> str:
        """Give the container's pod its address and its DNS records (as the API server does when it creates the
        pod, before any container runs); return the address."""
        dns = self.cluster_dns(container.cluster)
        ip = self.pod_ip(container)
        existing = next((p for p in dns.pods if (p.namespace, p.name) == (container.namespace, container.pod)), None)
        ports = {**(existing.ports if existing else {}), **container.ports}  # the pod's ports: all its containers'
        dns.add_pod(Pod(container.pod, container.namespace, ip, container.labels, ports, container.subdomain))
        return ip

    def start(self, container: PlannedContainer) -> Process:
        """Prepare the container's root, point its buckets at FILESYSTEM folders (unless told not to), bind its
        listeners to the pod's address, register the pod in its cluster's DNS, and start it."""
        repository = image_repository(container.image)
        if repository not in BINARIES:
            raise LookupError(f"{container.id}: no real binary stands for {container.image} here")
        binary = tool(BINARIES[repository])
        dns = self.cluster_dns(container.cluster)
        ip = self.pod_ip(container)
        search = f"{container.namespace}.svc.cluster.local svc.cluster.local cluster.local"
        self.sandbox.prepare(container, hosts=f"{ip} localhost {container.pod}\n",
                             resolv=f"nameserver {dns.address}\nsearch {search}\noptions ndots:5 timeout:1 attempts:2\n")
        for path in loopback.objstore_files(container.args) if self.filesystem_buckets else []:
            host_file = self.sandbox.volume_file(container, path)
            name, text = loopback.filesystem_config(host_file.read_text())
            host_file.write_text(text)
            (self.sandbox.buckets / name).mkdir(exist_ok=True)
            (self.sandbox.buckets / name).chmod(0o777)
        args = [a.replace(POD_IP_VARIABLE, ip) for a in container.args]
        env = {k: v.replace(POD_IP_VARIABLE, ip) for k, v in container.env.items()}
        ports: dict[str, int] = {}
        if container.is_thanos:
            defaults = loopback.thanos_listeners(str(binary), tuple(loopback.subcommand(args)))
            args, ports = loopback.bind_listeners(args, defaults, ip)
        elif repository in loopback.DEFAULT_LISTENERS:
            args, ports = loopback.bind_listeners(args, loopback.DEFAULT_LISTENERS[repository], ip)
        elif BINARIES[repository] == "memcached":
            args = loopback.bind_memcached(args, ip)
        elif BINARIES[repository] == "minio":
            args, ports = loopback.bind_minio(args, ip)
        args = loopback.own_address(args, ip)
        self.register(container)
        return self.sandbox.start(container, binary, args, env, ip, ports)
