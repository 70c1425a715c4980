"""The entry point's processes run for real on loopback: oauth2-proxy and the tenant gate (Caddy), each the real
binary at the release the plan pins; and the stand-ins they talk to: an OIDC identity provider and recording
upstreams (no identity provider runs here)."""

import http.server
import os
import secrets
import subprocess
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import Any

from .build import tool
from .kubernetes import free_port, wait_until
from .loopback import oauth2_proxy_on_loopback

QUERY = "/api/v1/query?query=up"


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


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def recording_upstream(name: str):
    """A stand-in upstream (the query-frontend, the global query, Grafana) that answers 200 with its `name` and
    records, per request, the path and the tenant and group header lines it received."""
    seen: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append({"path": self.path, "tenant": self.headers.get_all("THANOS-TENANT"),
                         "groups": self.headers.get_all("X-Forwarded-Groups")})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(name.encode())

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
def oauth2_proxy(args: list[str], upstream_address: str, idp: str | None = None):
    """The real binary on loopback with `args` (rewritten by the harness; the identity provider at `idp`, default
    nowhere), stopped after; yields its base URL."""
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "OAUTH2_PROXY_CLIENT_SECRET": "test-client-secret",
           "OAUTH2_PROXY_COOKIE_SECRET": secrets.token_hex(16)}
    process = subprocess.Popen([str(tool("oauth2-proxy")), *oauth2_proxy_on_loopback(
        args, address, upstream_address, idp or f"127.0.0.1:{free_port()}")], env=env, stdout=subprocess.PIPE,
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
        _stop(process)


@contextmanager
def identity_provider(client_id: str):
    """A stand-in OIDC provider: the token endpoint redeems any code for `state["user"]@acme.example.com` (alice by
    default; RS256 ID token with a `groups` claim when `state["groups"]` is set, a refresh token) and refreshes until
    `revoked` is set, then answers invalid_grant; the keys endpoint serves the JWKS. Yields (address, state): state
    counts the refresh grants and holds `revoked`, `user` and `groups` (change them before the next sign-in)."""
    import base64
    import json
    import time
    import urllib.parse

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    def integer(value: int) -> str:
        return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    state: dict[str, Any] = {"refreshes": 0, "revoked": False, "user": "alice", "groups": []}
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"

    def id_token() -> str:
        now = int(time.time())
        user, groups = state["user"], state["groups"]
        claims = {"iss": issuer, "aud": client_id, "sub": user, "email": f"{user}@acme.example.com",
                  "email_verified": True, "iat": now, "exp": now + 3600, **({"groups": list(groups)} if groups else {})}
        signing = ".".join(b64(json.dumps(part).encode()) for part in ({"alg": "RS256", "kid": "k1", "typ": "JWT"}, claims))
        return f"{signing}.{b64(key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256()))}"

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self, code: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            self.answer(200, {"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
                                        "n": integer(numbers.n), "e": integer(numbers.e)}]})

        def do_POST(self):  # noqa: N802
            form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            if form["grant_type"] == ["refresh_token"]:
                state["refreshes"] += 1
                if state["revoked"]:
                    return self.answer(400, {"error": "invalid_grant", "error_description": "account disabled"})
            self.answer(200, {"access_token": secrets.token_hex(8), "token_type": "Bearer", "expires_in": 3600,
                              "refresh_token": secrets.token_hex(8), "id_token": id_token()})

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{port}", state
    finally:
        server.shutdown()
        server.server_close()


def request(base: str, path: str, cookies: dict[str, str],
            extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], list[str]]:
    """GET without following redirects, with `extra` headers: (status, headers, Set-Cookie values); cookies are sent
    whatever their Secure flag (the test speaks plain HTTP on loopback)."""
    import http.client
    import urllib.parse

    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
        headers.update(extra or {})
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, dict(response.getheaders()), response.msg.get_all("Set-Cookie") or []
    finally:
        connection.close()


def sign_in(base: str) -> tuple[dict[str, str], list[str]]:
    """The provider's current user's sign-in through the real proxy: the redirect to the provider, then its
    callback with a code. Returns the session cookies and the callback's Set-Cookie values."""
    import urllib.parse

    cookies: dict[str, str] = {}

    def keep(set_cookies: list[str]):
        for value in set_cookies:
            name, _, rest = value.partition("=")
            cookies[name] = rest.split(";", 1)[0]

    code, headers, set_cookies = request(base, QUERY, {})
    assert code == 302, code
    keep(set_cookies)
    login = urllib.parse.parse_qs(urllib.parse.urlsplit(headers["Location"]).query)
    callback = "/oauth2/callback?" + urllib.parse.urlencode({"code": "a-code", "state": login["state"][0]})
    code, headers, set_cookies = request(base, callback, cookies)
    assert code == 302 and any(v.startswith("_oauth2_proxy=") for v in set_cookies), (code, set_cookies)
    keep(set_cookies)
    return {k: v for k, v in cookies.items() if k.startswith("_oauth2_proxy") and "csrf" not in k}, set_cookies




@contextmanager
def caddy(config: str, dials: dict[str, str]):
    """The real Caddy with a planned JSON config, watching its file as planned: its listener on a free loopback port,
    each planned upstream address (`host:port`) dialled at `dials[address]`. Yields (base URL, rewrite): `rewrite(text)`
    writes another planned config to the file, with the same changes. Stopped after."""
    import json
    import tempfile

    address = f"127.0.0.1:{free_port()}"

    def on_loopback(text: str) -> str:
        parsed = json.loads(text)
        for server in parsed["apps"]["http"]["servers"].values():
            server["listen"] = [address]
        text = json.dumps(parsed)
        for planned, actual in dials.items():
            text = text.replace(json.dumps(planned), json.dumps(actual))
        return text

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "caddy.json")

        def rewrite(text: str) -> None:
            with open(path + ".new", "w") as file:
                file.write(on_loopback(text))
            os.replace(path + ".new", path)  # whole, as the kubelet swaps a Secret volume's files

        rewrite(config)
        env = {**os.environ, "XDG_DATA_HOME": folder, "XDG_CONFIG_HOME": folder}
        process = subprocess.Popen([str(tool("caddy")), "run", "--config", path, "--watch"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            base = f"http://{address}"

            def up() -> bool:
                try:
                    return status(f"{base}/-/ready")[0] == 200
                except OSError:
                    return process.poll() is not None
            assert wait_until(up, 30) and process.poll() is None, process.communicate(timeout=5)[0]
            yield base, rewrite
        finally:
            _stop(process)
