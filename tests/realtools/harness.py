"""The entry point: start planned containers with the real binaries, on a loopback pod network with cluster DNS
that follows readiness, and the faults to put them through (kill, freeze, stop, restart: sandbox.py and `restart`).

Addresses, per harness block B (its own) and Kubernetes cluster index K:
- 127.B.<10K>.1: the cluster's DNS;
- 127.B.<10K + n // 200>.<n % 200 + 10>: the cluster's n-th pod (the last byte 10-209);
- 127.B.<10K + k // 45>.<k % 45 + 210>: the virtual IP of the cluster's k-th ClusterIP Service (the last byte
  210-254, which no pod gets): nothing listens there, so a Service without ready endpoints refuses connections."""

import itertools
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import loopback
from .connections import established, socket_inodes
from .build import tool
from .dns import DOMAIN, ClusterDNS, Pod, headless
from .pods import POD_IP_VARIABLE, PlannedContainer
from .sandbox import Process, Sandbox, image_repository

BINARIES = {"quay.io/thanos/thanos": "thanos", "quay.io/prometheus/prometheus": "prometheus",
            "quay.io/prometheus/alertmanager": "alertmanager", "docker.io/library/memcached": "memcached",
            "quay.io/minio/minio": "minio", "docker.io/library/python": "python",
            "quay.io/prometheus/node-exporter": "node-exporter", "quay.io/minio/mc": "mc",
            "quay.io/prometheus/blackbox-exporter": "blackbox-exporter", "docker.io/library/caddy": "caddy"}
"""Image repository -> the tool that stands for it (python: this interpreter's own installation)."""
PROBE_SECONDS = 1.0
"""How often the prober checks every pod's readiness."""
_OPENED = itertools.count()
"""Harnesses made in this process so far."""


class Harness:
    """Starts planned containers of one plan under `workdir` and stops them all (and its DNS servers) on `close`.

    Every pod gets an address 127.<B>.<C>.<D>, where B is this harness' own (so concurrent test processes never
    share an address) and C its Kubernetes cluster; each Kubernetes cluster's DNS listens on 127.<B>.<C>.1 and
    answers for every planned cluster on it (`kubernetes`: planned cluster -> Kubernetes cluster; default one each).
    From the first DNS server on, a prober marks each pod ready or not every second, as the kubelet's readiness
    probes and the endpoints controller would, and DNS answers follow (dns.py)."""

    def __init__(self, workdir: Path, objects: list[tuple[str, dict[str, Any]]], *, filesystem_buckets: bool = True,
                 kubernetes: dict[str, str] | None = None):
        self.sandbox = Sandbox(workdir / "pods", workdir / "buckets")
        self.crashes: list[str] = []
        """Containers that exited before ready and were started again (`until_ready`)."""
        self.filesystem_buckets = filesystem_buckets
        """Point bucket configs at FILESYSTEM folders (for clouds); off, they stay as planned (dev's S3 servers)."""
        self.objects = objects
        self.kubernetes = {c: (kubernetes or {}).get(c, c) for c, _ in objects}
        self.clusters = sorted(set(self.kubernetes.values()))
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        # Another harness of the same process (beside the dev stack's) gets other addresses.
        self.block = 20 + 100 * (int(worker.removeprefix("gw") or 0) % 2) + (os.getpid() + 37 * next(_OPENED)) % 100
        self.dns: dict[str, ClusterDNS] = {}
        self.pod_ips: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()
        self.stopped: list[Process] = []
        """What `close` stopped (for `leftovers`)."""
        self._closing = threading.Event()
        self._prober: threading.Thread | None = None

    def __enter__(self) -> "Harness":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the prober, every process and every DNS server."""
        self._closing.set()
        if self._prober:
            self._prober.join(30)
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
                base = 10 * self.clusters.index(group)
                clusterip = [s for s in services if not headless(s)]
                virtual_ips = {(s["metadata"]["namespace"], s["metadata"]["name"]):
                               f"127.{self.block}.{base + k // 45}.{k % 45 + 210}" for k, s in enumerate(clusterip)}
                dns = ClusterDNS(f"127.{self.block}.{base}.1", services, virtual_ips)
                dns.start()
                self.dns[group] = dns
                if self._prober is None:
                    self._prober = threading.Thread(target=self._probe_forever, daemon=True)
                    self._prober.start()
            return self.dns[group]

    def _probe_forever(self) -> None:
        """Probe every pod each PROBE_SECONDS until `close`."""
        with ThreadPoolExecutor(8) as pool:
            while not self._closing.wait(PROBE_SECONDS):
                self.probe(pool)

    def probe(self, pool: ThreadPoolExecutor | None = None) -> None:
        """One round: each registered pod is ready when it runs a long-running (not init, not Job) container and every
        one started in it is alive and passes its readiness check (a restarted container counts by its newest
        process)."""
        newest: dict[str, Process] = {}
        for process in list(self.sandbox.processes):
            if not process.container.runs_to_completion:
                newest[process.container.id] = process
        per_pod: dict[tuple[str, str, str], list[Process]] = {}
        for process in newest.values():
            c = process.container
            per_pod.setdefault((self.kubernetes[c.cluster], c.namespace, c.pod), []).append(process)
        pods = [(dns, pod, per_pod.get((group, pod.namespace, pod.name), []))
                for group, dns in list(self.dns.items()) for pod in dns.registered()]

        def check(item) -> None:
            dns, pod, processes = item
            dns.set_ready(pod.namespace, pod.name, bool(processes) and all(p.ready() for p in processes))

        list((pool.map if pool else map)(check, pods))

    def _answers(self, target: PlannedContainer | Process) -> list[bool]:
        """For each Service selecting the target's pod: whether its name answers the pod's address now."""
        container = target.container if isinstance(target, Process) else target
        dns = self.cluster_dns(container.cluster)
        pod = next((p for p in dns.registered() if (p.namespace, p.name) == (container.namespace, container.pod)),
                   None)
        if pod is None:
            return []
        answers = []
        for service in dns.services:
            if any((p.namespace, p.name) == (pod.namespace, pod.name) for p in dns.selected(service)):
                records, _ = dns.lookup(f"{service['metadata']['name']}.{pod.namespace}.{DOMAIN}", "A")
                answers.append(pod.ip in {str(r) for r in records})
        return answers

    def wait_published(self, target: PlannedContainer | Process, timeout: float = 30) -> bool:
        """Wait until every Service selecting the pod answers its address (False after `timeout` s, or at once when
        no Service selects it)."""
        deadline = time.monotonic() + timeout
        while True:
            answers = self._answers(target)
            if answers and all(answers):
                return True
            if not answers or time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def wait_unpublished(self, target: PlannedContainer | Process, timeout: float = 30) -> bool:
        """Wait until no Service answers the pod's address any more (False after `timeout` s)."""
        deadline = time.monotonic() + timeout
        while any(self._answers(target)):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

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
        """Give the container's pod its address and register it in its cluster's DNS (as the API server does when it
        creates the pod, before any container runs; its Services publish it once it is ready); return the address."""
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
        elif BINARIES[repository] == "caddy":
            config = self.sandbox.volume_file(container, args[args.index("--config") + 1])
            text, ports = loopback.bind_caddy(config.read_text(), ip)
            config.write_text(text)
        args = loopback.own_address(args, ip)
        self.register(container)
        return self.sandbox.start(container, binary, args, env, ip, ports)

    def restart(self, process: Process) -> Process:
        """Start a container again in its pod once its process is gone (stopped first if it runs): the same address,
        claims and emptyDirs (kept under the sandbox's claims/), files and rewritten args. Returns the new process;
        the old one stays in the records, stopped."""
        if process.alive():
            process.stop()
        self.register(process.container)
        return self.sandbox.start(process.container, process.binary, process.args, process.env, process.ip,
                                  process.ports)

    def until_ready(self, process: Process, timeout: float, restarts: int = 3) -> Process:
        """Wait until the process is ready; when it exits first, start it again as the kubelet does for a pod whose
        restartPolicy is Always, at most `restarts` times. Thanos v0.42.4 receive can panic at start when its prune
        job runs before a tenant's TSDB is open (thanos-io/thanos#8990, fixed after v0.42.4); in a cluster that is a
        container restart. Returns the ready process; every crash stays in `crashes` (its last output)."""
        for _ in range(restarts + 1):
            state = process.wait_ready(timeout)
            if state != "exited":
                assert state == "ready", f"{process.container.id} is not ready after {timeout} s: {process.output()}"
                return process
            self.crashes.append(f"{process.container.id}: {process.output(4000)}")
            process = self.restart(process)
        raise AssertionError(f"{process.container.id} exited {restarts + 1} times before ready: {self.crashes[-1]}")
