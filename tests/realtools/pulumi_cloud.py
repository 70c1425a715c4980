"""STAND-IN for the Pulumi Cloud REST API (no Pulumi Cloud here): only what `pulumi login`, `pulumi policy publish`
and `pulumi policy ls` call, following the service's behaviour as the CLI's client reads it
(pkg/backend/httpstate/client): a version of a pack is published once, a second publish of it is refused with 409
"already exists", the upload goes to a pre-signed URL, then a `complete` call. On loopback, stopped by its `with`.

    with PulumiCloud() as cloud:                       # http://127.0.0.1:<port>
        env = {"PULUMI_BACKEND_URL": cloud.url, "PULUMI_ACCESS_TOKEN": cloud.token}
        ...                                            # cloud.published: [(org, pack, version)]
"""

import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_CREATE = re.compile(r"^/api/orgs/([^/]+)/policypacks$")
_COMPLETE = re.compile(r"^/api/orgs/([^/]+)/policypacks/([^/]+)/versions/([^/]+)/complete$")
_VERSION = re.compile(r"^/api/orgs/([^/]+)/policypacks/([^/]+)/versions/([^/]+)$")


class PulumiCloud:
    """The stand-in service: its URL, the token it accepts, and what it holds."""

    def __init__(self, login: str = "ci"):
        self.login = login
        self.token = "pul-" + secrets.token_hex(20)
        self.published: list[tuple[str, str, str]] = []
        """(org, pack, version) of every completed publish, in order."""
        self.uploads: dict[str, int] = {}
        """pack@version -> bytes of the uploaded tarball."""
        self.requests: list[tuple[str, str]] = []
        self._pending: dict[tuple[str, str, str], dict] = {}
        self._packs: dict[tuple[str, str, str], dict] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "PulumiCloud":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def versions(self, org: str, pack: str) -> list[str]:
        return [v for o, p, v in self.published if (o, p) == (org, pack)]

    def _handler(self):
        cloud = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, body: dict | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"token {cloud.token}":
                    return True
                self._reply(401, {"code": 401, "message": "Unauthorized: No credentials provided or are invalid."})
                return False

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self):
                with cloud._lock:
                    cloud.requests.append(("GET", self.path))
                path = self.path.split("?", 1)[0]
                if path.startswith("/upload/"):
                    return self._reply(404)
                if not self._authorized():
                    return None
                if path == "/api/user":
                    return self._reply(200, {"githubLogin": cloud.login, "name": cloud.login, "email": "",
                                             "organizations": [{"githubLogin": "acme", "name": "acme"}]})
                if path == "/api/capabilities":
                    return self._reply(200, {"capabilities": []})
                if path == "/api/user/organizations/default":
                    return self._reply(200, {"GitHubLogin": "acme"})
                match = _VERSION.match(path)
                if match and match.groups() in cloud._packs:
                    request = cloud._packs[match.groups()]
                    return self._reply(200, {"name": request.get("name"), "displayName": request.get("displayName"),
                                             "version": cloud.published.index(match.groups()) + 1,
                                             "versionTag": match.group(3), "policies": request.get("policies") or [],
                                             "applied": False})
                match = _CREATE.match(path)
                if match:
                    packs: dict[str, list[str]] = {}
                    for org, pack, version in cloud.published:
                        if org == match.group(1):
                            packs.setdefault(pack, []).append(version)
                    return self._reply(200, {"policyPacks": [
                        {"name": name, "displayName": name, "versions": list(range(1, len(tags) + 1)),
                         "versionTags": tags} for name, tags in packs.items()]})
                return self._reply(404, {"code": 404, "message": f"Not found: {path}"})

            def do_PUT(self):
                data = self._body()
                with cloud._lock:
                    cloud.requests.append(("PUT", self.path))
                    if self.path.startswith("/upload/"):
                        cloud.uploads[self.path.removeprefix("/upload/")] = len(data)
                        return self._reply(200)
                return self._reply(404)

            def do_POST(self):
                data = self._body()
                with cloud._lock:
                    cloud.requests.append(("POST", self.path))
                if not self._authorized():
                    return None
                match = _CREATE.match(self.path)
                if match:
                    request = json.loads(data or b"{}")
                    key = (match.group(1), request.get("name"), request.get("versionTag"))
                    with cloud._lock:
                        if key in cloud.published:
                            return self._reply(409, {"code": 409, "message": (
                                f"Conflict: Policy Pack {key[1]} version {key[2]} already exists.")})
                        cloud._pending[key] = request
                        count = len(cloud.versions(key[0], key[1])) + 1
                    return self._reply(201, {"version": count, "uploadURI": f"{cloud.url}/upload/{key[1]}@{key[2]}",
                                             "requiredHeaders": {}})
                match = _COMPLETE.match(self.path)
                if match:
                    key = match.groups()
                    with cloud._lock:
                        if key not in cloud._pending:
                            return self._reply(404, {"code": 404, "message": "no such publish"})
                        cloud._packs[key] = cloud._pending.pop(key)
                        cloud.published.append(key)
                    return self._reply(204)
                return self._reply(404, {"code": 404, "message": f"Not found: {self.path}"})

        return Handler
