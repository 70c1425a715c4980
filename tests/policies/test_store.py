"""Store gateway rules (policies/thanos_policies/store.py): memory and request limits, shards that cover every block."""

import copy

from ..support.policies import STS, check, check_stack, container, set_flag, workload


def test_store_limits(prod):
    store = workload(prod, "thanos-store")["inputs"]
    assert check("thanos-store-limits", STS, store) == []
    set_flag(store, "thanos-store", "store.limits.request-series", None)
    del container(store, "thanos-store")["resources"]["limits"]["memory"]
    assert check("thanos-store-limits", STS, store) == [
        "the store gateway has no memory limit (config: thanos.store.resources).",
        "the store gateway sets no --store.limits.request-series: one wide query can OOM every replica "
        "(config: thanos.store.series-limit)."]


def store_stack(spec_raw):
    from components.platform.kube import ClusterContext
    from components.thanos import store as store_module
    from config.thanos import CachesSpec, StoreSpec

    ctx = ClusterContext(cluster="c", region="r", namespace="thanos", image="quay.io/thanos/thanos:v0.42.4")
    objects = store_module.build_store(ctx, StoreSpec.model_validate(spec_raw), CachesSpec())
    return [{"type": STS, "provider": "urn:k8s-c", "inputs": o} for o in objects if o["kind"] == "StatefulSet"]


def test_store_shards_cover():
    sharded = store_stack({"shards": 3, "time-partitions": [{"max-time": "2w"}, {"min-time": "3w"}]})
    assert check_stack("thanos-store-shards-cover", sharded) == []
    assert check_stack("thanos-store-shards-cover", sharded[1:]) == [
        "no store serves hash shard(s) [0] of 3: those blocks are invisible (config: thanos.store.shards)."]
    gap = copy.deepcopy(sharded)
    for s in gap[3:]:
        c = s["inputs"]["spec"]["template"]["spec"]["containers"][0]
        c["args"] = [a.replace("--min-time=-3w", "--min-time=-1w") for a in c["args"]]
    assert check_stack("thanos-store-shards-cover", gap) == [
        "store time partitions leave a gap between them: blocks in it are served by no store "
        "(config: thanos.store.time-partitions)."]


def test_store_shards_need_one_modulus_and_time_partitions_cover_both_ends():
    sharded = store_stack({"shards": 2})
    assert check_stack("thanos-store-shards-cover", sharded) == []
    odd = copy.deepcopy(sharded)
    c = odd[1]["inputs"]["spec"]["template"]["spec"]["containers"][0]
    c["args"] = [a.replace('"modulus":2', '"modulus":3') for a in c["args"]]
    assert any('"modulus":3' in a for a in c["args"])
    assert check_stack("thanos-store-shards-cover", odd) == [
        "store shards of one time range use different hashmod moduli [2, 3]."]
    parts = store_stack({"time-partitions": [{"max-time": "2w"}, {"min-time": "3w"}]})
    assert check_stack("thanos-store-shards-cover", parts) == []
    assert check_stack("thanos-store-shards-cover", parts[1:]) == [
        "no store serves blocks older than the oldest --min-time (config: thanos.store.time-partitions)."]
    assert check_stack("thanos-store-shards-cover", parts[:1]) == [
        "no store serves the newest blocks (every store has a --max-time) (config: thanos.store.time-partitions)."]
