"""The real oauth2-proxy (built from its Go module at the release the plan pins) with the entry point's planned
args: no request reaches the global query-frontend without a login, whatever X-Forwarded-Uri it claims
(GHSA-7x63-xv5r-3p2x), and health checks get oauth2-proxy's own /ping."""

import http.server
import os
import secrets
import subprocess
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest

from tests.realtools.build import tool
from tests.realtools.kubernetes import free_port, wait_until
from tests.realtools.loopback import oauth2_proxy_on_loopback


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def status(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


@contextmanager
def upstream():
    """A stand-in for the query-frontend and Grafana: answers 200 and records every path it is asked for."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"upstream reached")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def oauth2_proxy(args: list[str], upstream_address: str):
    """The real binary on loopback with `args` (rewritten by the harness), stopped after; yields its base URL."""
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "OAUTH2_PROXY_CLIENT_SECRET": "test-client-secret",
           "OAUTH2_PROXY_COOKIE_SECRET": secrets.token_hex(16)}
    process = subprocess.Popen([str(tool("oauth2-proxy")), *oauth2_proxy_on_loopback(
        args, address, upstream_address, f"127.0.0.1:{free_port()}")], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://{address}"

        def up() -> bool:
            try:
                return status(f"{base}/ping")[0] == 200
            except OSError:
                return process.poll() is not None
        assert wait_until(up, 30) and process.poll() is None, process.communicate(timeout=5)[0]
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def planned_args(planned):
    proxy = next(r for r in planned["prod"].plan["resources"] if r["type"] == "kubernetes:apps/v1:Deployment"
                 and r["inputs"]["metadata"]["name"] == "thanos-oauth2-proxy" and "chicago" in r["provider"])
    container = proxy["inputs"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(":v7.15.6")
    return container["args"]


TRICK = {"X-Forwarded-Uri": "/-/ready"}
QUERY = "/api/v1/query?query=up"


def test_the_planned_proxy_lets_no_request_through_without_a_login(planned_args):
    with upstream() as (address, seen), oauth2_proxy(planned_args, address) as base:
        assert status(f"{base}{QUERY}")[0] == 302  # to the IdP
        assert status(f"{base}{QUERY}", TRICK)[0] == 302
        assert status(f"{base}/-/ready")[0] == 302
        assert status(f"{base}/ping") == (200, "OK")
        assert seen == []


def test_the_old_skip_auth_route_let_the_header_trick_through(planned_args):
    # What the plan shipped before (and what this release still allows): the trick reaches the query-frontend.
    with upstream() as (address, seen), oauth2_proxy([*planned_args, "--skip-auth-route=GET=^/-/ready$"], address) \
            as base:
        assert status(f"{base}{QUERY}")[0] == 302
        assert status(f"{base}{QUERY}", TRICK) == (200, "upstream reached")
        assert seen == [QUERY]
