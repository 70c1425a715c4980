"""A tenant's own hashring with the real Thanos: dev planned with team-a on ingestors of its own
(`tenancy.tenants[].dedicated-ingestors: 1`), chicago's planned router, shared ingestor and team-a's ingestor started
from that plan, each tenant writing with its planned client certificate. team-a's samples are appended on team-a's
ingestor only (even when its writer sends `THANOS-TENANT: team-b`), team-b's on the shared ingestor only: the routers
match the first ring naming the tenant, and the default ring takes the rest."""

import copy
import ssl
import time
import urllib.request


from benchmarks.bench_load import Writer, writer_context
from components.thanos import receive
from tests.realtools import Harness
from tests.realtools.devstack import CLUSTERS, READY_SECONDS
from tests.realtools.plan import kubernetes_objects
from tests.realtools.pods import planned_containers
from tests.realtools.remote_write import label_fields, write_request
from tests.realtools.sandbox import Process
from tests.support.stacks import stack_config

CLUSTER = "chicago"
NAMESPACE = CLUSTERS[CLUSTER]
SERIES = {"team-a": 40, "team-b": 25}
"""Series each tenant writes, one sample each per request."""
REQUESTS = 3


def tenant_context(objects, tenant: str, workdir) -> ssl.SSLContext:
    """mTLS as the tenant's planned writer: its client certificate (Subject O = the tenant)."""
    return writer_context(objects, workdir, CLUSTER, NAMESPACE, receive.tenant_client_secret(tenant))


def appended_by_tenant(ingestor: Process) -> dict[str, float]:
    """The samples each tenant's TSDB on the ingestor appended (`prometheus_tsdb_head_samples_appended_total`, one
    series per tenant and sample type)."""
    with urllib.request.urlopen(ingestor.url("/metrics"), timeout=10) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("prometheus_tsdb_head_samples_appended_total{") and 'tenant="' in line:
            tenant = line.split('tenant="', 1)[1].split('"', 1)[0]
            found[tenant] = found.get(tenant, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def test_each_tenant_lands_only_on_its_own_ring(tmp_path, capsys):
    tenants = copy.deepcopy(stack_config("dev")["tenancy"]["tenants"])
    assert [t["name"] for t in tenants] == list(SERIES)
    tenants[0]["dedicated-ingestors"] = 1
    objects = kubernetes_objects("dev", {"tenancy": {"tenants": tenants}})
    containers = [c for c in planned_containers("dev", objects, all_replicas=True)
                  if (c.cluster, c.namespace) == (CLUSTER, NAMESPACE)]
    shared = [c for c in containers if c.workload == receive.INGESTOR]
    own = [c for c in containers if c.workload == f"{receive.INGESTOR}-team-a"]
    routers = [c for c in containers if c.workload == receive.ROUTER]
    assert (len(shared), len(own), len(routers)) == (1, 1, 1), [c.pod for c in containers]

    with Harness(tmp_path, objects) as harness:
        for container in shared + own + routers:
            harness.register(container)
        ingestors = {}
        for container in shared + own:
            process = harness.until_ready(harness.start(container), READY_SECONDS)
            assert harness.wait_published(process, 10), container.pod
            ingestors[container.workload] = process
        router = harness.start(routers[0])
        assert router.wait_ready(READY_SECONDS) == "ready", router.output()

        statuses: dict[str, list[int]] = {}
        for tenant, count in SERIES.items():
            writer = Writer(router.ip, router.ports["--remote-write.address"], tenant_context(objects, tenant, tmp_path))
            fields = [label_fields({"__name__": "harness_ring", "series": str(i)}) for i in range(count)]
            for n in range(REQUESTS):
                statuses.setdefault(tenant, []).append(
                    writer.post(write_request(fields, float(n), int(time.time() * 1000)))[0])
                time.sleep(0.05)
        # team-a's writer naming team-b in the header: its certificate decides, the header is ignored.
        forged = urllib.request.Request(
            f"https://{router.ip}:{router.ports['--remote-write.address']}/api/v1/receive", method="POST",
            data=write_request([label_fields({"__name__": "harness_ring_forged"})], 1.0, int(time.time() * 1000)),
            headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf", "THANOS-TENANT": "team-b",
                     "X-Prometheus-Remote-Write-Version": "0.1.0"})
        with urllib.request.urlopen(forged, context=tenant_context(objects, "team-a", tmp_path), timeout=20) as answer:
            statuses["team-a (THANOS-TENANT: team-b)"] = [answer.status]
        counts = {name: appended_by_tenant(process) for name, process in ingestors.items()}
    assert not harness.leftovers(), harness.leftovers()

    with capsys.disabled():
        print(f"\n[tenant rings] router statuses {statuses}; samples appended per ingestor and tenant: {counts}")
    assert all(status == 200 for codes in statuses.values() for status in codes), statuses
    team_a, shared_counts = counts[f"{receive.INGESTOR}-team-a"], counts[receive.INGESTOR]
    assert team_a.get("team-a") == SERIES["team-a"] * REQUESTS + 1, counts
    assert shared_counts.get("team-b") == SERIES["team-b"] * REQUESTS, counts
    assert "team-b" not in team_a and "team-a" not in shared_counts, counts
