"""The real node-exporter (built from its Go module at the release the plan pins) started from dev's planned
DaemonSet, and the real Prometheus scraping it with the planned job's credentials: on the host network no
NetworkPolicy applies, so :9100 answers only the scrape user."""

import base64
import subprocess
import urllib.error
import urllib.request

import yaml

from tests.realtools import Harness
from tests.realtools.build import tool
from tests.realtools.kubernetes import free_port, wait_until
from tests.realtools.pods import Objects, planned_containers
from tests.realtools.plan import kubernetes_objects

NAMESPACE = "thanos-node-exporter"


def get(url: str, credentials: tuple[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if credentials:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(credentials).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except OSError as err:  # not listening yet
        return 0, str(err)


def test_node_exporter_answers_only_the_planned_scrape_user_and_prometheus_scrapes_it(tmp_path):
    objects = kubernetes_objects("dev")
    chicago = Objects([o for c, o in objects if c == "chicago"])
    scrape_secret = chicago.data("Secret", "thanos-chicago", "thanos-node-exporter-scrape")
    credentials = (scrape_secret["username"].decode(), scrape_secret["password"].decode())
    prometheus_yml = yaml.safe_load(chicago.data("ConfigMap", "thanos-chicago", "thanos-prometheus")["prometheus.yml"])
    job = next(j for j in prometheus_yml["scrape_configs"] if j["job_name"] == "node-exporter")
    assert job["basic_auth"] == {"username": credentials[0], "password_file": "/etc/prometheus/node-exporter/password"}
    # Only the Prometheus of the cluster that runs node-exporter scrapes it (seattle shares the Kubernetes cluster).
    seattle = Objects([o for c, o in objects if c == "seattle"])
    seattle_yml = yaml.safe_load(seattle.data("ConfigMap", "thanos-seattle", "thanos-prometheus")["prometheus.yml"])
    assert "node-exporter" not in {j["job_name"] for j in seattle_yml["scrape_configs"]}

    exporter = next(c for c in planned_containers("dev", objects) if c.namespace == NAMESPACE)
    with Harness(tmp_path, objects) as harness:
        process = harness.start(exporter)
        assert process.wait_ready(30) == "ready", process.output()  # its planned probe: TCP
        url = f"http://{process.ip}:{process.ports['--web.listen-address']}/metrics"
        assert get(url)[0] == 401, process.output()  # no credentials
        assert get(url, (credentials[0], "wrong"))[0] == 401
        assert get(url, ("admin", credentials[1]))[0] == 401
        code, body = get(url, credentials)
        # (The sandbox binds the host's root without its submounts, so the host collectors find no /proc there: the
        # exporter's own metrics show it answered.)
        assert code == 200 and 'node_exporter_build_info{' in body and 'version="1.9.1"' in body, process.output()

        # The real Prometheus, with the planned job's basic_auth and its password file, scrapes it (a static target
        # stands in for the job's Kubernetes discovery, which needs an API server).
        (tmp_path / "password").write_text(credentials[1])
        config = {"global": {"scrape_interval": "1s"}, "scrape_configs": [{
            "job_name": "node-exporter", "static_configs": [{"targets": [url.split("/")[2]]}],
            "basic_auth": {**job["basic_auth"], "password_file": str(tmp_path / "password")}}]}
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        prometheus = subprocess.Popen(
            [str(tool("prometheus")), f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            def up() -> bool:
                code, body = get(f"http://127.0.0.1:{port}/api/v1/query?query=up%7Bjob%3D%22node-exporter%22%7D")
                return code == 200 and '"value":[' in body and body.rstrip("}]").endswith('"1"')
            assert wait_until(up, 30), get(f"http://127.0.0.1:{port}/api/v1/targets")[1]
        finally:
            prometheus.terminate()
            prometheus.wait(20)
