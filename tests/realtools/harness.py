"""The entry point: start planned containers with the real binaries, on a loopback pod network with cluster DNS."""

import os
import threading
from pathlib import Path
from typing import Any

from . import loopback
from .build import tool
from .dns import ClusterDNS, Pod
from .pods import POD_IP_VARIABLE, PlannedContainer
from .sandbox import Process, Sandbox, image_repository

BINARIES = {"quay.io/thanos/thanos": "thanos", "quay.io/prometheus/prometheus": "prometheus",
            "quay.io/prometheus/alertmanager": "alertmanager", "docker.io/library/memcached": "memcached"}
"""Image repository -> the tool that stands for it."""


class Harness:
    """Starts planned containers of one plan under `workdir` and stops them all (and its DNS servers) on `close`.

    Every pod gets an address 127.<B>.<C>.<D>, where B is this harness' own (so concurrent test processes never
    share an address) and C the cluster; each cluster's DNS listens on 127.<B>.<C>.1."""

    def __init__(self, workdir: Path, objects: list[tuple[str, dict[str, Any]]]):
        self.sandbox = Sandbox(workdir / "pods", workdir / "buckets")
        self.objects = objects
        self.clusters = sorted({cluster for cluster, _ in objects})
        self.block = 20 + os.getpid() % 200
        self.dns: dict[str, ClusterDNS] = {}
        self.pod_ips: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()
        self.planned_buckets: dict[str, str] = {}
        """bucket name -> the planned config text it stands for."""

    def __enter__(self) -> "Harness":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        self.sandbox.stop_all()
        for dns in self.dns.values():
            dns.stop()
        self.dns.clear()

    def cluster_dns(self, cluster: str) -> ClusterDNS:
        with self._lock:
            if cluster not in self.dns:
                services = [o for c, o in self.objects if c == cluster and o["kind"] == "Service"]
                dns = ClusterDNS(f"127.{self.block}.{10 * self.clusters.index(cluster)}.1", services)
                dns.start()
                self.dns[cluster] = dns
            return self.dns[cluster]

    def pod_ip(self, container: PlannedContainer) -> str:
        """The pod's loopback address (its containers share it)."""
        key = (container.cluster, container.namespace, container.pod)
        with self._lock:
            if key not in self.pod_ips:
                n = sum(1 for c, _, _ in self.pod_ips if c == container.cluster)
                self.pod_ips[key] = f"127.{self.block}.{10 * self.clusters.index(container.cluster) + n // 200}.{n % 200 + 10}"
            return self.pod_ips[key]

    def start(self, container: PlannedContainer) -> Process:
        """Prepare the container's root, point its buckets at FILESYSTEM folders, bind its listeners to the pod's
        address, register the pod in its cluster's DNS, and start it."""
        repository = image_repository(container.image)
        if repository not in BINARIES:
            raise LookupError(f"{container.id}: no real binary stands for {container.image} here")
        binary = tool(BINARIES[repository])
        dns = self.cluster_dns(container.cluster)
        ip = self.pod_ip(container)
        search = f"{container.namespace}.svc.cluster.local svc.cluster.local cluster.local"
        self.sandbox.prepare(container, hosts=f"{ip} localhost {container.pod}\n",
                             resolv=f"nameserver {dns.address}\nsearch {search}\noptions ndots:5 timeout:1 attempts:2\n")
        for path in loopback.objstore_files(container.args):
            host_file = self.sandbox.volume_file(container, path)
            original = host_file.read_text()
            name, text = loopback.filesystem_config(original)
            self.planned_buckets.setdefault(name, original)
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
        args = loopback.own_address(args, ip)
        container_ports = {p["name"]: p["containerPort"] for p in container.container.get("ports") or [] if p.get("name")}
        subdomain = None
        if container.kind == "StatefulSet":
            workload = next(o for c, o in self.objects if c == container.cluster and o["kind"] == "StatefulSet"
                            and o["metadata"]["name"] == container.workload
                            and o["metadata"]["namespace"] == container.namespace)
            subdomain = workload["spec"].get("serviceName")
        existing = next((p for p in dns.pods if (p.namespace, p.name) == (container.namespace, container.pod)), None)
        merged = {**(existing.ports if existing else {}), **container_ports}
        dns.add_pod(Pod(container.pod, container.namespace, ip, container.labels, merged, subdomain))
        return self.sandbox.start(container, binary, args, env, ip, ports)
