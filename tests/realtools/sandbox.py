"""Start a planned container here the way the kubelet would: its binary at the image's path, its exact args and
env, its volumes at their mount paths, on a read-only root filesystem, as its user and fsGroup.

Each process runs in a private mount namespace (`unshare -m`) chrooted into a folder of its own: that folder is
remounted read-only, and only the pod's volumes (claims, emptyDirs) are writable, so a write anywhere else fails
as it would in the pod. Secret and ConfigMap volumes are read-only files with their planned modes, owned by the
fsGroup. The network is the host's: listeners are moved to loopback by `loopback.py`; `/etc/resolv.conf` names a
loopback resolver (nothing answers), so cluster DNS names fail fast and no lookup leaves the machine."""

import http.client
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .pods import PlannedContainer

ENTRYPOINTS = {
    "quay.io/thanos/thanos": "/bin/thanos",
    "quay.io/prometheus/prometheus": "/bin/prometheus",
    "quay.io/prometheus/alertmanager": "/bin/alertmanager",
    "docker.io/library/memcached": "/usr/local/bin/memcached",
    "quay.io/minio/minio": "/usr/bin/minio",
    "docker.io/library/python": "/usr/local/bin/python",
    "quay.io/prometheus/node-exporter": "/bin/node_exporter",
    "quay.io/minio/mc": "/usr/bin/mc",
    "quay.io/prometheus/blackbox-exporter": "/bin/blackbox_exporter",
    "docker.io/library/caddy": "/usr/bin/caddy",
}
"""Image -> the binary its entrypoint runs (args replace the image's CMD, as in Kubernetes)."""
SHELL_TOOLS = {"quay.io/minio/mc": ("/bin/sh", "/bin/sleep"), "quay.io/thanos/thanos": ("/bin/sh", "/bin/tee", "/bin/grep")}
"""Images whose planned Jobs run a shell script: the host's shell and sleep stand in for the image's own (bound
read-only at the same paths), beside the real binary."""


CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


def image_repository(image: str) -> str:
    """`quay.io/thanos/thanos:v0.42.4` -> `quay.io/thanos/thanos`."""
    return image.split("@")[0].rsplit(":", 1)[0]


@dataclass
class Process:
    """A started container: its process, its log, and the loopback ports it listens on (flag -> port). `binary`,
    `args` and `env` are what it was started with (a restart starts them again)."""

    container: PlannedContainer
    popen: subprocess.Popen
    log: Path
    ip: str
    ports: dict[str, int] = field(default_factory=dict)
    binary: Path | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def output(self, tail: int = 4000) -> str:
        """The last `tail` characters of what the process printed."""
        return self.log.read_text(errors="replace")[-tail:] if self.log.exists() else ""

    def _http_flag(self) -> str | None:
        """The flag of its HTTP listener, if it has one."""
        return next((f for f in ("--http-address", "--web.listen-address", "--address", "--config") if f in self.ports),
                    None)

    def url(self, path: str = "", flag: str | None = None) -> str:
        """http://<pod address>:<port of flag><path>; by default the HTTP listener (`--http-address` for Thanos,
        `--web.listen-address` for Prometheus and Alertmanager, `--address` for MinIO)."""
        flag = flag or self._http_flag()
        if flag is None:
            raise LookupError(f"{self.container.id} has no HTTP listener")
        return f"http://{self.ip}:{self.ports[flag]}{path}"

    def alive(self) -> bool:
        """The process has not exited (a frozen one is alive)."""
        return self.popen.poll() is None

    def ready(self, path: str | None = None, timeout: float = 1) -> bool:
        """One readiness check: alive, and HTTP 200 on `path` of its HTTP listener (/-/ready; MinIO's
        /minio/health/ready), or, for a TCP readiness probe or a server without an HTTP listener (memcached), its
        port accepts a connection."""
        if not self.alive():
            return False
        flag = self._http_flag()
        if self.container.tcp_readiness or flag is None:
            port = next(iter(self.ports.values()), None) or next(iter(self.container.ports.values()), None)
            if port is None:  # no probe and no port: ready once running, as the kubelet says
                return True
            with socket.socket() as probe:
                probe.settimeout(timeout)
                return probe.connect_ex((self.ip, port)) == 0
        path = path or ("/minio/health/ready" if flag == "--address" else "/-/ready")
        try:
            with urllib.request.urlopen(self.url(path, flag), timeout=timeout) as response:
                return response.status == 200
        except (OSError, http.client.HTTPException):  # refused, timed out, an error status or a broken answer
            return False

    def wait_ready(self, timeout: float, path: str | None = None) -> str:
        """Check readiness (`ready`) until it passes ("ready"), the process exits ("exited"), or `timeout` seconds
        pass while it runs ("running")."""
        deadline = time.monotonic() + timeout
        while True:
            if self.ready(path, timeout=2):
                return "ready"
            if not self.alive():
                return "exited"
            if time.monotonic() >= deadline:
                return "running"
            time.sleep(0.25)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if it still runs after `timeout` seconds."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _signal(self, signum: int) -> None:
        """Send `signum` to its process group while it has not been reaped."""
        if self.popen.poll() is not None:  # once reaped, its id may name another process group
            return
        try:
            os.killpg(self.popen.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL to the whole process group (a frozen one too); the process is gone on return."""
        self._signal(signal.SIGKILL)
        self.popen.wait()

    def freeze(self) -> None:
        """SIGSTOP to the process group: it holds whatever it was doing (its listeners accept, nothing answers)."""
        self._signal(signal.SIGSTOP)
        deadline = time.monotonic() + 2
        while self.alive() and self._state() not in ("T", "t") and time.monotonic() < deadline:
            time.sleep(0.01)

    def thaw(self) -> None:
        """SIGCONT to the process group: a frozen process carries on."""
        self._signal(signal.SIGCONT)

    def _state(self) -> str:
        """Its state letter in /proc (T: stopped), or "" once gone."""
        try:
            stat = Path(f"/proc/{self.popen.pid}/stat").read_text()
        except OSError:
            return ""
        return stat.rsplit(")", 1)[1].split()[0]

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds (by default the pod's terminationGracePeriodSeconds); the
        process is gone on return. A frozen process is resumed after the SIGTERM, as Docker resumes a paused
        container it stops, so it can act on it."""
        grace = self.container.grace_seconds if grace is None else grace
        if self.alive():
            self._signal(signal.SIGTERM)
            self._signal(signal.SIGCONT)
            self.wait_exit(grace)
        self.kill()


class Sandbox:
    """Materialises and starts planned containers under `workdir`; `buckets` is the host folder holding the
    FILESYSTEM buckets."""

    def __init__(self, workdir: Path, buckets: Path):
        self.workdir = workdir
        self.buckets = buckets
        self.buckets.mkdir(parents=True, exist_ok=True)
        self.processes: list[Process] = []
        self.mounts: dict[str, list[tuple[Path, str, bool]]] = {}
        """container id -> (host source, mount path, read-only) of each prepared mount, parents first."""

    def root_of(self, container: PlannedContainer) -> Path:
        return self.workdir / container.id.replace("/", "_")

    def prepare(self, container: PlannedContainer, *, hosts: str, resolv: str) -> Path:
        """Write the container's root and volumes; return the folder. Volume files can be changed before start."""
        base = self.root_of(container)
        if base.exists():
            shutil.rmtree(base)
        root = base / "root"
        for folder in ("bin", "etc", "dev", "proc", "tmp", "var/lib/harness-buckets"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        (root / "etc/hosts").write_text(hosts)
        (root / "etc/resolv.conf").write_text(resolv)
        (root / "etc/passwd").write_text("root:x:0:0::/:/bin/false\nnobody:x:65534:65534::/:/bin/false\n")
        group = container.fs_group if container.fs_group is not None else 0
        placed: list[tuple[Path, str, bool]] = []
        # Parents first, as the runtime mounts them: a mount inside another mount gets its mount point created in
        # the parent volume's folder.
        for index, mount in sorted(enumerate(container.mounts), key=lambda item: item[1].path.count("/")):
            source = base / "volumes" / f"{index}-{mount.volume.name}"
            if mount.volume.host_path:
                source = Path(mount.volume.host_path)
            elif mount.volume.files is None:
                pod = f"{container.stack}_{container.cluster}_{container.namespace}_{container.pod}"
                source = base.parent / "claims" / pod / mount.volume.name
                source.mkdir(parents=True, exist_ok=True)
                os.chown(source, 0, group)
                os.chmod(source, 0o2775 if container.fs_group is not None else 0o777)
            else:
                source.mkdir(parents=True)
                os.chmod(source, 0o755)
                for path, (content, mode) in mount.volume.files.items():
                    target = source / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(content)
                    os.chown(target, 0, group)
                    os.chmod(target, mode)
            mount_source = source / mount.sub_path if mount.sub_path else source
            parents = [(p, src) for src, p, _ in placed if mount.path.startswith(p.rstrip("/") + "/")]
            if parents:
                parent_path, parent_source = max(parents, key=lambda item: len(item[0]))
                point = parent_source / mount.path[len(parent_path):].lstrip("/")
            else:
                point = root / mount.path.lstrip("/")
            if mount_source.is_dir():
                point.mkdir(parents=True, exist_ok=True)
            else:
                point.parent.mkdir(parents=True, exist_ok=True)
                point.touch()
            placed.append((mount_source, mount.path, mount.read_only))
        self.mounts[container.id] = placed
        for folder in [root, *root.rglob("*")]:
            if folder.is_dir():
                os.chmod(folder, 0o755)
        return base

    def volume_file(self, container: PlannedContainer, path: str) -> Path:
        """The host file that appears at `path` inside the container (after `prepare`)."""
        found = [(mount_path, source) for source, mount_path, _ in self.mounts[container.id]
                 if path == mount_path or path.startswith(mount_path.rstrip("/") + "/")]
        if not found:
            raise LookupError(f"{path} is on no volume of {container.id}")
        mount_path, source = max(found, key=lambda item: len(item[0]))
        return source / path[len(mount_path):].lstrip("/")

    def start(self, container: PlannedContainer, binary: Path, args: list[str], env: dict[str, str], ip: str,
              ports: dict[str, int]) -> Process:
        """Start the prepared container: `binary` at the image's entrypoint with `args` and `env` (the planned ones
        after the loopback rewrites). A dynamically linked binary gets the host's libraries, read-only."""
        given = (binary, list(args), dict(env))
        base = self.root_of(container)
        root = base / "root"
        entrypoint = ENTRYPOINTS[image_repository(container.image)]
        program, tools = entrypoint, SHELL_TOOLS.get(image_repository(container.image), ())
        if container.command:  # the command replaces the entrypoint; a bare name is the image's binary on PATH
            if container.command[0] in tools:
                program = container.command[0]
            elif container.command[0] not in (entrypoint, Path(entrypoint).name):
                raise ValueError(f"{container.id}: command {container.command[0]} is not the image's {entrypoint}")
            args = [*container.command[1:], *args]
        for path in (entrypoint, *tools):
            (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / path.lstrip("/")).touch()
        lines = ["set -e", f"mount --bind {root} {root}", f"mount --rbind /dev {root}/dev",
                 f"mount --rbind /proc {root}/proc", f"mount --bind {binary} {root}{entrypoint}",
                 *(f"mount --bind {os.path.realpath(tool)} {root}{tool}" for tool in tools),
                 f"mount --bind {self.buckets} {root}/var/lib/harness-buckets"]
        runtime = [sys.base_prefix] if Path(binary).is_relative_to(sys.base_prefix) else []  # python's stdlib
        for libraries in ("/lib", "/lib64", "/usr/lib", "/usr/lib64", *runtime):
            if Path(libraries).is_dir() and not Path(libraries).is_symlink():
                (root / libraries.lstrip("/")).mkdir(parents=True, exist_ok=True)
                lines += [f"mount --bind {libraries} {root}{libraries}", f"mount -o remount,bind,ro {root}{libraries}"]
            elif Path(libraries).is_symlink() and not (root / libraries.lstrip("/")).exists():
                (root / libraries.lstrip("/")).symlink_to(os.readlink(libraries))
        for source, mount_path, read_only in self.mounts[container.id]:
            lines.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(root) + mount_path)}")
            if read_only:
                lines.append(f"mount -o remount,bind,ro {shlex.quote(str(root) + mount_path)}")
        lines.append(f"mount -o remount,bind,ro {root}")
        groups = f"--groups={container.fs_group}" if container.fs_group is not None else ""
        lines.append(f'exec {CHROOT} --userspec={container.run_as_user}:{container.run_as_group} {groups} {root} '
                     f'{program} "$@"')
        script = base / "start.sh"
        script.write_text("\n".join(lines) + "\n")
        env = {"PATH": "/bin:/usr/bin:/usr/local/bin", "HOSTNAME": container.pod, "HOME": "/", **env}
        if runtime:  # the python image's interpreter finds its own stdlib; this one's is at its build prefix
            env["PYTHONHOME"] = sys.base_prefix
        starts = sum(1 for p in self.processes if p.container.id == container.id)
        log = base / ("output.log" if starts == 0 else f"output.{starts}.log")  # a restart keeps the earlier log
        with log.open("wb") as out:
            popen = subprocess.Popen(["unshare", "-m", "--propagation", "private", "/bin/sh", str(script), *args],
                                     env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        process = Process(container, popen, log, ip, ports, *given)
        self.processes.append(process)
        return process

    def stop_all(self, grace: float = 15) -> None:
        """Stop every process this sandbox started: SIGTERM to all (frozen ones resumed), SIGKILL to what still runs
        after `grace` s (a teardown does not wait for each pod's own grace period)."""
        for process in self.processes:
            if process.alive():
                process._signal(signal.SIGTERM)
                process._signal(signal.SIGCONT)
        deadline = time.monotonic() + grace
        for process in self.processes:
            process.wait_exit(max(0.1, deadline - time.monotonic()))
            process.kill()
        self.processes.clear()

