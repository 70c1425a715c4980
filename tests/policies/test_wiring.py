"""Wiring rules (policies/thanos_policies/wiring.py): dialled Services exist, store caches resolve, copies go elsewhere."""

import copy
import json

import yaml

from ..support.policies import (DEPLOYMENT, OBJSTORE_ENV, _config_map, _mounting, _service, check_stack, chicago,
                                container, named, thanos_workload)


def test_wiring_references_find_placeholders_missing_services_and_self_copies():
    from thanos_policies._addresses import service_of

    assert [service_of(a) for a in ("dnssrv+_grpc._tcp.thanos-store.thanos.svc.cluster.local",
                                     "thanos-receive-0.thanos-receive.obs.svc.cluster.local:10901",
                                     "http://thanos-query.thanos.svc:9090", "memcached:11211")] == [
        ("thanos", "thanos-store"), ("obs", "thanos-receive"), ("thanos", "thanos-query"), None]
    query = {"type": DEPLOYMENT, "provider": "urn:k8s", "inputs": {"metadata": {"name": "q", "namespace": "t"}, "spec": {
        "template": {"spec": {"containers": [{"image": "quay.io/thanos/thanos:v0.42.4", "args": [
            "query", "--endpoint=dnssrv+_grpc._tcp.thanos-store.t.svc", "--endpoint=<STORE_ADDRESS>:10901"]}]}}}}}
    store = {"type": "kubernetes:core/v1:Service", "provider": "urn:k8s",
             "inputs": {"metadata": {"name": "thanos-store", "namespace": "t"}}}
    assert check_stack("thanos-wiring-references", [query, store]) == [
        "q: thanos query dials <STORE_ADDRESS>:10901, an unfilled placeholder."]
    renamed = copy.deepcopy(store)
    renamed["inputs"]["metadata"]["name"] = "thanos-store-0"
    assert check_stack("thanos-wiring-references", [query, renamed])[0] == (
        "q: thanos query dials dnssrv+_grpc._tcp.thanos-store.t.svc, but the stack declares no Service thanos-store "
        "in namespace t.")
    assert len(check_stack("thanos-wiring-references", [query])) == 1  # no Service visible in t: not judged


def test_a_store_gateway_whose_memcached_addresses_resolve_only_to_ready_pods_is_refused(prod):
    """The memcached client exits at start when no address resolves; SRV or A records of a headless Service list only
    ready pods. A ClusterIP Service's name always resolves, and so does a name outside the cluster."""
    policy = "thanos-wiring-store-cache-resolves"
    resources = chicago(prod, "thanos")
    assert check_stack(policy, resources) == []  # one ClusterIP Service per memcached pod
    args = container(named(resources, "StatefulSet", "thanos-store", "thanos")["inputs"], "thanos-store")["args"]
    i = next(i for i, a in enumerate(args) if a.startswith("--index-cache.config="))
    cache = json.loads(args[i].split("=", 1)[1])

    def listing(*addresses: str) -> list[str]:
        args[i] = f"--index-cache.config={json.dumps({**cache, 'config': {**cache['config'], 'addresses': addresses}})}"
        return check_stack(policy, resources)

    srv = "dnssrv+_memcached._tcp.thanos-memcached-index.thanos.svc.cluster.local"
    assert listing(srv) == [
        f"thanos-store: the store gateway's --index-cache.config lists only {srv}: DNS discovery over a headless "
        "Service, which answers nothing while no cache pod is ready (first deploy, a cache rollout or crash), and the "
        "store's memcached client exits at start when no address resolves (`no server address resolved`), so the "
        "store gateway cannot start without a ready cache pod. List addresses that always resolve: one ClusterIP "
        "Service per memcached pod (name-0.namespace.svc:11211)."]
    assert len(listing("dns+thanos-memcached-index-0.thanos-memcached-index.thanos.svc:11211",
                       "dnssrv+_memcached._tcp.memcached.elsewhere.svc")) == 1  # a pod record, an unseen Service
    assert listing(srv, "thanos-memcached-index-0.thanos.svc.cluster.local:11211") == []  # a static name always starts it
    assert listing("dns+thanos-memcached-index-0.thanos.svc.cluster.local:11211") == []  # a ClusterIP Service
    assert listing("dns+acme.cfg.use1.cache.amazonaws.com:11211") == []  # outside the cluster: not judged
    # A caching bucket config from a mounted file, over a Service the stack does not show.
    config = yaml.safe_dump({"type": "MEMCACHED", "config": {"addresses": ["dnssrv+_memcache._tcp.memcached"]}})
    store = _mounting(thanos_workload("StatefulSet", "store", ["store", "--objstore.config=$(OBJSTORE)",
                                                               "--store.caching-bucket.config-file=/etc/cache/bucket.yml"],
                                      env=OBJSTORE_ENV), "cache", "cache", "/etc/cache")
    found = check_stack(policy, [_config_map("cache", "bucket.yml", config), store])
    assert len(found) == 1 and found[0].startswith(
        "store: the store gateway's --store.caching-bucket.config lists only dnssrv+_memcache._tcp.memcached: ")
    assert check_stack(policy, [_config_map("cache", "bucket.yml", config), _service("memcached", "memcached"), store]) == []
