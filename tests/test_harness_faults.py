"""The real-tool harness' faults and its readiness-following cluster DNS, with the real binaries of dev's planned
containers (a memcached, a Thanos query, a Prometheus), each test in a harness of its own. DNS is asked over UDP,
as a pod asks it."""

import socket
import time
import urllib.request

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from tests.realtools import Harness
from tests.realtools.dns import DOMAIN
from tests.realtools.plan import kubernetes_objects
from tests.realtools.pods import planned_containers

pytestmark = pytest.mark.xdist_group("harness-faults")  # one worker plans dev once for the module

CLUSTER, NAMESPACE = "chicago", "thanos-chicago"


@pytest.fixture(scope="module")
def objects():
    """dev's Kubernetes objects, planned once."""
    return kubernetes_objects("dev")


def planned(objects, workload: str, name: str):
    """The planned container `name` of chicago's `workload`."""
    return next(c for c in planned_containers("dev", objects)
                if (c.cluster, c.namespace, c.workload, c.name) == (CLUSTER, NAMESPACE, workload, name))


def services_of(objects, container) -> list[dict]:
    """The planned Services that select the container's pod."""
    return [o for c, o in objects if c == container.cluster and o["kind"] == "Service"
            and o["metadata"]["namespace"] == container.namespace and (o["spec"].get("selector") or {})
            and all(container.labels.get(k) == v for k, v in o["spec"]["selector"].items())]


def service_name(service: dict) -> str:
    return f"{service['metadata']['name']}.{service['metadata']['namespace']}.{DOMAIN}"


def resolve(harness: Harness, name: str, qtype: str = "A") -> tuple[str, list[str]]:
    """(rcode, answers) of one question to chicago's DNS."""
    reply = DNSRecord.parse(DNSRecord.question(name, qtype).send(harness.cluster_dns(CLUSTER).address, 53, timeout=3))
    return RCODE[reply.header.rcode], [str(rr.rdata) for rr in reply.rr if rr.rtype == getattr(QTYPE, qtype)]


def refused(address: str, port: int) -> bool:
    """A TCP connect to address:port is refused."""
    with socket.socket() as probe:
        probe.settimeout(3)
        return probe.connect_ex((address, port)) == 111  # ECONNREFUSED


def http_status(url: str, timeout: float = 2) -> int | str:
    """The status of a GET, or the error's name."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except OSError as error:
        return type(getattr(error, "reason", error)).__name__


def test_a_killed_pod_leaves_every_service_answer_within_two_seconds(objects, tmp_path):
    memcached = planned(objects, "thanos-memcached-index", "memcached")
    services = services_of(objects, memcached)
    assert services
    with Harness(tmp_path, objects) as harness:
        process = harness.start(memcached)
        assert harness.wait_published(process, 10), process.output()
        for service in services:
            assert resolve(harness, service_name(service)) == ("NOERROR", [process.ip])
        process.kill()
        assert not process.alive()
        killed = time.monotonic()
        assert harness.wait_unpublished(process, 5)
        assert time.monotonic() - killed < 2.5
        for service in services:
            rcode, addresses = resolve(harness, service_name(service))
            if service["spec"].get("clusterIP") == "None":
                assert (rcode, addresses) == ("NXDOMAIN", []), service_name(service)
            else:  # its virtual IP, which refuses
                assert rcode == "NOERROR" and len(addresses) == 1 and addresses != [process.ip], addresses
                assert refused(addresses[0], memcached.ports["memcached"])
    assert not harness.leftovers(), harness.leftovers()


def test_a_frozen_pod_stops_answering_and_is_unpublished_until_thawed(objects, tmp_path):
    query = planned(objects, "thanos-query-pods", "thanos-query")
    with Harness(tmp_path, objects) as harness:
        process = harness.start(query)
        assert process.wait_ready(30) == "ready", process.output()
        assert harness.wait_published(process, 5)
        process.freeze()
        assert process.alive()
        assert http_status(process.url("/-/ready")) == "TimeoutError"  # it accepts, and never answers
        assert harness.wait_unpublished(process, 5)
        process.thaw()
        assert http_status(process.url("/-/ready")) == 200
        assert harness.wait_published(process, 5)
    assert not harness.leftovers(), harness.leftovers()


def test_a_restarted_container_keeps_its_address_and_its_claim(objects, tmp_path):
    prometheus = planned(objects, "thanos-prometheus", "prometheus")
    data = next(a.split("=", 1)[1] for a in prometheus.args if a.startswith("--storage.tsdb.path="))
    with Harness(tmp_path, objects) as harness:
        first = harness.start(prometheus)
        assert first.wait_ready(30) == "ready", first.output()
        wal = harness.sandbox.volume_file(prometheus, f"{data}/wal")
        marker = harness.sandbox.volume_file(prometheus, f"{data}/harness-marker")
        marker.write_text("kept")
        first.kill()
        second = harness.restart(first)
        assert (second.ip, second.ports) == (first.ip, first.ports) and second.popen.pid != first.popen.pid
        assert second.wait_ready(30) == "ready", second.output()
        third = harness.restart(second)  # a running one is stopped first
        assert not second.alive() and third.wait_ready(30) == "ready", third.output()
        # Prometheus opens a new WAL segment after the last one it finds: three starts, three segments.
        assert sorted(p.name for p in wal.iterdir()) == ["00000000", "00000001", "00000002"], third.output()
        assert marker.read_text() == "kept"
        assert harness.wait_published(third, 5)
        assert [p.alive() for p in harness.sandbox.processes] == [False, False, True]
    assert not harness.leftovers(), harness.leftovers()


def test_a_clusterip_service_resolves_to_a_refusing_address_without_a_ready_pod(objects, tmp_path):
    query = planned(objects, "thanos-query-pods", "thanos-query")
    service = next(s for s in services_of(objects, query) if s["spec"].get("clusterIP") != "None"
                   and any(p["name"] == "http" for p in s["spec"]["ports"]))
    port = next(p for p in service["spec"]["ports"] if p["name"] == "http")
    name, srv = service_name(service), f"_http._tcp.{service_name(service)}"
    with Harness(tmp_path, objects) as harness:
        rcode, addresses = resolve(harness, name)
        assert rcode == "NOERROR" and len(addresses) == 1, (rcode, addresses)
        vip = addresses[0]
        assert int(vip.rsplit(".", 1)[1]) >= 210  # the reserved range no pod gets
        assert refused(vip, port["port"])
        assert resolve(harness, srv, "SRV") == ("NOERROR", [f"0 100 {port['port']} {name}."])
        process = harness.start(query)
        assert harness.wait_published(process, 30), process.output()
        assert resolve(harness, name) == ("NOERROR", [process.ip])
        assert http_status(f"http://{process.ip}:{port['port']}/-/ready") == 200
        rcode, records = resolve(harness, srv, "SRV")
        assert records == [f"0 100 {query.ports['http']} {process.ip.replace('.', '-')}.{name}."], records
        assert resolve(harness, records[0].split()[-1]) == ("NOERROR", [process.ip])
        process.kill()
        assert harness.wait_unpublished(process, 5)
        assert resolve(harness, name) == ("NOERROR", [vip])
    assert not harness.leftovers(), harness.leftovers()


def test_a_headless_service_publishing_not_ready_addresses_lists_an_unready_pod(objects, tmp_path):
    """A pod that exists and is not ready: the Alertmanagers' Service publishes it (its peers find each other before
    they are ready), Prometheus' does not."""
    alertmanager = planned(objects, "thanos-alertmanager", "alertmanager")
    prometheus = planned(objects, "thanos-prometheus", "prometheus")
    publishing = [s for s in services_of(objects, alertmanager) if s["spec"].get("publishNotReadyAddresses")]
    assert [s["spec"].get("clusterIP") for s in publishing] == ["None"]
    assert not any(s["spec"].get("publishNotReadyAddresses") for s in services_of(objects, prometheus))
    with Harness(tmp_path, objects) as harness:
        ip = harness.register(alertmanager)
        other = harness.register(prometheus)
        time.sleep(2.5)  # two rounds of the prober
        name = service_name(publishing[0])
        assert resolve(harness, name) == ("NOERROR", [ip])
        assert resolve(harness, f"{alertmanager.pod}.{name}") == ("NOERROR", [ip])
        assert resolve(harness, f"_web._tcp.{name}", "SRV") == (
            "NOERROR", [f"0 100 {alertmanager.ports['web']} {alertmanager.pod}.{name}."])
        for service in services_of(objects, prometheus):
            assert resolve(harness, service_name(service)) == ("NXDOMAIN", []), other
    assert not harness.leftovers(), harness.leftovers()
