"""Flag rules (policies/thanos_policies/flags.py): every flag exists in the image's release and is not deprecated."""

from ..support.policies import DEPLOYMENT, check, container, workload


def test_flags_known(prod):
    query = workload(prod, "thanos-query-pods")["inputs"]
    assert check("thanos-flags-known", DEPLOYMENT, query) == []
    container(query, "thanos-query")["args"] += ["--store=dnssrv+_grpc._tcp.x", "--endpoint=x"]
    assert check("thanos-flags-known", DEPLOYMENT, query) == [
        "thanos query has no flag --store in v0.42.4.", "thanos query --endpoint is deprecated in v0.42.4."]


def test_flags_are_judged_by_the_release_the_image_runs():
    def query(image, *args):
        return {"spec": {"template": {"spec": {"containers": [{"image": image, "args": ["query", *args]}]}}}}

    assert check("thanos-flags-known", DEPLOYMENT, query("quay.io/thanos/thanos:v0.30.2", "--endpoint=x",
                                                         "--store=y")) == []
    assert check("thanos-flags-known", DEPLOYMENT, query("quay.io/thanos/thanos:v0.39.1", "--store=y",
                                                         "--endpoint=x", "--store=z")) == [
        "thanos query has no flag --store since v0.38.0 (the image is v0.39.1)."]
    assert check("thanos-flags-known", DEPLOYMENT, query("quay.io/thanos/thanos:v0.42.4", "--endpoint=x")) == [
        "thanos query --endpoint is deprecated in v0.42.4."]
