"""Start a planned container here the way the kubelet would: its binary at the image's path, its exact args and
env, its volumes at their mount paths, on a read-only root filesystem, as its user and fsGroup.

Each process runs in a private mount namespace (`unshare -m`) chrooted into a folder of its own: that folder is
remounted read-only, and only the pod's volumes (claims, emptyDirs) are writable, so a write anywhere else fails
as it would in the pod. Secret and ConfigMap volumes are read-only files with their planned modes, owned by the
fsGroup. The network is the host's: listeners are moved to loopback by `loopback.py`; `/etc/resolv.conf` names a
loopback resolver (nothing answers), so cluster DNS names fail fast and no lookup leaves the machine."""

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .pods import Mount, PlannedContainer

ENTRYPOINTS = {
    "quay.io/thanos/thanos": "/bin/thanos",
    "quay.io/prometheus/prometheus": "/bin/prometheus",
    "quay.io/prometheus/alertmanager": "/bin/alertmanager",
    "docker.io/library/memcached": "/usr/local/bin/memcached",
    "quay.io/minio/minio": "/usr/bin/minio",
    "docker.io/library/python": "/usr/local/bin/python",
}
"""Image -> the binary its entrypoint runs (args replace the image's CMD, as in Kubernetes)."""


CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


def image_repository(image: str) -> str:
    """`quay.io/thanos/thanos:v0.42.4` -> `quay.io/thanos/thanos`."""
    return image.split("@")[0].rsplit(":", 1)[0]


@dataclass
class Process:
    """A started container: its process, its log, and the loopback ports it listens on (flag -> port)."""

    container: PlannedContainer
    popen: subprocess.Popen
    log: Path
    ip: str
    ports: dict[str, int] = field(default_factory=dict)

    def output(self, tail: int = 4000) -> str:
        """The last `tail` characters of what the process printed."""
        return self.log.read_text(errors="replace")[-tail:] if self.log.exists() else ""

    def url(self, path: str = "", flag: str | None = None) -> str:
        """http://<pod address>:<port of flag><path>; by default the HTTP listener (`--http-address` for Thanos,
        `--web.listen-address` for Prometheus and Alertmanager, `--address` for MinIO)."""
        flag = flag or next(f for f in ("--http-address", "--web.listen-address", "--address") if f in self.ports)
        return f"http://{self.ip}:{self.ports[flag]}{path}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_ready(self, timeout: float, path: str | None = None) -> str:
        """Poll `path` on the HTTP listener until it answers 200 ("ready"), the process exits ("exited"), or
        `timeout` seconds pass while it runs ("running")."""
        path = path or ("/minio/health/ready" if "--address" in self.ports else "/-/ready")
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                return "exited"
            try:
                with urllib.request.urlopen(self.url(path), timeout=2) as response:
                    if response.status == 200:
                        return "ready"
            except OSError:
                pass
            if time.monotonic() >= deadline:
                return "running" if self.alive() else "exited"
            time.sleep(0.25)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if it still runs after `timeout` seconds."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; the process and everything it started are gone on return."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()


class Sandbox:
    """Materialises and starts planned containers under `workdir`; `buckets` is the host folder holding the
    FILESYSTEM buckets."""

    def __init__(self, workdir: Path, buckets: Path):
        self.workdir = workdir
        self.buckets = buckets
        self.buckets.mkdir(parents=True, exist_ok=True)
        self.processes: list[Process] = []

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
        placed: list[tuple[str, Path]] = []
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
            parents = [(p, src) for p, src in placed if mount.path.startswith(p.rstrip("/") + "/")]
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
            placed.append((mount.path, mount_source))
            (base / "mounts").mkdir(exist_ok=True)
            (base / "mounts" / f"{index}").write_text(f"{mount_source}\n{mount.path}\n{int(mount.read_only)}\n")
        for folder in [root, *root.rglob("*")]:
            if folder.is_dir():
                os.chmod(folder, 0o755)
        return base

    def volume_file(self, container: PlannedContainer, path: str) -> Path:
        """The host file that appears at `path` inside the container (after `prepare`)."""
        base = self.root_of(container)
        best: tuple[int, Path] | None = None
        for entry in sorted((base / "mounts").iterdir()) if (base / "mounts").exists() else []:
            source, mount_path, _ = entry.read_text().splitlines()
            if path == mount_path or path.startswith(mount_path.rstrip("/") + "/"):
                if best is None or len(mount_path) > best[0]:
                    best = (len(mount_path), Path(source) / path[len(mount_path):].lstrip("/"))
        if best is None:
            raise LookupError(f"{path} is on no volume of {container.id}")
        return best[1]

    def start(self, container: PlannedContainer, binary: Path, args: list[str], env: dict[str, str], ip: str,
              ports: dict[str, int]) -> Process:
        """Start the prepared container: `binary` at the image's entrypoint with `args` and `env` (the planned ones
        after the loopback rewrites). A dynamically linked binary gets the host's libraries, read-only."""
        base = self.root_of(container)
        root = base / "root"
        entrypoint = ENTRYPOINTS[image_repository(container.image)]
        if container.command:  # the command replaces the entrypoint; a bare name is the image's binary on PATH
            if container.command[0] not in (entrypoint, Path(entrypoint).name):
                raise ValueError(f"{container.id}: command {container.command[0]} is not the image's {entrypoint}")
            args = [*container.command[1:], *args]
        (root / entrypoint.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / entrypoint.lstrip("/")).touch()
        lines = ["set -e", f"mount --bind {root} {root}", f"mount --rbind /dev {root}/dev",
                 f"mount --rbind /proc {root}/proc", f"mount --bind {binary} {root}{entrypoint}",
                 f"mount --bind {self.buckets} {root}/var/lib/harness-buckets"]
        runtime = [sys.base_prefix] if Path(binary).is_relative_to(sys.base_prefix) else []  # python's stdlib
        for libraries in ("/lib", "/lib64", "/usr/lib", "/usr/lib64", *runtime):
            if Path(libraries).is_dir() and not Path(libraries).is_symlink():
                (root / libraries.lstrip("/")).mkdir(parents=True, exist_ok=True)
                lines += [f"mount --bind {libraries} {root}{libraries}", f"mount -o remount,bind,ro {root}{libraries}"]
            elif Path(libraries).is_symlink() and not (root / libraries.lstrip("/")).exists():
                (root / libraries.lstrip("/")).symlink_to(os.readlink(libraries))
        entries = [e.read_text().splitlines() for e in (base / "mounts").iterdir()] if (base / "mounts").exists() else []
        for source, mount_path, read_only in sorted(entries, key=lambda e: e[1].count("/")):
            lines.append(f"mount --bind {shlex.quote(source)} {shlex.quote(str(root) + mount_path)}")
            if read_only == "1":
                lines.append(f"mount -o remount,bind,ro {shlex.quote(str(root) + mount_path)}")
        lines.append(f"mount -o remount,bind,ro {root}")
        groups = f"--groups={container.fs_group}" if container.fs_group is not None else ""
        lines.append(f'exec {CHROOT} --userspec={container.run_as_user}:{container.run_as_group} {groups} {root} '
                     f'{entrypoint} "$@"')
        script = base / "start.sh"
        script.write_text("\n".join(lines) + "\n")
        env = {"PATH": "/bin:/usr/bin:/usr/local/bin", "HOSTNAME": container.pod, "HOME": "/", **env}
        if runtime:  # the python image's interpreter finds its own stdlib; this one's is at its build prefix
            env["PYTHONHOME"] = sys.base_prefix
        log = base / "output.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(["unshare", "-m", "--propagation", "private", "/bin/sh", str(script), *args],
                                     env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        process = Process(container, popen, log, ip, ports)
        self.processes.append(process)
        return process

    def stop_all(self, grace: float = 15) -> None:
        """Stop every process this sandbox started: SIGTERM to all, SIGKILL to what still runs after `grace` s."""
        for process in self.processes:
            if process.alive():
                try:
                    os.killpg(process.popen.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for process in self.processes:
            try:
                process.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            process.stop()
        self.processes.clear()


def mounted_at(mounts: list[Mount], path: str) -> Mount | None:
    """The mount a path is on (the deepest one), or None when it is on the read-only root."""
    best = None
    for mount in mounts:
        if path == mount.path or path.startswith(mount.path.rstrip("/") + "/"):
            if best is None or len(mount.path) > len(best.path):
                best = mount
    return best
