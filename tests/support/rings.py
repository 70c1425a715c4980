"""A bounded observer of receive hashrings on a real API server: it samples each namespace's hashring ConfigMap and
its pods while `pulumi up` runs, and names every sample where a ring (the ConfigMap's, or the one a ready router
started on, by its pod's ring hash) lists an ingestor that is not ready."""

import threading
import time
from dataclasses import dataclass, field

from components.thanos.receive import HASHRING, HASHRING_ANNOTATION, INGESTOR, ROUTER, ring_hash
from preflight.hashring import RING_KEY, ring_pods
from tests.realtools.kubernetes import Cluster

NAME_LABEL = "app.kubernetes.io/name"


def _ready(pod: dict) -> bool:
    """Ready and not terminating: what a Service's endpoints list."""
    return not pod["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


@dataclass
class Sample:
    """One look at a namespace: the ring, the ingestor pods, and the routers with the ring each started on."""

    at: float
    """Seconds since the observer started."""
    ring: list[str]
    """The pods the ConfigMap's ring lists."""
    ring_hash: str
    """The hash of the ConfigMap's hashrings.json (what routers started on it carry)."""
    present: list[str]
    """Ingestor pods that exist (terminating ones included)."""
    ready: list[str]
    """Ingestor pods ready and not terminating."""
    routers: list[tuple[str, str]]
    """(pod, the hash of the ring it started on) of every router ready and not terminating."""

    def text(self, hashes: dict[str, list[str]]) -> str:
        routers = ", ".join(f"{pod.rsplit('-', 1)[-1]} on {len(hashes.get(h, []))}" for pod, h in self.routers)
        return (f"+{self.at:5.1f} s ring {len(self.ring)} {self.ring}, ingestors ready {len(self.ready)} of "
                f"{len(self.present)}, routers ready [{routers}]")


@dataclass
class RingObserver:
    """Samples `namespaces` through `cluster` every `interval` seconds until stopped (at most `limit` seconds)."""

    cluster: Cluster
    namespaces: tuple[str, ...]
    interval: float = 0.5
    limit: float = 900
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    rings: dict[str, list[str]] = field(default_factory=dict)
    """Ring hash -> its pods, for every ring a ConfigMap held while sampled."""
    violations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()

    def __enter__(self) -> "RingObserver":
        self.sample()  # the rings before anything changes
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(30)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval) and time.monotonic() - self._start < self.limit:
            try:
                self.sample()
            except (OSError, RuntimeError) as error:  # a slow API server: the next sample tries again
                self.violations.append(f"sample failed: {error}")

    def sample(self) -> None:
        """One look at each namespace (the ConfigMap first: a router on a newer ring must find it known)."""
        for namespace in self.namespaces:
            config_map = self.cluster.get(f"/api/v1/namespaces/{namespace}/configmaps/{HASHRING}")
            text = ((config_map or {}).get("data") or {}).get(RING_KEY, "[]")
            ring = ring_pods(text)
            self.rings.setdefault(ring_hash(text), ring)
            pods = self.cluster.items(f"/api/v1/namespaces/{namespace}/pods")
            ingestors = [p for p in pods if p["metadata"].get("labels", {}).get(NAME_LABEL) == INGESTOR]
            routers = [p for p in pods if p["metadata"].get("labels", {}).get(NAME_LABEL) == ROUTER and _ready(p)]
            sample = Sample(round(time.monotonic() - self._start, 1), ring, ring_hash(text),
                            sorted(p["metadata"]["name"] for p in ingestors),
                            sorted(p["metadata"]["name"] for p in ingestors if _ready(p)),
                            [(p["metadata"]["name"], p["metadata"].get("annotations", {}).get(HASHRING_ANNOTATION, ""))
                             for p in routers])
            self.samples.setdefault(namespace, []).append(sample)
            self._judge(namespace, sample)

    def _judge(self, namespace: str, sample: Sample) -> None:
        where = f"{namespace} at +{sample.at} s"
        unready = [p for p in sample.ring if p not in sample.ready]
        if unready:
            self.violations.append(f"{where}: the ring lists {unready}, not ready")
        if not sample.routers:
            self.violations.append(f"{where}: no router ready (writes would stop)")
        for pod, started_on in sample.routers:
            if not started_on:
                continue  # a router without the ring's hash reads whatever the ConfigMap holds (judged above)
            if started_on not in self.rings:
                self.violations.append(f"{where}: router {pod} started on a ring no ConfigMap held yet")
                continue
            unready = [p for p in self.rings[started_on] if p not in sample.ready]
            if unready:
                self.violations.append(f"{where}: router {pod} writes to {unready}, not ready")

    def timeline(self, namespace: str) -> list[str]:
        """The samples of a namespace where something changed, and how many there were."""
        lines, last = [], None
        for sample in self.samples.get(namespace, []):
            text = sample.text(self.rings)
            state = text.split(" s ", 1)[1]
            if state != last:
                lines.append(text)
                last = state
        return lines
