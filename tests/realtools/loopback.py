"""The only rewrites of a planned container that the harness makes, for what cannot exist on this machine.

- Pod network: each pod gets its own loopback address (all of 127.0.0.0/8 is loopback), and every listener of its
  containers, given in the args (or in Caddy's config file) or left at its default, binds that address on the
  planned port. `localhost` (in the container's /etc/hosts) and a literal `127.0.0.1` name the pod's own address,
  as they would inside the pod.
  Cluster names resolve through the stand-in DNS (dns.py), so the planned addresses and ports stay as written.
- Object storage: a config file Thanos reads for a bucket (S3, GCS, Azure) is replaced by a FILESYSTEM bucket in a
  folder named after the original bucket, so every process that names the same bucket shares one folder.
Nothing else changes: flags, env, files and mount paths stay as planned."""

import re
import subprocess
from functools import lru_cache
from pathlib import Path

import yaml

BUCKETS_MOUNT = "/var/lib/harness-buckets"
"""Where the FILESYSTEM buckets are mounted inside each sandbox (outside every planned mount)."""

DEFAULT_LISTENERS = {
    "quay.io/prometheus/prometheus": {"--web.listen-address": "0.0.0.0:9090"},
    "quay.io/prometheus/alertmanager": {"--web.listen-address": ":9093", "--cluster.listen-address": "0.0.0.0:9094"},
    "quay.io/prometheus/node-exporter": {"--web.listen-address": ":9100"},
    "quay.io/prometheus/blackbox-exporter": {"--web.listen-address": ":9115"},
}
"""Listeners of the non-Thanos binaries the harness runs, with their upstream defaults (Thanos' come from --help)."""

_ADDRESS_DEFAULT = re.compile(r'^\s+(--[a-z0-9.-]+)=(?:"|\')?(\[?[0-9a-fA-F.:]*\]?:\d+)(?:"|\')?\s')
_OBJSTORE_FILE_FLAG = re.compile(r"^--objstore[a-z-]*\.config-file$")


def subcommand(args: list[str]) -> list[str]:
    """The Thanos subcommand words of `args` (`["store"]`, `["tools", "bucket", "verify"]`)."""
    words = []
    for arg in args:
        if arg.startswith("-"):
            break
        words.append(arg)
    return words


@lru_cache(maxsize=None)
def thanos_listeners(thanos: str, command: tuple[str, ...]) -> dict[str, str]:
    """Flag -> default address of every listener of a Thanos subcommand, read from its own `--help`."""
    proc = subprocess.run([thanos, *command, "--help"], capture_output=True, text=True, timeout=30)
    flags = {}
    for line in (proc.stdout + proc.stderr).splitlines():
        match = _ADDRESS_DEFAULT.match(line + " ")
        if match and "address" in match.group(1):
            flags[match.group(1)] = match.group(2)
    return flags


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def bind_listeners(args: list[str], defaults: dict[str, str], pod_ip: str) -> tuple[list[str], dict[str, int]]:
    """`args` with every listener in `defaults` (flag -> default address) on `pod_ip` and its planned port.
    Returns the args and flag -> port."""
    given = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in args if a.startswith("--") and "=" in a}
    # An empty address turns a listener off (a single Alertmanager's `--cluster.listen-address=`): left as planned.
    defaults = {flag: default for flag, default in defaults.items() if given.get(flag, default) != ""}
    ports = {flag: port_of(given.get(flag, default)) for flag, default in defaults.items()}
    out = [a for a in args if not (a.startswith("--") and a.split("=", 1)[0] in defaults)]
    return out + [f"{flag}={pod_ip}:{port}" for flag, port in ports.items()], ports


def bind_memcached(args: list[str], pod_ip: str) -> list[str]:
    """memcached listens on every interface unless told: `-l` the pod's address."""
    return args if any(a.startswith("-l") for a in args) else [*args, f"-l{pod_ip}"]


def bind_minio(args: list[str], pod_ip: str) -> tuple[list[str], dict[str, int]]:
    """MinIO's `--address :9000` and `--console-address :9001` (flag and value apart) on the pod's address."""
    out, ports = list(args), {}
    for index, arg in enumerate(out[:-1]):
        if arg in ("--address", "--console-address"):
            ports[arg] = port_of(out[index + 1])
            out[index + 1] = f"{pod_ip}:{ports[arg]}"
    return out, ports


def bind_caddy(config: str, pod_ip: str) -> tuple[str, dict[str, int]]:
    """Caddy's JSON config with every server's `:port` listener on the pod's address. Returns the config and
    `--config` -> the first port (its HTTP listener)."""
    import json

    parsed = json.loads(config)
    ports = []
    for server in parsed["apps"]["http"]["servers"].values():
        server["listen"] = [f"{pod_ip}:{port_of(address)}" for address in server["listen"]]
        ports += [port_of(address) for address in server["listen"]]
    return json.dumps(parsed), {"--config": ports[0]}


def own_address(args: list[str], pod_ip: str) -> list[str]:
    """A literal 127.0.0.1 in args is the pod itself."""
    return [re.sub(r"\b127\.0\.0\.1\b", pod_ip, a) for a in args]


def objstore_files(args: list[str]) -> list[str]:
    """The paths of the bucket config files a process reads (`--objstore.config-file`, `--objstore-to.config-file`)."""
    return [a.split("=", 1)[1] for a in args if a.startswith("--") and "=" in a
            and _OBJSTORE_FILE_FLAG.match(a.split("=", 1)[0])]


def bucket_name(config: dict) -> str:
    """The bucket (S3, GCS), container (Azure) or folder (FILESYSTEM) a bucket config names."""
    settings = config.get("config") or {}
    kind = str(config.get("type", "")).upper()
    if kind == "AZURE":
        return f"{settings.get('storage_account', '')}-{settings.get('container', '')}"
    if kind == "FILESYSTEM":
        return Path(settings["directory"]).name
    return settings["bucket"]


def filesystem_config(original: str) -> tuple[str, str]:
    """(bucket name, FILESYSTEM config text) standing in for a planned bucket config."""
    name = bucket_name(yaml.safe_load(original))
    return name, yaml.safe_dump({"type": "FILESYSTEM", "config": {"directory": f"{BUCKETS_MOUNT}/{name}"}})


def oauth2_proxy_on_loopback(args: list[str], address: str, upstream: str, idp: str) -> list[str]:
    """oauth2-proxy's planned args on loopback: its listener on `address`, every upstream's host at `upstream` (paths
    kept), and the OIDC issuer's endpoints at `idp` with `--skip-oidc-discovery` (discovery would dial the real
    issuer at start; the endpoints are only dialled when someone signs in)."""
    rewritten = []
    for arg in args:
        if arg.startswith("--http-address="):
            arg = f"--http-address={address}"
        elif arg.startswith("--upstream="):
            arg = "--upstream=" + re.sub(r"^https?://[^/]+", f"http://{upstream}", arg.split("=", 1)[1])
        elif arg.startswith("--oidc-issuer-url="):
            rewritten += ["--skip-oidc-discovery", f"--login-url=http://{idp}/authorize",
                          f"--redeem-url=http://{idp}/token", f"--oidc-jwks-url=http://{idp}/keys"]
            arg = f"--oidc-issuer-url=http://{idp}"
        rewritten.append(arg)
    return rewritten
